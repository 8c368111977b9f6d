//! Users' serving state (consent and recent history) as last read from the store, reused
//! across requests; an event of theirs, once consumed, is added to it in place.
//!
//! A read can race a change: it may fetch the rows from before a commit and land in the cache
//! after the commit's [`UserStates::forget`]. With a cache lifetime of a few hundred
//! milliseconds that only delayed freshness a little; kept for a minute it would hide the
//! user's latest events from their recommendations. So misses are read through [`Reads`],
//! which takes such an entry out again (and lets concurrent misses of a user share a read).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tailor_kit::cache::Reads;

use super::Touch;
use crate::error::Result;
use crate::store::UserState;

/// Most touches (history entries) held at once, over all users: about 70 bytes each.
const MAX_TOUCHES: u64 = 2_000_000;

/// The cache of [`UserState`]s. Cheap to clone (shared).
#[derive(Clone)]
pub struct UserStates {
    /// By user id (foldhash: the ids come from callers).
    cache: moka::future::Cache<String, Arc<UserState>, foldhash::fast::RandomState>,
    reads: Reads<UserState>,
}

impl UserStates {
    /// States reused for at most `ttl` after they were read from the store (touches added
    /// since do not extend it: `ttl` bounds how long changes this process does not see, such
    /// as another replica's events, stay hidden).
    pub fn new(ttl: Duration) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(MAX_TOUCHES)
                .weigher(|_, state: &Arc<UserState>| {
                    u32::try_from(state.history.len() + 1).unwrap_or(u32::MAX)
                })
                .expire_after(SinceRead(ttl))
                .build_with_hasher(foldhash::fast::RandomState::default()),
            reads: Reads::new("recommend:user_state"),
        }
    }

    /// `user_id`'s state: cached, or read with `load` and cached unless it was forgotten
    /// while `load` ran (then this request still gets what `load` read); concurrent misses
    /// of a user share one read.
    pub async fn get_or_load<F>(&self, user_id: &str, load: F) -> Result<Arc<UserState>>
    where
        F: Future<Output = Result<UserState>>,
    {
        self.reads
            .get(
                user_id,
                self.cache.get(user_id),
                load,
                |state| self.cache.insert(user_id.to_owned(), state),
                || self.cache.invalidate(user_id),
            )
            .await
    }

    /// Adds `touches`, committed interactions of `user_id`, to their cached state (if any)
    /// rather than forgetting it: the state then stays what a read would return now, without
    /// the read. Reads that overlapped the change do not keep what they read.
    pub async fn record(&self, user_id: &str, touches: &[Touch], limit: usize) {
        self.reads
            .update(
                user_id,
                self.cache.get(user_id),
                |state| with_touches(state, touches, limit),
                |state| self.cache.insert(user_id.to_owned(), state),
                || self.cache.invalidate(user_id),
            )
            .await;
    }

    /// Drops `user_id`'s state after a committed change to it, and keeps reads that
    /// overlapped the change from caching what they read.
    pub async fn forget(&self, user_id: &str) {
        self.reads.invalidated(user_id);
        self.cache.invalidate(user_id).await;
    }

    /// Drops every user's state.
    pub fn forget_all(&self) {
        self.reads.invalidated_all();
        self.cache.invalidate_all();
    }
}

/// Entries expire `ttl` after they were created (read from the store); updates in place keep
/// that deadline (moka's default for updates).
struct SinceRead(Duration);

impl moka::Expiry<String, Arc<UserState>> for SinceRead {
    fn expire_after_create(
        &self,
        _: &String,
        _: &Arc<UserState>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.0)
    }
}

