//! Tailor end to end: the whole system in-process, driven as the mobile app, other teams'
//! services and a real browser drive it. One test binary (linking the system once, not once
//! per area), one module per area.

mod browser;
mod mobile;
mod python_client;
mod recommend;
mod security;
