//! The gRPC surface every service shares: the server stack, health, outbound channels and
//! error statuses with field violations.

pub mod client;
pub mod health;
mod observe;
pub mod page;
pub mod server;
pub mod status;

pub use observe::{ObserveLayer, TraceContextExtractor};
