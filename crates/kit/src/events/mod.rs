//! Domain events: facts one service publishes and others consume, at least once, without loss.
//!
//! A service writes its event into its own `outbox` table in the same transaction as the state
//! change ([`outbox::enqueue`]); the [`outbox::Relay`] publishes outbox rows to the [`Bus`] and
//! deletes them only once the bus accepted them. The bus is Redis Streams with one consumer
//! group per consuming service (production) or an in-process bus (the embedded default).
//! [`consumer::run`] applies each event inside a transaction that also records the event id
//! in `processed_event`, so a redelivery (after a crash, a reclaim, a relay retry) has no
//! second effect.
//!
//! Streams are named `tailor.<area>.<event>`; the names live in [`topics`].

pub mod consumer;
mod memory_bus;
pub mod outbox;
mod redis_bus;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use opentelemetry::propagation::{Extractor, Injector};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tailor_proto::events::v1::EventEnvelope;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use memory_bus::{MemoryBus, MemorySubscription};
pub use redis_bus::{RedisBus, RedisSubscription};

use crate::config::{ConfigError, Validate, check_range};
use crate::redis::Redis;

/// Every stream of the system, by producer.
pub mod topics {
    /// Behaviour events accepted by the profile service (`BehaviorRecorded`).
    pub const PROFILE_BEHAVIOR_RECORDED: &str = "tailor.profile.behavior_recorded";
    /// A user's lifecycle segment changed (`ProfileSegmentChanged`).
    pub const PROFILE_SEGMENT_CHANGED: &str = "tailor.profile.segment_changed";
    /// A user's consent for a purpose changed (`ConsentChanged`).
    pub const PRIVACY_CONSENT_CHANGED: &str = "tailor.privacy.consent_changed";
}

/// Tuning of the outbox relay and of consumers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Outbox rows published per relay round.
    pub relay_batch: usize,
    /// How often the relay looks at the outbox when nobody wakes it.
    #[serde(with = "humantime_serde")]
    pub relay_poll: Duration,
    /// Messages fetched per consumer round.
    pub consumer_batch: usize,
    /// How long a consumer waits for new messages per round.
    #[serde(with = "humantime_serde")]
    pub block: Duration,
    /// A message delivered but not acknowledged for this long (its consumer died or failed)
    /// is delivered again, to any consumer of the group.
    #[serde(with = "humantime_serde")]
    pub reclaim_idle: Duration,
    /// Deliveries before a message that keeps failing goes to the `<stream>.dead` stream.
    pub max_attempts: u64,
    /// How long processed event ids are remembered for deduplication.
    #[serde(with = "humantime_serde")]
    pub dedup_retention: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            relay_batch: 500,
            relay_poll: Duration::from_millis(500),
            consumer_batch: 64,
            block: Duration::from_millis(500),
            reclaim_idle: Duration::from_secs(30),
            max_attempts: 10,
            dedup_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl Validate for EventSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "relay_batch", self.relay_batch, 1..=10_000)?;
        check_range(prefix, "consumer_batch", self.consumer_batch, 1..=10_000)?;
        check_range(prefix, "max_attempts", self.max_attempts, 1..=1000)?;
        Ok(())
    }
}

/// One message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The bus's id of the message (a stream entry id for Redis).
    pub id: String,
    /// The encoded [`EventEnvelope`].
    pub payload: Bytes,
    /// How many times it has been delivered, this time included.
    pub attempts: u64,
}

/// Where events travel: Redis Streams or in-process. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Bus {
    /// Redis Streams with consumer groups.
    Redis(Box<RedisBus>),
    /// In-process, for the embedded default and tests.
    Memory(MemoryBus),
}

impl Bus {
    /// Redis Streams when `redis` is given, else in-process.
    pub fn new(redis: Option<&Redis>, settings: &EventSettings) -> Self {
        match redis {
            Some(redis) => Self::Redis(Box::new(RedisBus::new(redis.clone(), settings.clone()))),
            None => Self::Memory(MemoryBus::new(settings.reclaim_idle, settings.block)),
        }
    }

    /// Appends encoded envelopes to `topic`, in order. Returns once the bus holds them.
    pub async fn publish(&self, topic: &str, payloads: &[Bytes]) -> anyhow::Result<()> {
        match self {
            Self::Redis(bus) => bus.publish(topic, payloads).await,
            Self::Memory(bus) => {
                bus.publish(topic, payloads);
                Ok(())
            }
        }
    }

