//! A read-through cache of protobuf messages: in Redis when configured (shared by every
//! replica, stored encoded), otherwise in-process (bounded, with a time to live, kept decoded
//! so a hit costs no decoding).
//!
//! The cache is an accelerator, never the source of truth: a Redis error or an undecodable
//! entry counts as a miss and is logged, so a Redis outage slows reads down instead of
//! failing them.
//!
//! Misses are read through [`Reads`]: concurrent misses of a key share one fetch, and a fetch
//! that raced a change does not stay cached.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;

use crate::redis::Redis;

mod reads;

pub use reads::{Outcome, ReadCounter, Reads};

/// A cache of one kind of value (e.g. profiles), with its own key prefix and TTL.
pub struct Cache<T> {
    backend: Backend<T>,
    prefix: String,
    ttl: Duration,
    reads: Reads<T>,
}

// Derived `Clone` would ask `T: Clone`; only the handles are cloned.
impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            prefix: self.prefix.clone(),
            ttl: self.ttl,
            reads: self.reads.clone(),
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
            reads: Reads::new(name),
        }
    }

    /// The value for `key`: cached, or fetched with `load` and cached unless `key` was
    /// invalidated in this process while `load` ran (the caller still gets what it fetched).
    /// Concurrent misses of `key` in this process share one `load` ([`Reads`]). Across
    /// processes sharing Redis, the TTL bounds a read racing a change.
    pub async fn get_or_load<E>(
        &self,
        key: &str,
        load: impl Future<Output = Result<T, E>>,
    ) -> Result<Arc<T>, E> {
        self.reads
            .get(
                key,
                self.get(key),
                load,
                |value| self.set(key, value),
                || async move { self.drop_entries(&[key]).await },
            )
            .await
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
            self.reads.invalidated(key);
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
}
