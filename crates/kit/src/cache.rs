//! A read-through cache of protobuf messages: in Redis when configured (shared by every
//! replica, stored encoded), otherwise in-process (bounded, with a time to live, kept decoded
//! so a hit costs no decoding).
//!
//! The cache is an accelerator, never the source of truth: a Redis error or an undecodable
//! entry counts as a miss and is logged, so a Redis outage slows reads down instead of
//! failing them.
//!
//! A read can race a change: it may fetch the value from before a commit and store it after
//! the commit's invalidation, leaving the old value cached for a whole TTL. [`Invalidations`]
//! lets a read tell, and [`Cache::get_or_load`] takes such an entry back out.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands as _;

use crate::redis::Redis;

/// Stripes of keys whose invalidations are counted together: enough that unrelated keys
/// rarely share one (a shared one only costs a read its cache entry).
const STRIPES: usize = 4096;

/// Counts invalidations per stripe of keys, so that a read can tell whether the value it
/// fetched may predate an invalidation that happened while it ran. Covers invalidations made
/// in this process. Cheap to clone (shared).
#[derive(Clone)]
pub struct Invalidations {
    stripes: Arc<[AtomicU64]>,
    hasher: RandomState,
}

/// Where a key's stripe stood when a read began ([`Invalidations::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
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
    pub fn mark(&self, key: &str) -> Mark {
        let stripe = self.stripe(key);
        Mark {
            stripe,
            count: self.stripes[stripe].load(Ordering::SeqCst),
        }
    }

    /// Whether the key of `mark` may have been invalidated since.
    pub fn since(&self, mark: Mark) -> bool {
        self.stripes[mark.stripe].load(Ordering::SeqCst) != mark.count
    }

    /// Counts an invalidation of `key`; made before the entry is dropped, so a read either
    /// sees it or stores its value before the drop.
    pub fn record(&self, key: &str) {
        self.stripes[self.stripe(key)].fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an invalidation of every key.
    pub fn record_all(&self) {
        for stripe in self.stripes.iter() {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A cache of one kind of value (e.g. profiles), with its own key prefix and TTL.
pub struct Cache<T> {
    backend: Backend<T>,
    prefix: String,
    ttl: Duration,
    invalidations: Invalidations,
}

// Derived `Clone` would ask `T: Clone`; only the handles are cloned.
impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            prefix: self.prefix.clone(),
            ttl: self.ttl,
            invalidations: self.invalidations.clone(),
        }
    }
}

enum Backend<T> {
    Redis(Redis),
    Memory(moka::future::Cache<String, Arc<T>>),
}

impl<T> Clone for Backend<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Redis(redis) => Self::Redis(redis.clone()),
            Self::Memory(cache) => Self::Memory(cache.clone()),
        }
    }
}

