//! Redis Streams as the bus: one stream per topic, one consumer group per consuming service.
//!
//! Delivery contract: a message stays in its group's pending list until acknowledged. A
//! consumer that restarts under the same name first re-reads its own pending messages; one
//! that never comes back has its messages claimed by a live consumer of the group after
//! `reclaim_idle` (`XAUTOCLAIM`). Streams are trimmed only below what every group has
//! acknowledged. Redis must persist (AOF) in production for this to survive its restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply, StreamReadReply,
};
use tokio::time::Instant;

use super::{Delivery, EventSettings};
use crate::redis::Redis;

/// Field of a stream entry holding the encoded envelope.
const FIELD: &str = "e";
/// How often a publisher trims a stream below its groups' acknowledged position.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct RedisBus {
    redis: Redis,
    settings: EventSettings,
    last_trim: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus on `redis`.
    pub fn new(redis: Redis, settings: EventSettings) -> Self {
        Self {
            redis,
            settings,
            last_trim: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub(super) async fn ping(&self) -> anyhow::Result<()> {
        Ok(self.redis.ping().await?)
    }

    pub(super) async fn publish(&self, topic: &str, payloads: &[Bytes]) -> anyhow::Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        let key = self.redis.key(topic);
        let mut pipe = redis::pipe();
        for payload in payloads {
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg(FIELD)
                .arg(payload.as_ref())
                .ignore();
        }
        let mut conn = self.redis.conn();
        pipe.query_async::<()>(&mut conn)
            .await
            .with_context(|| format!("publishing to {topic}"))?;
        if self.trim_due(topic) {
            // Trimming is housekeeping: a failure must not fail the publish.
            if let Err(err) = self.trim(&key).await {
                tracing::warn!(error = %err, topic, "trimming stream failed");
            }
        }
        Ok(())
    }

    fn trim_due(&self, topic: &str) -> bool {
        let mut last = self
            .last_trim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match last.get(topic) {
            Some(at) if now.duration_since(*at) < TRIM_EVERY => false,
            _ => {
                last.insert(topic.to_owned(), now);
                true
            }
        }
    }

    /// Removes entries older than the oldest one some group still needs.
    async fn trim(&self, key: &str) -> anyhow::Result<()> {
        let mut conn = self.redis.conn();
        let info: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key)
            .query_async(&mut conn)
            .await?;
        if info.groups.is_empty() {
            return Ok(());
        }
        let mut keep_from: Option<StreamPosition> = None;
        for group in &info.groups {
            let (count, oldest_pending, _, _): (u64, Option<String>, Option<String>, redis::Value) =
                redis::cmd("XPENDING")
                    .arg(key)
                    .arg(&group.name)
                    .query_async(&mut conn)
                    .await?;
            let needed = match oldest_pending {
                Some(id) if count > 0 => StreamPosition::parse(&id),
                _ => StreamPosition::parse(&group.last_delivered_id).map(StreamPosition::next),
            };
            let Some(needed) = needed else { return Ok(()) };
            keep_from = Some(keep_from.map_or(needed, |k| k.min(needed)));
        }
        if let Some(keep_from) = keep_from {
            redis::cmd("XTRIM")
                .arg(key)
                .arg("MINID")
                .arg(keep_from.to_string())
                .query_async::<u64>(&mut conn)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
    ) -> anyhow::Result<RedisSubscription> {
        // Blocking reads need a connection of their own; its timeout outlasts the block.
        let conn = self
            .redis
            .dedicated(self.settings.block + Duration::from_secs(5))
            .await
            .context("connecting to Redis for a consumer")?;
        let mut subscription = RedisSubscription {
            conn,
            redis: self.redis.clone(),
            key: self.redis.key(topic),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            settings: self.settings.clone(),
            own_pending_cursor: Some("0".to_owned()),
            autoclaim_cursor: "0-0".to_owned(),
            last_reclaim: None,
        };
        subscription.create_group().await?;
        Ok(subscription)
    }
}

/// A stream entry id `ms-seq`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamPosition(u64, u64);

impl StreamPosition {
    fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }

    fn next(self) -> Self {
        Self(self.0, self.1.saturating_add(1))
    }
}

impl std::fmt::Display for StreamPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// A consumer's membership in a Redis consumer group.
pub struct RedisSubscription {
    conn: ConnectionManager,
    redis: Redis,
    key: String,
    group: String,
    consumer: String,
    settings: EventSettings,
    /// Where re-reading this consumer's own pending messages stands; `None` once done.
    own_pending_cursor: Option<String>,
    autoclaim_cursor: String,
    last_reclaim: Option<Instant>,
}

