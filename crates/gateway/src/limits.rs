//! Request rate limits per viewer (user or device) and per client IP, as token buckets
//! (GCRA): in Redis when configured, so every gateway replica shares one budget, otherwise
//! in-process.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tailor_kit::redis::Redis;

use crate::config::RateLimitSettings;

/// GCRA in one round trip: the key holds the theoretical arrival time (µs, so limits above
/// 1,000/s keep their precision); Redis's clock is used so replicas with skewed clocks agree.
/// Returns 0 when allowed, else µs to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((tolerance + interval) / 1000))
return 0
";

/// A rate limiter.
#[derive(Clone)]
pub enum Limiter {
    /// Shared by every replica.
    Redis {
        /// Connection and namespace.
        redis: Redis,
        /// Limits.
        settings: RateLimitSettings,
        /// The GCRA script.
        script: Arc<redis::Script>,
    },
    /// This process only.
    Memory {
        /// Per viewer.
        viewers: Arc<DefaultKeyedRateLimiter<String>>,
        /// Per IP.
        ips: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    },
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

impl Limiter {
    /// Redis-backed when `redis` is given.
    pub fn new(settings: &RateLimitSettings, redis: Option<&Redis>) -> Self {
        match redis {
            Some(redis) => Self::Redis {
                redis: redis.clone(),
                settings: settings.clone(),
                script: Arc::new(redis::Script::new(GCRA)),
            },
            None => Self::Memory {
                viewers: Arc::new(RateLimiter::keyed(quota(
                    settings.per_user_per_second,
                    settings.per_user_burst,
                ))),
                ips: Arc::new(RateLimiter::keyed(quota(
                    settings.per_ip_per_second,
                    settings.per_ip_burst,
                ))),
            },
        }
    }

    /// `Ok` when both the viewer and the IP are within their limits, else how long to wait.
    pub async fn admit(&self, viewer: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        match self {
            Self::Memory { viewers, ips } => {
                // The limiter's own clock: building a clock per call re-detects the CPU.
                let now = viewers.clock().now();
                if let Some(ip) = ip
                    && let Err(not_until) = ips.check_key(&ip)
                {
                    return Err(not_until.wait_time_from(now));
                }
                viewers
                    .check_key(&viewer.to_owned())
                    .map_err(|not_until| not_until.wait_time_from(now))
            }
            Self::Redis {
                redis,
                settings,
                script,
            } => {
                if let Some(ip) = ip {
                    let key = redis.key(&format!("gateway:rate:ip:{ip}"));
                    gcra(
                        redis,
                        script,
                        &key,
                        settings.per_ip_per_second,
                        settings.per_ip_burst,
                    )
                    .await?;
                }
                let key = redis.key(&format!("gateway:rate:viewer:{viewer}"));
                gcra(
                    redis,
                    script,
                    &key,
                    settings.per_user_per_second,
                    settings.per_user_burst,
                )
                .await
            }
        }
    }

    /// Forgets idle keys of the in-process limiter (its memory grows with distinct keys).
    pub fn forget_idle(&self) {
        if let Self::Memory { viewers, ips } = self {
            viewers.retain_recent();
            ips.retain_recent();
        }
    }
}

async fn gcra(
    redis: &Redis,
    script: &redis::Script,
    key: &str,
    per_second: u32,
    burst: u32,
) -> Result<(), Duration> {
    let (interval_us, tolerance_us) = gcra_parameters(per_second, burst);
    let mut conn = redis.conn();
    match script
        .key(key)
        .arg(interval_us)
        .arg(tolerance_us)
        .invoke_async::<u64>(&mut conn)
        .await
    {
        Ok(0) => Ok(()),
        Ok(wait_us) => Err(Duration::from_micros(wait_us)),
        Err(err) => {
            // A limiter outage must not take the app down with it: fail open, loudly.
            tracing::warn!(error = %err, "rate limiter unavailable, admitting");
            Ok(())
        }
    }
}

/// The emission interval and the burst tolerance, in µs: a burst of `burst` calls at once,
/// then one per interval.
fn gcra_parameters(per_second: u32, burst: u32) -> (u64, u64) {
    let interval = (1_000_000 / u64::from(per_second.max(1))).max(1);
    (interval, interval * u64::from(burst.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_kit::testing::TestRedis;

    #[test]
    fn high_limits_keep_their_precision() {
        // In ms, anything above 1,000/s rounded to a zero tolerance and refused every call.
        assert_eq!(gcra_parameters(1_000_000, 1_000_000), (1, 1_000_000));
        assert_eq!(gcra_parameters(600, 10), (1_666, 16_660));
        assert_eq!(gcra_parameters(0, 0), (1_000_000, 1_000_000));
    }

    #[tokio::test]
    async fn the_shared_limiter_admits_the_burst_then_refuses_with_a_wait() {
        let Some(test) = TestRedis::new().await.expect("redis") else {
            return;
        };
        let tight = RateLimitSettings {
            per_user_per_second: 1,
            per_user_burst: 3,
            per_ip_per_second: 1_000_000,
            per_ip_burst: 1_000_000,
        };
        let limiter = Limiter::new(&tight, Some(&test.redis));
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(limiter.admit("u", ip).await.is_ok());
        }
        let wait = limiter.admit("u", ip).await.expect_err("over the burst");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limiter.admit("other", ip).await.is_ok(), "per viewer");

        let generous = RateLimitSettings {
            per_user_per_second: 1_000_000,
            per_user_burst: 1_000_000,
            ..tight
        };
        let limiter = Limiter::new(&generous, Some(&test.redis));
        for _ in 0..200 {
            assert!(limiter.admit("busy", ip).await.is_ok());
        }
    }

    #[tokio::test]
    async fn the_burst_is_admitted_then_refused_with_a_wait() {
        let settings = RateLimitSettings {
            per_user_per_second: 1,
            per_user_burst: 3,
            per_ip_per_second: 1000,
            per_ip_burst: 1000,
        };
        let limiter = Limiter::new(&settings, None);
        for _ in 0..3 {
            assert!(limiter.admit("u", None).await.is_ok());
        }
        let wait = limiter.admit("u", None).await.unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(
            limiter.admit("other", None).await.is_ok(),
            "limits are per viewer"
        );
    }
}
