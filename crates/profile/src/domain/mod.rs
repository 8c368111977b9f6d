//! The profile service's rules, free of gRPC and SQL.
//!
//! - [`event`]: what makes a behaviour event acceptable, and its clean form.
//! - [`decay`]: exponentially decaying weights.
//! - [`profile`]: per-user state, how events update it, and the profile view.
//! - [`segment`]: segment rules for marketing.
//! - [`analytics`]: funnels, active users, retention, trending categories.
//! - [`profiles`]: the use-cases, tying rules to the store, cache and outbox.
//! - [`ingest`]: writing accepted behaviour, calls grouped into shared transactions.
//! - [`kept`]: the ingestion writer's in-memory copies of the profiles it saved.

pub mod analytics;
pub mod decay;
pub mod event;
pub mod ingest;
pub mod kept;
pub mod profile;
pub mod profiles;
pub mod segment;