impl RedisSubscription {
    async fn create_group(&mut self) -> anyhow::Result<()> {
        // From "0": a group created after events were published still sees them.
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut self.conn)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            Err(err) => Err(err).context("creating the consumer group"),
        }
    }

    pub(super) async fn next_batch(&mut self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        match self.read(max).await {
            Err(err) if is_no_group(&err) => {
                // Redis lost the group (restart without persistence, stream deleted).
                tracing::warn!(stream = %self.key, group = %self.group, "consumer group vanished, recreating it");
                self.create_group().await?;
                self.read(max).await
            }
            other => other,
        }
    }

    async fn read(&mut self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        if let Some(cursor) = self.own_pending_cursor.clone() {
            let reply: StreamReadReply = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(max)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&cursor)
                .query_async(&mut self.conn)
                .await?;
            let entries: Vec<StreamId> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
            match entries.last() {
                None => self.own_pending_cursor = None,
                Some(last) => {
                    self.own_pending_cursor = Some(last.id.clone());
                    let attempts = self.attempts(&entries).await?;
                    return Ok(deliveries(entries, &attempts));
                }
            }
        }

        let reclaim_due = self
            .last_reclaim
            .is_none_or(|at| at.elapsed() >= self.settings.reclaim_idle / 2);
        if reclaim_due {
            let idle_ms = u64::try_from(self.settings.reclaim_idle.as_millis()).unwrap_or(u64::MAX);
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(idle_ms)
                .arg(&self.autoclaim_cursor)
                .arg("COUNT")
                .arg(max)
                .query_async(&mut self.conn)
                .await?;
            self.autoclaim_cursor = reply.next_stream_id;
            if self.autoclaim_cursor == "0-0" {
                // A full pass over the pending list is done; rest until the next one is due.
                self.last_reclaim = Some(Instant::now());
            }
            let claimed: Vec<StreamId> = reply
                .claimed
                .into_iter()
                .filter(|e| !e.map.is_empty())
                .collect();
            if !claimed.is_empty() {
                tracing::info!(stream = %self.key, group = %self.group, count = claimed.len(), "reclaimed messages from a silent consumer");
                let attempts = self.attempts(&claimed).await?;
                return Ok(deliveries(claimed, &attempts));
            }
        }

        let block_ms = u64::try_from(self.settings.block.as_millis()).unwrap_or(1000);
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">")
            .query_async(&mut self.conn)
            .await?;
        let entries: Vec<StreamId> = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        Ok(deliveries(entries, &HashMap::new()))
    }

    /// Delivery counts of pending entries, for dead-lettering poison messages.
    async fn attempts(&mut self, entries: &[StreamId]) -> anyhow::Result<HashMap<String, u64>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(HashMap::new());
        };
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.key)
            .arg(&self.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len())
            .query_async(&mut self.conn)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|p| (p.id, p.times_delivered as u64))
            .collect())
    }

    pub(super) async fn ack(&mut self, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        redis::cmd("XACK")
            .arg(&self.key)
            .arg(&self.group)
            .arg(ids)
            .query_async::<u64>(&mut self.conn)
            .await
            .context("acknowledging messages")?;
        Ok(())
    }

    pub(super) async fn dead_letter(
        &mut self,
        delivery: &Delivery,
        reason: &str,
    ) -> anyhow::Result<()> {
        tracing::error!(stream = %self.key, id = %delivery.id, reason, "event moved to the dead-letter stream");
        let mut conn = self.redis.conn();
        redis::cmd("XADD")
            .arg(format!("{}.dead", self.key))
            .arg("*")
            .arg(FIELD)
            .arg(delivery.payload.as_ref())
            .arg("group")
            .arg(&self.group)
            .arg("reason")
            .arg(reason)
            .query_async::<String>(&mut conn)
            .await
            .context("writing the dead letter")?;
        self.ack(std::slice::from_ref(&delivery.id)).await
    }
}

fn is_no_group(err: &anyhow::Error) -> bool {
    err.downcast_ref::<redis::RedisError>()
        .is_some_and(|e| e.code() == Some("NOGROUP"))
}

fn deliveries(entries: Vec<StreamId>, attempts: &HashMap<String, u64>) -> Vec<Delivery> {
    entries
        .into_iter()
        .map(|entry| {
            // An entry without our field (trimmed, or written by someone else) arrives empty
            // and fails to decode, so the consumer dead-letters it instead of looping on it.
            let payload: Vec<u8> = entry.get(FIELD).unwrap_or_default();
            Delivery {
                attempts: attempts.get(&entry.id).copied().unwrap_or(1),
                id: entry.id,
                payload: Bytes::from(payload),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_positions_order_numerically() {
        let a = StreamPosition::parse("1700000000000-9").unwrap();
        let b = StreamPosition::parse("1700000000000-10").unwrap();
        assert!(a < b);
        assert_eq!(a.next().to_string(), "1700000000000-10");
        assert_eq!(StreamPosition::parse("bogus"), None);
    }
}
