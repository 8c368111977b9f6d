//! Readiness: a server reports SERVING only while its dependencies (database, Redis) answer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::grpc::server::Health;
use crate::redis::Redis;

/// One dependency to probe.
#[derive(Clone)]
pub struct Check {
    name: &'static str,
    probe: Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>,
}

impl Check {
    /// A named probe.
    pub fn new<F, Fut>(name: &'static str, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            name,
            probe: Arc::new(move || Box::pin(probe())),
        }
    }

    /// The database answers `SELECT 1`.
    pub fn database(db: &Db) -> Self {
        let db = db.clone();
        Self::new("database", move || {
            let db = db.clone();
            async move { Ok(db.ping().await?) }
        })
    }

    /// Redis answers `PING`.
    pub fn redis(redis: &Redis) -> Self {
        let redis = redis.clone();
        Self::new("redis", move || {
            let redis = redis.clone();
            async move { Ok(redis.ping().await?) }
        })
    }
}

/// Probes `checks` every `interval` and keeps `health` in step, until `stop` is cancelled.
/// The first probe runs at once, so a healthy server turns SERVING right after start.
pub async fn watch(
    health: Health,
    checks: Vec<Check>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut serving = None;
    loop {
        let mut failed = None;
        for check in &checks {
            let probe = tokio::time::timeout(Duration::from_secs(3), (check.probe)()).await;
            match probe {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    failed = Some((check.name, err.to_string()));
                    break;
                }
                Err(_) => {
                    failed = Some((check.name, "timed out".to_owned()));
                    break;
                }
            }
        }
        let now_serving = failed.is_none();
        if serving != Some(now_serving) && !stop.is_cancelled() {
            match &failed {
                None => {
                    tracing::info!(services = ?health.services(), "dependencies ready: SERVING")
                }
                Some((name, err)) => {
                    tracing::warn!(dependency = name, error = %err, "dependency down: NOT_SERVING");
                }
            }
            health.set(now_serving).await;
            serving = Some(now_serving);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