impl<T> std::fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.backend {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        };
        f.debug_struct("Cache")
            .field("backend", &backend)
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl<T: prost::Message + Default + Send + Sync + 'static> Cache<T> {
    /// A cache named `name` (part of every key, e.g. `profile:profile`) in Redis when given,
    /// else in-process holding at most `capacity` entries.
    pub fn new(redis: Option<&Redis>, name: &str, ttl: Duration, capacity: u64) -> Self {
        let backend = match redis {
            Some(redis) => Backend::Redis(redis.clone()),
            None => Backend::Memory(
                moka::future::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build(),
            ),
        };
        let prefix = match redis {
            Some(redis) => redis.key(&format!("{name}:")),
            None => format!("{name}:"),
        };
        Self {
            backend,
            prefix,
            ttl,
            invalidations: Invalidations::default(),
        }
    }

    /// The value for `key`: cached, or fetched with `load` and cached unless `key` was
    /// invalidated in this process while `load` ran (the caller still gets what it fetched).
    /// Across processes sharing Redis, the TTL bounds such a race.
    pub async fn get_or_load<E>(
        &self,
        key: &str,
        load: impl Future<Output = Result<T, E>>,
    ) -> Result<Arc<T>, E> {
        if let Some(value) = self.get(key).await {
            return Ok(value);
        }
        let mark = self.invalidations.mark(key);
        let value = Arc::new(load.await?);
        self.set(key, value.clone()).await;
        // Checked after storing: an invalidation in between either counted first (seen
        // now) or drops the entry itself after counting.
        if self.invalidations.since(mark) {
            self.drop_entries(&[key]).await;
        }
        Ok(value)
    }

    /// The cached value for `key`, if any.
    #[tracing::instrument(name = "cache", skip_all, fields(otel.kind = "client", db.operation = "get"))]
    pub async fn get(&self, key: &str) -> Option<Arc<T>> {
        let key = format!("{}{key}", self.prefix);
        match &self.backend {
            Backend::Memory(cache) => cache.get(&key).await,
            Backend::Redis(redis) => {
                let mut conn = redis.conn();
                let bytes = match conn.get::<_, Option<Vec<u8>>>(&key).await {
                    Ok(bytes) => bytes?,
                    Err(err) => {
                        tracing::warn!(error = %err, "cache read failed, treating as a miss");
                        return None;
                    }
                };
                match T::decode(bytes.as_slice()) {
                    Ok(value) => Some(Arc::new(value)),
                    Err(err) => {
                        tracing::warn!(error = %err, "undecodable cache entry, treating as a miss");
                        None
                    }
                }
            }
        }
    }

    /// Stores `value` under `key` for the cache's TTL.
    #[tracing::instrument(name = "cache", skip_all, fields(otel.kind = "client", db.operation = "set"))]
    pub async fn set(&self, key: &str, value: Arc<T>) {
        let key = format!("{}{key}", self.prefix);
        match &self.backend {
            Backend::Memory(cache) => cache.insert(key, value).await,
            Backend::Redis(redis) => {
                let mut conn = redis.conn();
                let ttl = self.ttl.as_secs().max(1);
                let bytes = value.encode_to_vec();
                if let Err(err) = conn.set_ex::<_, _, ()>(&key, bytes, ttl).await {
                    tracing::warn!(error = %err, "cache write failed");
                }
            }
        }
    }

    /// Drops the entries for `keys` (after the data behind them changed).
    #[tracing::instrument(name = "cache", skip_all, fields(otel.kind = "client", db.operation = "invalidate"))]
    pub async fn invalidate(&self, keys: &[&str]) {
        for key in keys {
            self.invalidations.record(key);
        }
        self.drop_entries(keys).await;
    }

    async fn drop_entries(&self, keys: &[&str]) {
        if keys.is_empty() {
            return;
        }
        let keys: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
        match &self.backend {
            Backend::Memory(cache) => {
                for key in &keys {
                    cache.invalidate(key).await;
                }
            }
            Backend::Redis(redis) => {
                let mut conn = redis.conn();
                if let Err(err) = conn.del::<_, ()>(&keys).await {
                    // A stale entry would outlive the change until its TTL: say so loudly.
                    tracing::error!(error = %err, "cache invalidation failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_cache_stores_and_invalidates() {
        let cache = Cache::<String>::new(None, "t", Duration::from_secs(60), 10);
        assert_eq!(cache.get("a").await, None);
        cache.set("a", Arc::new("1".to_owned())).await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&"1".to_owned()));
        cache.invalidate(&["a"]).await;
        assert_eq!(cache.get("a").await, None);
    }

    fn load(value: &str) -> std::future::Ready<Result<String, ()>> {
        std::future::ready(Ok(value.to_owned()))
    }

    #[tokio::test]
    async fn a_loaded_value_is_cached() {
        let cache = Cache::<String>::new(None, "t", Duration::from_secs(60), 10);
        let first = cache.get_or_load("a", load("1")).await.unwrap();
        let second = cache.get_or_load("a", load("not loaded")).await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("1", "1"));
        assert!(cache.get_or_load("b", async { Err(()) }).await.is_err());
        assert_eq!(cache.get("b").await, None, "a failed load caches nothing");
    }

    #[tokio::test]
    async fn a_load_that_overlapped_an_invalidation_is_not_kept() {
        let cache = Cache::<String>::new(None, "t", Duration::from_secs(60), 10);
        // The load fetches the old value, then the change commits and invalidates the key
        // before the load stores what it fetched.
        let overlapped = cache
            .get_or_load("a", async {
                let old = load("old").await;
                cache.invalidate(&["a"]).await;
                old
            })
            .await
            .unwrap();
        assert_eq!(
            overlapped.as_str(),
            "old",
            "this caller still gets what it fetched"
        );
        let next = cache.get_or_load("a", load("new")).await.unwrap();
        assert_eq!(next.as_str(), "new", "the next one fetches afresh");
    }

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
}
