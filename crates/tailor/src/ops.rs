//! Small operational commands: dev tokens and health checks.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tailor_kit::auth::{AuthSettings, TokenIssuer};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Mints a service token for `service` with `scopes`.
pub fn token(auth: &AuthSettings, service: &str, scopes: &[String]) -> anyhow::Result<String> {
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let (token, _) = TokenIssuer::new(auth, service, &scopes)?.mint()?;
    Ok(token)
}

/// Whether the server at `addr` reports `service` SERVING.
pub async fn health(
    addr: SocketAddr,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .with_context(|| format!("health check of {addr}"))?;
    Ok(response.into_inner().status())
}
