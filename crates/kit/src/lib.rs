//! The platform every Tailor service stands on, written once.
//!
//! # Layout
//! - [`config`]: layered settings (defaults → TOML file → `TAILOR_…` env), validation, secrets.
//! - [`telemetry`]: tracing subscriber (pretty or JSON), OTLP traces and metrics, Prometheus.
//! - [`grpc`]: the standard server stack (observability, load shedding, health, reflection,
//!   graceful shutdown), outbound channels (credentials, trace context) and rich error statuses.
//! - [`auth`]: service-to-service tokens and the [`auth::Caller`] every handler receives.
//! - [`db`]: SQLite or PostgreSQL by URL, migrations, write transactions.
//! - [`cache`]: Redis when configured, otherwise a bounded in-process cache; misses read through
//!   [`cache::Reads`] (one fetch per key at a time, none kept across an invalidation).
//! - [`events`]: transactional outbox, relay, Redis Streams or in-process bus, idempotent consumers.
//! - [`privacy`]: the privacy participant scope and export records.
//! - [`redis`]: the one Redis connection of a process, and key namespacing.
//! - [`time`]: timestamps as integer microseconds and their protobuf form.
//! - [`shutdown`]: SIGTERM / SIGINT.
//! - `testing` (feature): fresh databases, Redis namespaces and port-0 servers for tests.

pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod events;
pub mod grpc;
pub mod privacy;
pub mod redis;
pub mod shutdown;
pub mod telemetry;
pub mod time;

#[cfg(feature = "testing")]
pub mod testing;
