//! The gRPC surface every service shares: the server stack, health, outbound channels (or
//! in-process calls between roles of one process) and error statuses with field violations.

pub mod client;
pub mod health;
pub mod in_process;
mod observe;
pub mod page;
pub mod server;
pub mod status;

pub use observe::{ObserveLayer, TraceContextExtractor};
