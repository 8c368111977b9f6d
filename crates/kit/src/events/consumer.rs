//! Idempotent consumers: each event is applied inside a database transaction that also
//! records its id in `processed_event`, so however often the bus delivers it, it takes effect
//! once. A failing event is retried (after `reclaim_idle`) and, after `max_attempts`,
//! moved to the dead-letter stream so it cannot block the ones behind it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Any, Transaction};
use tailor_proto::events::v1::EventEnvelope;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{Bus, Delivery, EventSettings, Subscription, decode_envelope, trace_parent};
use crate::db::Db;
use crate::time::now_micros;

/// What a service does with one event.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies `envelope` inside `tx` (committed by the caller together with the
    /// deduplication record). An error rolls everything back and the event is retried.
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Any>,
        envelope: &EventEnvelope,
    ) -> anyhow::Result<()>;

    /// Runs once `envelope`'s transaction has committed: the place to drop cached copies of
    /// what it changed (dropped before the commit, a concurrent read would cache the old
    /// value again).
    async fn committed(&self, _envelope: &EventEnvelope) {}
}

/// One consumer of one topic within a service's group.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The stream, e.g. [`super::topics::PROFILE_BEHAVIOR_RECORDED`].
    pub topic: String,
    /// The consuming service's group, e.g. `recommend`.
    pub group: String,
    /// This consumer's name within the group; a restart under the same name resumes its own
    /// unacknowledged messages first.
    pub name: String,
}

impl ConsumerSpec {
    /// A consumer of `topic` in `group`, named after this host.
    pub fn new(topic: &str, group: &str) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
        Self {
            topic: topic.to_owned(),
            group: group.to_owned(),
            name: format!("{group}-{host}"),
        }
    }
}

enum Outcome {
    Applied,
    Duplicate,
    Failed(anyhow::Error),
    Poison(String),
}

/// Consumes `spec.topic` until `stop`, applying events with `handler` against `db`.
pub async fn run(
    bus: Bus,
    db: Db,
    spec: ConsumerSpec,
    handler: Arc<dyn Handler>,
    settings: EventSettings,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut last_prune = tokio::time::Instant::now();
    'subscribe: loop {
        let mut subscription = tokio::select! {
            () = stop.cancelled() => return,
            sub = bus.subscribe(&spec.topic, &spec.group, &spec.name) => match sub {
                Ok(sub) => sub,
                Err(err) => {
                    tracing::warn!(error = %err, topic = %spec.topic, retry_in = ?backoff, "cannot subscribe, will retry");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue 'subscribe;
                }
            },
        };
        loop {
            let batch = tokio::select! {
                () = stop.cancelled() => return,
                batch = subscription.next_batch(settings.consumer_batch) => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, topic = %spec.topic, retry_in = ?backoff, "reading events failed, will retry");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue 'subscribe;
                }
            };
            backoff = Duration::from_millis(100);
            if let Err(err) = process_batch(
                &db,
                &spec,
                handler.as_ref(),
                &settings,
                &mut subscription,
                batch,
            )
            .await
            {
                tracing::warn!(error = %err, topic = %spec.topic, "acknowledging events failed; they will be redelivered");
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = tokio::time::Instant::now();
                prune(&db, &spec.group, settings.dedup_retention).await;
            }
        }
    }
}

async fn process_batch(
    db: &Db,
    spec: &ConsumerSpec,
    handler: &dyn Handler,
    settings: &EventSettings,
    subscription: &mut Subscription,
    batch: Vec<Delivery>,
) -> anyhow::Result<()> {
    let mut done = Vec::with_capacity(batch.len());
    for delivery in &batch {
        match process(db, &spec.group, handler, delivery).await {
            Outcome::Applied | Outcome::Duplicate => done.push(delivery.id.clone()),
            Outcome::Poison(reason) => subscription.dead_letter(delivery, &reason).await?,
            Outcome::Failed(err) if delivery.attempts >= settings.max_attempts => {
                subscription
                    .dead_letter(
                        delivery,
                        &format!("failed {} times: {err:#}", delivery.attempts),
                    )
                    .await?;
            }
            Outcome::Failed(err) => {
                tracing::warn!(error = format!("{err:#}"), topic = %spec.topic, id = %delivery.id, attempts = delivery.attempts, "event failed, will be retried");
            }
        }
    }
    subscription.ack(&done).await
}

async fn process(db: &Db, group: &str, handler: &dyn Handler, delivery: &Delivery) -> Outcome {
    let envelope = match decode_envelope(&delivery.payload) {
        Ok(envelope) if !envelope.event_id.is_empty() => envelope,
        Ok(_) => return Outcome::Poison("envelope without event id".to_owned()),
        Err(err) => return Outcome::Poison(format!("{err:#}")),
    };
    let span = tracing::info_span!(
        "event",
        otel.name = %format!("consume {}", envelope.r#type),
        otel.kind = "consumer",
        messaging.system = "tailor",
        messaging.consumer.group.name = %group,
        messaging.message.id = %envelope.event_id,
    );
    let _ = span.set_parent(trace_parent(&envelope));
    async {
        let result = async {
            let mut tx = db.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO processed_event (consumer_group, event_id, processed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer_group, event_id) DO NOTHING",
            )
            .bind(group)
            .bind(&envelope.event_id)
            .bind(now_micros())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(Outcome::Duplicate);
            }
            handler.handle(&mut tx, &envelope).await?;
            tx.commit().await?;
            handler.committed(&envelope).await;
            anyhow::Ok(Outcome::Applied)
        }
        .await;
        result.unwrap_or_else(Outcome::Failed)
    }
    .instrument(span)
    .await
}

async fn prune(db: &Db, group: &str, retention: Duration) {
    let cutoff = now_micros() - i64::try_from(retention.as_micros()).unwrap_or(i64::MAX / 2);
    let pruned =
        sqlx::query("DELETE FROM processed_event WHERE consumer_group = $1 AND processed_at < $2")
            .bind(group)
            .bind(cutoff)
            .execute(db.writer())
            .await;
    if let Err(err) = pruned {
        tracing::warn!(error = %err, "pruning processed event ids failed");
    }
}
