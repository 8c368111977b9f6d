//! Users' serving state (consent and recent history) as last read from the store, reused
//! across requests until an event of theirs is consumed.
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

use crate::error::Result;
use crate::store::UserState;

/// Most touches (history entries) held at once, over all users: about 70 bytes each.
const MAX_TOUCHES: u64 = 2_000_000;

/// The cache of [`UserState`]s. Cheap to clone (shared).
#[derive(Clone)]
pub struct UserStates {
    cache: moka::future::Cache<String, Arc<UserState>>,
    reads: Reads<UserState>,
}

impl UserStates {
    /// States reused for at most `ttl` after they were read.
    pub fn new(ttl: Duration) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(MAX_TOUCHES)
                .weigher(|_, state: &Arc<UserState>| {
                    u32::try_from(state.history.len() + 1).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Touch;

    fn state(items: &[&str]) -> UserState {
        UserState {
            allowed: true,
            erased: false,
            history: items
                .iter()
                .map(|item| Touch {
                    item_id: (*item).to_owned(),
                    kind: 1,
                    weight: 1.0,
                    at: 0,
                })
                .collect(),
        }
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
}
