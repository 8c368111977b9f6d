//! Reads that fill a cache on a miss, made safe against two things:
//!
//! - **A read racing a change.** It may fetch the value from before a commit and store it after
//!   the commit's invalidation, leaving the old value cached for a whole lifetime. Invalidations
//!   are counted ([`Invalidations`]); a read that overlapped one takes its entry back out.
//! - **Concurrent misses of one key.** A screen asks for the same user's profile and recent
//!   items at once, so after each change both miss, and each would fetch and decode the same
//!   row. A miss that arrives while another read of its key is running, and began after that
//!   key's last invalidation, waits for that read's value instead of fetching its own.
//!
//! A change whose effect on the value is known ([`Reads::update`]) can be applied to the cached
//! value instead of dropping it, under the same guard.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use tokio::sync::OnceCell;

/// Stripes of keys whose invalidations are counted together: enough that unrelated keys
/// rarely share one (a shared one only costs a read its cache entry).
const STRIPES: usize = 4096;

/// Counts invalidations per stripe of keys, so that a read can tell whether the value it
/// fetched may predate an invalidation that happened while it ran. Covers invalidations made
/// in this process. Cheap to clone (shared).
#[derive(Clone)]
struct Invalidations {
    stripes: Arc<[AtomicU64]>,
    hasher: RandomState,
}

/// Where a key's stripe stood when a read began ([`Invalidations::mark`]).
#[derive(Debug, Clone, Copy)]
struct Mark {
    stripe: usize,
    count: u64,
}

impl Default for Invalidations {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl Invalidations {
    fn stripe(&self, key: &str) -> usize {
        // Any bits of the hash do as an index: a lost high half on 32-bit targets is fine.
        self.hasher.hash_one(key) as usize % STRIPES
    }

    /// Taken before fetching a value that will be cached.
    fn mark(&self, key: &str) -> Mark {
        let stripe = self.stripe(key);
        Mark {
            stripe,
            count: self.stripes[stripe].load(Ordering::SeqCst),
        }
    }

    /// Whether the key of `mark` may have been invalidated since.
    fn since(&self, mark: Mark) -> bool {
        self.stripes[mark.stripe].load(Ordering::SeqCst) != mark.count
    }

    /// Counts an invalidation of `key`; made before the entry is dropped, so a read either
    /// sees it or stores its value before the drop.
    fn record(&self, key: &str) {
        self.stripes[self.stripe(key)].fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an invalidation of every key.
    fn record_all(&self) {
        for stripe in self.stripes.iter() {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A read in flight; its value is set once by whichever of its callers fetches it.
type Flight<T> = Arc<OnceCell<Arc<T>>>;

/// How a read ended, as counted by the `cache.reads` metric.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// The value was cached.
    Hit,
    /// Missed and fetched the value.
    Fetched,
    /// Missed and got the value another read fetched.
    Shared,
    /// Missed and the fetch failed.
    Failed,
}

impl Outcome {
    const ALL: [Self; 4] = [Self::Hit, Self::Fetched, Self::Shared, Self::Failed];

    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Fetched => "fetched",
            Self::Shared => "shared",
            Self::Failed => "failed",
        }
    }
}

/// The `cache.reads` counter of one cache, with each outcome's attributes built once. [`Reads`]
/// counts its own; a cache that computes its misses in place (an in-memory memo) counts
/// with this, so every cache's hit ratio is read from the same metric.
pub struct ReadCounter {
    reads: Counter<u64>,
    attributes: [[KeyValue; 2]; 4],
}

impl ReadCounter {
    /// The counter of the cache named `cache` (its metrics' label), from the global meter
    /// provider: build it after telemetry is initialised.
    pub fn new(cache: &str) -> Self {
        let reads = opentelemetry::global::meter("tailor")
            .u64_counter("cache.reads")
            .with_description("Cache reads, by cache and outcome (hit, fetched, shared, failed)")
            .build();
        let attributes = Outcome::ALL.map(|outcome| {
            [
                KeyValue::new("cache", cache.to_owned()),
                KeyValue::new("outcome", outcome.as_str()),
            ]
        });
        Self { reads, attributes }
    }