/// `state` with `touches` in its history, as [`crate::store::Store::user_state`] would read it
/// after they were stored: newest first, at most `limit`, nothing when personalization is
/// off. A touch already there (the same item, behaviour and time: an event delivered again,
/// or one a read that ran after the commit already saw) is not added twice.
fn with_touches(state: &UserState, touches: &[Touch], limit: usize) -> UserState {
    let mut next = state.clone();
    if !state.allowed {
        return next;
    }
    let same = |a: &Touch, b: &Touch| a.at == b.at && a.kind == b.kind && a.item_id == b.item_id;
    for touch in touches {
        if next.history.iter().any(|t| same(t, touch)) {
            continue;
        }
        // After every touch at least as new: equal times keep their arrival order.
        let at = next.history.partition_point(|t| t.at >= touch.at);
        next.history.insert(at, touch.clone());
    }
    next.history.truncate(limit);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(item: &str, at: i64) -> Touch {
        Touch {
            item_id: item.to_owned(),
            kind: 1,
            weight: 1.0,
            at,
        }
    }

    fn history(items: &[(&str, i64)]) -> UserState {
        UserState {
            allowed: true,
            erased: false,
            history: items.iter().map(|(item, at)| touch(item, *at)).collect(),
        }
    }

    /// A state whose history is `items`, all at time 0.
    fn state(items: &[&str]) -> UserState {
        let at_zero: Vec<(&str, i64)> = items.iter().map(|item| (*item, 0)).collect();
        history(&at_zero)
    }

    fn items(state: &UserState) -> Vec<&str> {
        state.history.iter().map(|t| t.item_id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_state_is_read_once_then_served_from_the_cache() {
        let states = UserStates::new(Duration::from_secs(60));
        let first = states
            .get_or_load("ada", async { Ok(state(&["a"])) })
            .await
            .unwrap();
        let second = states
            .get_or_load("ada", async { Ok(state(&["not read"])) })
            .await
            .unwrap();
        assert_eq!(items(&first), ["a"]);
        assert_eq!(items(&second), ["a"]);
    }

    #[tokio::test]
    async fn a_forgotten_state_is_read_again() {
        let states = UserStates::new(Duration::from_secs(60));
        states
            .get_or_load("ada", async { Ok(state(&["a"])) })
            .await
            .unwrap();
        states.forget("ada").await;
        let read = states
            .get_or_load("ada", async { Ok(state(&["b", "a"])) })
            .await
            .unwrap();
        assert_eq!(items(&read), ["b", "a"]);
    }

    #[tokio::test]
    async fn a_read_that_overlapped_a_forget_is_not_kept() {
        let states = UserStates::new(Duration::from_secs(60));
        // The read fetches the old rows, then the change commits and forgets the user
        // before the read lands in the cache.
        let overlapped = states
            .get_or_load("ada", async {
                let old = state(&["a"]);
                states.forget("ada").await;
                Ok(old)
            })
            .await
            .unwrap();
        assert_eq!(
            items(&overlapped),
            ["a"],
            "this request still gets what it read"
        );
        let next = states
            .get_or_load("ada", async { Ok(state(&["b", "a"])) })
            .await
            .unwrap();
        assert_eq!(items(&next), ["b", "a"], "the next one reads afresh");
        // Other users' reads are unaffected by ada's forget.
        states
            .get_or_load("bob", async { Ok(state(&["x"])) })
            .await
            .unwrap();
        let bob = states
            .get_or_load("bob", async { Ok(state(&["not read"])) })
            .await
            .unwrap();
        assert_eq!(items(&bob), ["x"]);
    }

    #[tokio::test]
    async fn forgetting_everyone_covers_reads_in_flight() {
        let states = UserStates::new(Duration::from_secs(60));
        states
            .get_or_load("ada", async {
                states.forget_all();
                Ok(state(&["a"]))
            })
            .await
            .unwrap();
        let next = states
            .get_or_load("ada", async { Ok(state(&["b"])) })
            .await
            .unwrap();
        assert_eq!(items(&next), ["b"]);
    }

    #[tokio::test]
    async fn a_failed_read_caches_nothing() {
        let states = UserStates::new(Duration::from_secs(60));
        let failed = states
            .get_or_load("ada", async {
                Err(crate::error::Error::invalid("user_id", "unreadable"))
            })
            .await;
        assert!(failed.is_err());
        let read = states
            .get_or_load("ada", async { Ok(state(&["a"])) })
            .await
            .unwrap();
        assert_eq!(items(&read), ["a"]);
    }

    #[test]
    fn touches_go_in_newest_first_once_each_within_the_limit() {
        let state = history(&[("c", 30), ("b", 20), ("a", 10)]);
        let next = with_touches(
            &state,
            &[
                touch("d", 40),
                touch("late", 25),
                touch("b", 20),
                touch("tie", 30),
            ],
            4,
        );
        assert_eq!(
            items(&next),
            ["d", "c", "tie", "late"],
            "b is there already; a fell off"
        );
        let off = UserState {
            allowed: false,
            ..UserState::default()
        };
        assert!(with_touches(&off, &[touch("d", 40)], 4).history.is_empty());
    }

    #[tokio::test]
    async fn a_cached_state_takes_recorded_touches_without_a_read() {
        let states = UserStates::new(Duration::from_secs(60));
        states
            .get_or_load("ada", async { Ok(history(&[("a", 10)])) })
            .await
            .unwrap();
        states.record("ada", &[touch("b", 20)], 10).await;
        let read = states
            .get_or_load("ada", async { Ok(state(&["not read"])) })
            .await
            .unwrap();
        assert_eq!(items(&read), ["b", "a"]);

        // Not cached: nothing to update, the next request reads.
        states.record("bob", &[touch("x", 20)], 10).await;
        let bob = states
            .get_or_load("bob", async { Ok(history(&[("x", 20), ("w", 5)])) })
            .await
            .unwrap();
        assert_eq!(items(&bob), ["x", "w"]);
    }

    #[tokio::test]
    async fn a_read_that_overlapped_a_recorded_change_is_not_kept() {
        let states = UserStates::new(Duration::from_secs(60));
        let overlapped = states
            .get_or_load("ada", async {
                let old = history(&[("a", 10)]);
                states.record("ada", &[touch("b", 20)], 10).await;
                Ok(old)
            })
            .await
            .unwrap();
        assert_eq!(items(&overlapped), ["a"]);
        let next = states
            .get_or_load("ada", async { Ok(history(&[("b", 20), ("a", 10)])) })
            .await
            .unwrap();
        assert_eq!(items(&next), ["b", "a"], "read afresh");
    }

    #[tokio::test]
    async fn recorded_touches_do_not_extend_how_long_a_state_is_reused() {
        let ttl = Duration::from_millis(400);
        let states = UserStates::new(ttl);
        states
            .get_or_load("ada", async { Ok(history(&[("a", 10)])) })
            .await
            .unwrap();
        tokio::time::sleep(ttl / 2).await;
        states.record("ada", &[touch("b", 20)], 10).await;
        tokio::time::sleep(ttl).await;
        let read = states
            .get_or_load("ada", async { Ok(history(&[("c", 30)])) })
            .await
            .unwrap();
        assert_eq!(
            items(&read),
            ["c"],
            "read afresh once ttl passed since the first read"
        );
    }
}
