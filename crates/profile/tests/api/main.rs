//! The profile service over real gRPC, on SQLite and (when `DATABASE_URL` / `REDIS_URL` are
//! set, as in CI) on PostgreSQL with Redis for cache and bus.
#![allow(clippy::unwrap_used)] // test helpers, not only #[test] fns, may unwrap
#![allow(unreachable_pub)] // helpers are shared between the modules of this test binary

mod analytics;
mod helpers;
mod ingest;
mod lifecycle;
mod privacy;
mod profiles;