    /// Counts one read.
    pub fn add(&self, outcome: Outcome) {
        self.reads.add(1, &self.attributes[outcome as usize]);
    }
}

/// The reads of one cache. Cheap to clone (shared).
pub struct Reads<T> {
    invalidations: Invalidations,
    flights: Arc<Mutex<HashMap<String, Flight<T>>>>,
    counted: Arc<ReadCounter>,
}

// Derived `Clone` would ask `T: Clone`; only the handles are cloned.
impl<T> Clone for Reads<T> {
    fn clone(&self) -> Self {
        Self {
            invalidations: self.invalidations.clone(),
            flights: self.flights.clone(),
            counted: self.counted.clone(),
        }
    }
}

impl<T: Send + Sync> Reads<T> {
    /// The reads of the cache named `cache` (its metrics' label); takes the `cache.reads`
    /// counter from the global meter provider, so build it after telemetry is initialised.
    pub fn new(cache: &str) -> Self {
        Self {
            invalidations: Invalidations::default(),
            flights: Arc::default(),
            counted: Arc::new(ReadCounter::new(cache)),
        }
    }

    /// The value of `key`: what `cached` finds, else fetched with `fetch` and stored with
    /// `keep`, or, when a read of `key` that began after its last invalidation is running,
    /// that read's value. A fetch that overlapped an invalidation of `key` still returns its
    /// value, but takes it back out of the cache with `unkeep`. A failed fetch is not shared:
    /// the callers waiting for it fetch for themselves, one at a time.
    pub async fn get<E, K, U>(
        &self,
        key: &str,
        cached: impl Future<Output = Option<Arc<T>>>,
        fetch: impl Future<Output = Result<T, E>>,
        keep: impl FnOnce(Arc<T>) -> K,
        unkeep: impl FnOnce() -> U,
    ) -> Result<Arc<T>, E>
    where
        K: Future<Output = ()>,
        U: Future<Output = ()>,
    {
        if let Some(value) = cached.await {
            self.counted.add(Outcome::Hit);
            return Ok(value);
        }
        let flight = self.join(key);
        // Left on every exit, a cancelled one included, so no settled flight stays joinable.
        let _leave = Leave {
            reads: self,
            key,
            flight: &flight,
        };
        let mut fetched = false;
        let value = flight
            .get_or_try_init(|| async {
                fetched = true;
                let mark = self.invalidations.mark(key);
                let value = Arc::new(fetch.await?);
                keep(value.clone()).await;
                // Checked after storing: an invalidation in between either counted first
                // (seen now) or drops the entry itself after counting.
                if self.invalidations.since(mark) {
                    unkeep().await;
                }
                Ok(value)
            })
            .await
            .cloned();
        self.counted.add(match (&value, fetched) {
            (Err(_), _) => Outcome::Failed,
            (Ok(_), true) => Outcome::Fetched,
            (Ok(_), false) => Outcome::Shared,
        });
        value
    }

    /// Applies a committed change to `key`'s cached value in place instead of dropping it:
    /// counts the change as an invalidation (reads running now will not keep what they
    /// fetched), then, if `cached` finds a value, stores `change` of it with `keep`. Should
    /// another invalidation of `key` come in meanwhile, the value is taken back out with
    /// `unkeep`, as a read's would be. Returns whether a value was updated.
    pub async fn update<K, U>(
        &self,
        key: &str,
        cached: impl Future<Output = Option<Arc<T>>>,
        change: impl FnOnce(&T) -> T,
        keep: impl FnOnce(Arc<T>) -> K,
        unkeep: impl FnOnce() -> U,
    ) -> bool
    where
        K: Future<Output = ()>,
        U: Future<Output = ()>,
    {
        self.invalidated(key);
        let mark = self.invalidations.mark(key);
        let Some(old) = cached.await else {
            return false;
        };
        keep(Arc::new(change(&old))).await;
        if self.invalidations.since(mark) {
            unkeep().await;
            return false;
        }
        true
    }

