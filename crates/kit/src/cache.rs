//! A read-through cache of protobuf messages: in Redis when configured (shared by every
//! replica, stored encoded), otherwise in-process (bounded, with a time to live, kept decoded
//! so a hit costs no decoding).
//!
//! The cache is an accelerator, never the source of truth: a Redis error or an undecodable
//! entry counts as a miss and is logged, so a Redis outage slows reads down instead of
//! failing them.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;

use crate::redis::Redis;

/// A cache of one kind of value (e.g. profiles), with its own key prefix and TTL.
pub struct Cache<T> {
    backend: Backend<T>,
    prefix: String,
    ttl: Duration,
}

// Derived `Clone` would ask `T: Clone`; only the handles are cloned.
impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            prefix: self.prefix.clone(),
            ttl: self.ttl,
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
        }
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
}
