//! The ingestion writer's decoded copies of the profiles it saved, so that a busy user's next
//! group reads only the row's revision, not its state, when the copy is that revision.

use std::sync::Arc;

use super::profile::ProfileRecord;

/// Decoded profiles as the ingestion writer last saved them, each with the row's revision,
/// bounded by about their encoded size, least recently kept dropped first. Cheap to clone
/// (shared). A plain LRU map behind a mutex: the writers take a profile out for their group
/// and put it back, moving it, and nothing else touches it but erasure and consent.
#[derive(Clone)]
pub struct KeptProfiles(Arc<std::sync::Mutex<KeptMap>>);

struct KeptMap {
    /// Each profile with its weight (bytes).
    profiles: hashlink::LinkedHashMap<String, (ProfileRecord, u64)>,
    bytes: u64,
    max_bytes: u64,
}

impl KeptProfiles {
    /// Room for about `max_bytes` of encoded profiles (decoded they take a few times more).
    pub fn new(max_bytes: u64) -> Self {
        Self(Arc::new(std::sync::Mutex::new(KeptMap {
            profiles: hashlink::LinkedHashMap::new(),
            bytes: 0,
            max_bytes,
        })))
    }

    /// The map; a writer that panicked holding it cannot have left it half-changed (each
    /// change is one map operation and its byte count), so a poisoned lock is taken as is.
    fn map(&self) -> std::sync::MutexGuard<'_, KeptMap> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the kept copy of `user`'s profile out, if it is `revision`.
    pub(super) fn take(&self, user: &str, revision: i64) -> Option<ProfileRecord> {
        let record = self.map().remove(user)?;
        (record.revision == revision).then_some(record)
    }

    pub(super) fn keep(&self, record: ProfileRecord) {
        let weight = approx_encoded_len(&record);
        let mut map = self.map();
        map.remove(&record.user_id);
        if weight > map.max_bytes {
            return;
        }
        map.bytes += weight;
        map.profiles
            .insert(record.user_id.clone(), (record, weight));
        while map.bytes > map.max_bytes {
            let Some((_, (_, weight))) = map.profiles.pop_front() else {
                break;
            };
            map.bytes -= weight;
        }
    }

    /// Drops the copies of `users` (erasure and consent must not leave data behind).
    pub fn forget(&self, users: &[&str]) {
        let mut map = self.map();
        for user in users {
            map.remove(user);
        }
    }
}

impl KeptMap {
    fn remove(&mut self, user: &str) -> Option<ProfileRecord> {
        let (record, weight) = self.profiles.remove(user)?;
        self.bytes -= weight;
        Some(record)
    }
}

/// About the encoded size of `record`, from its lengths: exact sizes would cost an encoding
/// pass per profile per group, and the bound is a memory budget, not an invariant.
fn approx_encoded_len(record: &ProfileRecord) -> u64 {
    let state = record.state.as_ref().map_or(0, |s| {
        let interests: usize = s.interests.keys().map(|k| k.len() + 24).sum();
        let recent: usize = s
            .recent
            .iter()
            .map(|r| r.item_id.len() + r.category.len() + 20)
            .sum();
        interests + recent + s.purchases.len() * 14 + 96
    });
    (record.user_id.len() + state + 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, revision: i64) -> ProfileRecord {
        ProfileRecord {
            revision,
            ..ProfileRecord::new(user)
        }
    }

    #[test]
    fn a_kept_profile_is_handed_out_once_and_only_at_its_revision() {
        let kept = KeptProfiles::new(1 << 20);
        kept.keep(record("ada", 3));
        assert!(kept.take("ada", 2).is_none(), "another revision");
        assert!(
            kept.take("ada", 3).is_none(),
            "a stale copy is dropped on sight"
        );
        kept.keep(record("ada", 4));
        assert_eq!(kept.take("ada", 4).map(|r| r.revision), Some(4));
        assert!(kept.take("ada", 4).is_none(), "taken out, not copied");
    }

    #[test]
    fn the_least_recently_kept_profiles_go_first_when_over_budget() {
        let weight = approx_encoded_len(&record("u1", 1));
        let kept = KeptProfiles::new(2 * weight);
        kept.keep(record("u1", 1));
        kept.keep(record("u2", 1));
        kept.keep(record("u1", 2)); // kept again: now the most recent
        kept.keep(record("u3", 1));
        assert!(kept.take("u2", 1).is_none(), "the oldest went");
        assert!(kept.take("u1", 2).is_some());
        assert!(kept.take("u3", 1).is_some());
        assert_eq!(kept.map().bytes, 0, "every byte accounted for");
    }

    #[test]
    fn forgotten_profiles_are_gone() {
        let kept = KeptProfiles::new(1 << 20);
        kept.keep(record("ada", 1));
        kept.keep(record("bob", 1));
        kept.forget(&["ada", "nobody"]);
        assert!(kept.take("ada", 1).is_none());
        assert!(kept.take("bob", 1).is_some());
    }
}