    /// Counts an invalidation of `key` (made before its entry is dropped): reads running now
    /// will not keep what they fetch, and reads starting from now on do not join them.
    pub fn invalidated(&self, key: &str) {
        self.invalidations.record(key);
        self.lock().remove(key);
    }

    /// [`Self::invalidated`] for every key.
    pub fn invalidated_all(&self) {
        self.invalidations.record_all();
        self.lock().clear();
    }

    fn join(&self, key: &str) -> Flight<T> {
        let mut flights = self.lock();
        if let Some(flight) = flights.get(key) {
            return flight.clone();
        }
        let flight = Flight::default();
        flights.insert(key.to_owned(), flight.clone());
        flight
    }
}

impl<T> Reads<T> {
    /// The map; every change to it is one operation, so a poisoned lock is taken as is.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Flight<T>>> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes a finished (or abandoned) flight out of the map, unless it was replaced meanwhile.
struct Leave<'a, T> {
    reads: &'a Reads<T>,
    key: &'a str,
    flight: &'a Flight<T>,
}

impl<T> Drop for Leave<'_, T> {
    fn drop(&mut self) {
        let mut flights = self.reads.lock();
        if flights
            .get(self.key)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
        {
            flights.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use tokio::sync::Notify;

    use super::*;

    #[test]
    fn marks_see_invalidations_of_their_key_and_of_everything() {
        let invalidations = Invalidations::default();
        let mark = invalidations.mark("a");
        assert!(!invalidations.since(mark));
        invalidations.record("a");
        assert!(invalidations.since(mark));
        let mark = invalidations.mark("a");
        invalidations.record_all();
        assert!(invalidations.since(mark));
    }

    /// Counts fetches; each returns its value (or fails) once `go` is notified.
    #[derive(Default)]
    struct Fetches {
        count: Cell<usize>,
        go: Notify,
    }

    impl Fetches {
        async fn fetch(&self, value: Result<&str, ()>) -> Result<String, ()> {
            self.count.set(self.count.get() + 1);
            self.go.notified().await;
            value.map(str::to_owned)
        }

        /// Lets the fetches waiting now finish, after the other futures of a `join!` ran.
        async fn release(&self) {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            self.go.notify_waiters();
        }
    }

    async fn nothing() {}

    fn miss() -> std::future::Ready<Option<Arc<String>>> {
        std::future::ready(None)
    }

    #[tokio::test]
    async fn concurrent_misses_of_a_key_share_one_fetch() {
        let reads = Reads::<String>::new("test");
        let fetches = Fetches::default();
        let (first, second, other, ()) = tokio::join!(
            reads.get("a", miss(), fetches.fetch(Ok("1")), |_| nothing(), nothing),
            reads.get("a", miss(), fetches.fetch(Ok("2")), |_| nothing(), nothing),
            reads.get("b", miss(), fetches.fetch(Ok("3")), |_| nothing(), nothing),
            fetches.release(),
        );
        assert_eq!(fetches.count.get(), 2, "one fetch per key");
        assert_eq!(first.unwrap().as_str(), "1");
        assert_eq!(second.unwrap().as_str(), "1", "the first one's value");
        assert_eq!(other.unwrap().as_str(), "3");
        assert!(reads.lock().is_empty(), "finished flights are left");
    }

    #[tokio::test]
    async fn a_miss_after_an_invalidation_does_not_join_a_read_that_began_before_it() {
        let reads = Reads::<String>::new("test");
        let fetches = Fetches::default();
        let kept = RefCell::new(Vec::new());
        let unkept = Cell::new(false);
        let keep = |v: Arc<String>| {
            kept.borrow_mut().push(v.to_string());
            nothing()
        };
        let after_change = async {
            tokio::task::yield_now().await;
            reads.invalidated("a");
            reads
                .get(
                    "a",
                    miss(),
                    async { Ok::<_, ()>("new".to_owned()) },
                    keep,
                    nothing,
                )
                .await
        };
        let (before, after, ()) = tokio::join!(
            reads.get("a", miss(), fetches.fetch(Ok("old")), keep, || {
                unkept.set(true);
                nothing()
            }),
            after_change,
            fetches.release(),
        );
        assert_eq!(after.unwrap().as_str(), "new", "fetched afresh, not joined");
        assert_eq!(
            before.unwrap().as_str(),
            "old",
            "still gets what it fetched"
        );
        assert_eq!(*kept.borrow(), ["new", "old"]);
        assert!(unkept.get(), "but does not leave it cached");
    }

    #[tokio::test]
    async fn an_update_changes_a_cached_value_and_keeps_reads_running_from_keeping_theirs() {
        let reads = Reads::<String>::new("test");
        let fetches = Fetches::default();
        let kept = RefCell::new(Vec::new());
        let unkept = Cell::new(0);
        let keep = |v: Arc<String>| {
            kept.borrow_mut().push(v.to_string());
            nothing()
        };
        let unkeep = || {
            unkept.set(unkept.get() + 1);
            nothing()
        };
        let cached = || std::future::ready(Some(Arc::new("v1".to_owned())));
        let update = async {
            tokio::task::yield_now().await;
            reads
                .update("a", cached(), |v| format!("{v}+change"), keep, unkeep)
                .await
        };
        // A read that fetched from before the change runs across it.
        let (read, updated, ()) = tokio::join!(
            reads.get("a", miss(), fetches.fetch(Ok("old")), keep, unkeep),
            update,
            fetches.release(),
        );
        assert!(updated);
        assert_eq!(read.unwrap().as_str(), "old");
        assert_eq!(*kept.borrow(), ["v1+change", "old"]);
        assert_eq!(
            unkept.get(),
            1,
            "the read took its value back out, not the update"
        );

        let nothing_cached = reads
            .update("a", miss(), |v| format!("{v}+change"), keep, unkeep)
            .await;
        assert!(!nothing_cached, "nothing cached: nothing to change");
        assert_eq!(kept.borrow().len(), 2);
    }

    #[tokio::test]
    async fn an_update_overlapping_another_invalidation_takes_its_value_back_out() {
        let reads = Reads::<String>::new("test");
        let unkept = Cell::new(false);
        let updated = reads
            .update(
                "a",
                async {
                    // Another change to the key commits while the update runs.
                    reads.invalidated("a");
                    Some(Arc::new("v1".to_owned()))
                },
                |v| format!("{v}+change"),
                |_| nothing(),
                || {
                    unkept.set(true);
                    nothing()
                },
            )
            .await;
        assert!(!updated);
        assert!(unkept.get());
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_shared() {
        let reads = Reads::<String>::new("test");
        let fetches = Fetches::default();
        let (first, second, ()) = tokio::join!(
            reads.get("a", miss(), fetches.fetch(Err(())), |_| nothing(), nothing),
            reads.get(
                "a",
                miss(),
                async { Ok::<_, ()>("2".to_owned()) },
                |_| nothing(),
                nothing
            ),
            fetches.release(),
        );
        assert!(first.is_err());
        assert_eq!(
            second.unwrap().as_str(),
            "2",
            "the waiter fetched for itself"
        );
        assert!(reads.lock().is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_read_is_not_joined() {
        let reads = Reads::<String>::new("test");
        let fetches = Fetches::default();
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            reads.get(
                "a",
                miss(),
                fetches.fetch(Ok("never")),
                |_| nothing(),
                nothing,
            ),
        )
        .await;
        assert!(abandoned.is_err(), "timed out");
        assert!(
            reads.lock().is_empty(),
            "its flight was left when it was dropped"
        );
        let next = reads
            .get(
                "a",
                miss(),
                async { Ok::<_, ()>("1".to_owned()) },
                |_| nothing(),
                nothing,
            )
            .await;
        assert_eq!(next.unwrap().as_str(), "1");
    }
}
