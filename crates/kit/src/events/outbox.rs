//! The transactional outbox: events are rows written in the same transaction as the state
//! change they describe, so a state change is never published without being committed nor
//! committed without being published. The [`Relay`] moves rows to the bus in order and deletes
//! them only after the bus accepted them; a crash in between publishes them again, which
//! consumers' deduplication absorbs.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use sqlx::{Any, Row as _, Transaction};
use tailor_proto::events::v1::EventEnvelope;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Bus, EventSettings};
use crate::db::{Backend, Db, statement_chunks};
use crate::time::now_micros;

/// Writes `envelope` for `topic` into the outbox, inside the caller's transaction.
pub async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    topic: &str,
    envelope: &EventEnvelope,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (topic, event_id, envelope, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(topic)
    .bind(&envelope.event_id)
    .bind(envelope.encode_to_vec())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes many `(topic, envelope)` events into the outbox, in order, inside the caller's
/// transaction: a few multi-row statements instead of one round trip per event.
pub async fn enqueue_many(
    tx: &mut Transaction<'static, Any>,
    events: &[(&str, EventEnvelope)],
) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 4;
    let backend = Backend::of_connection(tx);
    let now = now_micros();
    for chunk in statement_chunks(events, COLUMNS) {
        let sql = format!(
            "INSERT INTO outbox (topic, event_id, envelope, created_at) VALUES {}",
            backend.values_placeholders(chunk.len(), COLUMNS, 1)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (topic, envelope) in chunk {
            query = query
                .bind(*topic)
                .bind(&envelope.event_id)
                .bind(envelope.encode_to_vec())
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Wakes the relay after a commit, so events leave without waiting for the next poll.
#[derive(Clone, Debug, Default)]
pub struct RelayWaker(Arc<Notify>);

impl RelayWaker {
    /// Tells the relay there is something new in the outbox.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Publishes a service's outbox to the bus.
pub struct Relay {
    db: Db,
    bus: Bus,
    settings: EventSettings,
    waker: RelayWaker,
}

impl Relay {
    /// A relay from `db`'s outbox to `bus`.
    pub fn new(db: Db, bus: Bus, settings: EventSettings) -> Self {
        Self {
            db,
            bus,
            settings,
            waker: RelayWaker::default(),
        }
    }

    /// The handle a service uses to wake this relay after committing events.
    pub fn waker(&self) -> RelayWaker {
        self.waker.clone()
    }

    /// Relays until `stop`; after a failure (bus or database down) it retries with backoff,
    /// leaving the rows in place.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            if stop.is_cancelled() {
                return;
            }
            match self.relay_once().await {
                Ok(0) => {
                    backoff = std::time::Duration::from_millis(100);
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = self.waker.0.notified() => {}
                        () = tokio::time::sleep(self.settings.relay_poll) => {}
                    }
                }
                Ok(_) => backoff = std::time::Duration::from_millis(100),
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "outbox relay failed, will retry");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }

    /// Publishes one batch of outbox rows; returns how many.
    pub async fn relay_once(&self) -> anyhow::Result<usize> {
        let limit = i64::try_from(self.settings.relay_batch).unwrap_or(500);
        let rows = sqlx::query(
            "SELECT outbox_id, topic, envelope FROM outbox ORDER BY outbox_id LIMIT CAST($1 AS BIGINT)",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(rows.len());
        // Consecutive rows of one topic go out in one round trip, in order.
        let mut run_topic: Option<String> = None;
        let mut run: Vec<Bytes> = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("outbox_id")?;
            let topic: String = row.try_get("topic")?;
            let envelope: Vec<u8> = row.try_get("envelope")?;
            if run_topic.as_deref() != Some(topic.as_str()) {
                if let Some(previous) = run_topic.take() {
                    self.bus.publish(&previous, &run).await?;
                    run.clear();
                }
                run_topic = Some(topic);
            }
            run.push(Bytes::from(envelope));
            ids.push(id);
        }
        if let Some(topic) = run_topic {
            self.bus.publish(&topic, &run).await?;
        }
        let sql = format!(
            "DELETE FROM outbox WHERE outbox_id IN ({})",
            self.db.backend().list_placeholders(ids.len(), 1)
        );
        let mut delete = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            delete = delete.bind(*id);
        }
        delete.execute(self.db.writer()).await?;
        Ok(ids.len())
    }
}
