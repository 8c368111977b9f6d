//! The cache on both backends: values round-trip and invalidation drops them; a load that
//! overlapped an invalidation is not kept; concurrent misses share one load; an undecodable Redis entry (written by another
//! release, say) is a miss, not an error. Redis runs when `REDIS_URL` is set.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost_types::Timestamp;
use redis::AsyncCommands as _;
use tailor_kit::cache::Cache;
use tailor_kit::testing::{TestRedis, init_for_tests};

#[tokio::test]
async fn values_round_trip_and_invalidate_on_both_backends() {
    init_for_tests();
    let redis = TestRedis::new().await.unwrap();
    let ttl = Duration::from_secs(60);
    let mut caches = vec![("memory", Cache::<Timestamp>::new(None, "t", ttl, 10))];
    if let Some(redis) = &redis {
        caches.push(("redis", Cache::new(Some(&redis.redis), "t", ttl, 10)));
    }
    let value = Timestamp {
        seconds: 42,
        nanos: 7,
    };
    for (backend, cache) in &caches {
        assert_eq!(cache.get("a").await, None, "{backend}");
        cache.set("a", Arc::new(value)).await;
        cache.set("b", Arc::new(Timestamp::default())).await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&value), "{backend}");
        cache.invalidate(&["a"]).await;
        assert_eq!(cache.get("a").await, None, "{backend}");
        assert!(
            cache.get("b").await.is_some(),
            "{backend}: only `a` was invalidated"
        );

        let old = Timestamp {
            seconds: 1,
            nanos: 0,
        };
        let overlapped = cache
            .get_or_load("c", async {
                // The change commits and invalidates while the old value is being fetched.
                cache.invalidate(&["c"]).await;
                Ok::<_, ()>(old)
            })
            .await
            .unwrap();
        assert_eq!(
            *overlapped, old,
            "{backend}: the caller gets what it fetched"
        );
        assert_eq!(cache.get("c").await, None, "{backend}: but it is not kept");
        let loaded = cache
            .get_or_load("c", async { Ok::<_, ()>(value) })
            .await
            .unwrap();
        assert_eq!(*loaded, value, "{backend}");
        assert_eq!(cache.get("c").await.as_deref(), Some(&value), "{backend}");

        let loads = &AtomicUsize::new(0);
        let load = |seconds| async move {
            loads.fetch_add(1, Ordering::SeqCst);
            // Long enough for the other miss to arrive while this one is fetching.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>(Timestamp { seconds, nanos: 0 })
        };
        let (first, second) = tokio::join!(
            cache.get_or_load("d", load(1)),
            cache.get_or_load("d", load(2)),
        );
        assert_eq!(loads.load(Ordering::SeqCst), 1, "{backend}: one load");
        assert_eq!(first.unwrap(), second.unwrap(), "{backend}");
    }

    if let (Some(redis), Some((_, cache))) = (&redis, caches.get(1)) {
        let mut conn = redis.redis.conn();
        let garbage: &[u8] = &[0xff, 0xff, 0xff];
        conn.set::<_, _, ()>(redis.redis.key("t:bad"), garbage)
            .await
            .unwrap();
        assert_eq!(cache.get("bad").await, None);
    }
}