    /// Joins consumer `group` of `topic` as `consumer`. A group sees every message still
    /// in the stream, including those published before it first subscribed.
    pub async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
    ) -> anyhow::Result<Subscription> {
        match self {
            Self::Redis(bus) => Ok(Subscription::Redis(Box::new(
                bus.subscribe(topic, group, consumer).await?,
            ))),
            Self::Memory(bus) => Ok(Subscription::Memory(bus.subscribe(topic, group))),
        }
    }

    /// Checks the bus answers (health checks).
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Self::Redis(bus) => bus.ping().await,
            Self::Memory(_) => Ok(()),
        }
    }
}

/// A consumer's membership in a group.
pub enum Subscription {
    /// See [`RedisSubscription`].
    Redis(Box<RedisSubscription>),
    /// See [`MemorySubscription`].
    Memory(MemorySubscription),
}

impl Subscription {
    /// Up to `max` messages: this consumer's own unacknowledged ones first (after a restart),
    /// then ones reclaimed from consumers that went silent, then new ones. Waits up to the
    /// configured block time; may return none.
    pub async fn next_batch(&mut self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        match self {
            Self::Redis(sub) => sub.next_batch(max).await,
            Self::Memory(sub) => Ok(sub.next_batch(max).await),
        }
    }

    /// Acknowledges processed messages: they will not be delivered again.
    pub async fn ack(&mut self, ids: &[String]) -> anyhow::Result<()> {
        match self {
            Self::Redis(sub) => sub.ack(ids).await,
            Self::Memory(sub) => {
                sub.ack(ids);
                Ok(())
            }
        }
    }

    /// Moves a message that cannot be processed to `<topic>.dead` and acknowledges it.
    pub async fn dead_letter(&mut self, delivery: &Delivery, reason: &str) -> anyhow::Result<()> {
        match self {
            Self::Redis(sub) => sub.dead_letter(delivery, reason).await,
            Self::Memory(sub) => {
                sub.dead_letter(delivery, reason);
                Ok(())
            }
        }
    }
}

/// Packs `payload` into a new envelope stamped now, carrying the current span's trace
/// context so the consumer's work joins this trace.
pub fn envelope<M: prost::Name>(producer: &str, partition_key: &str, payload: &M) -> EventEnvelope {
    let mut trace_context = HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MapCarrier(&mut trace_context));
    });
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        r#type: M::full_name(),
        occurred_at: Some(crate::time::to_timestamp(crate::time::now_micros())),
        producer: producer.to_owned(),
        trace_context,
        payload: Some(prost_types::Any {
            type_url: M::type_url(),
            value: payload.encode_to_vec(),
        }),
        partition_key: partition_key.to_owned(),
    }
}

/// Unpacks the payload of an envelope, checking its type.
pub fn unpack<M: prost::Name + Default>(envelope: &EventEnvelope) -> anyhow::Result<M> {
    let any = envelope.payload.as_ref().context("event without payload")?;
    anyhow::ensure!(
        any.type_url == M::type_url(),
        "expected {}, got {}",
        M::type_url(),
        any.type_url
    );
    M::decode(any.value.as_slice()).context("decoding event payload")
}

/// Decodes an encoded envelope.
pub fn decode_envelope(payload: &[u8]) -> anyhow::Result<EventEnvelope> {
    EventEnvelope::decode(payload).context("decoding event envelope")
}

/// The trace context an envelope carries, for the consumer's span parent.
pub fn trace_parent(envelope: &EventEnvelope) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MapCarrierRef(&envelope.trace_context))
    })
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapCarrierRef<'a>(&'a HashMap<String, String>);

impl Extractor for MapCarrierRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use tailor_proto::events::v1::ConsentChanged;

    use super::*;

    #[test]
    fn envelopes_round_trip_their_payload() {
        let event = ConsentChanged {
            user_id: "u1".into(),
            purpose: "personalization".into(),
            granted: false,
            version: 3,
        };
        let env = envelope("privacy", "u1", &event);
        assert_eq!(env.r#type, "tailor.events.v1.ConsentChanged");
        let decoded = decode_envelope(&env.encode_to_vec()).unwrap();
        assert_eq!(unpack::<ConsentChanged>(&decoded).unwrap(), event);
        assert!(unpack::<tailor_proto::events::v1::BehaviorRecorded>(&decoded).is_err());
    }
}
