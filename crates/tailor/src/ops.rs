//! Small operational commands: dev tokens and health checks.

use std::net::SocketAddr;
use std::time::Duration;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use tailor_kit::auth::{AuthSettings, TokenIssuer};
use tailor_kit::db::Db;
use tailor_recommend::domain::recommender::{EventReach, Recommender};
use tailor_recommend::store::Store;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Mints a service token for `service` with `scopes`.
pub fn token(auth: &AuthSettings, service: &str, scopes: &[String]) -> anyhow::Result<String> {
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let (token, _) = TokenIssuer::new(auth, service, &scopes)?.mint()?;
    Ok(token)
}

/// An app user's token signed with the gateway's shared secret.
pub async fn user_token(
    jwt: &tailor_gateway::config::JwtSettings,
    user: &str,
) -> anyhow::Result<String> {
    let auth = tailor_gateway::auth::UserAuth::new(jwt).await?;
    auth.mint(user, Duration::from_secs(24 * 3600))
}

fn progress_bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Trains the recommend models from its database and activates them.
pub async fn train(
    settings: &tailor_recommend::Settings,
) -> anyhow::Result<tailor_recommend::store::ModelRow> {
    let db = Db::connect(&settings.database).await?;
    db.migrate(&tailor_recommend::MIGRATIONS).await?;
    let store = Store::new(db.clone());
    let recommender =
        Recommender::load(store, Arc::new(settings.clone()), EventReach::SharedBus).await?;
    let bar = progress_bar("{spinner} [{elapsed_precise}] {msg}");
    bar.enable_steady_tick(Duration::from_millis(120));
    let row = recommender.train_once(&bar).await;
    bar.finish_and_clear();
    // The last connection to a SQLite file folds its write-ahead log back in.
    db.close().await;
    row?.context("another replica holds the training lease; try again when it is done")
}

/// Imports interaction history into the recommend database.
pub async fn import(
    settings: &tailor_recommend::Settings,
    path: &Path,
    kind: i32,
) -> anyhow::Result<tailor_recommend::import::ImportReport> {
    let db = Db::connect(&settings.database).await?;
    db.migrate(&tailor_recommend::MIGRATIONS).await?;
    let bar = progress_bar("{bar:40} {pos}/{len} rows [{elapsed_precise}, {eta} left]");
    let report = tailor_recommend::import::import(
        &Store::new(db.clone()),
        path,
        kind,
        &settings.training.weights,
        &bar,
    )
    .await;
    db.close().await;
    report
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
