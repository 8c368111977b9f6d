//! `tailor serve`: runs one or more roles in this process, each on its own listener, sharing
//! the process's Redis connection, event bus and telemetry; the gateway calls the roles it
//! shares the process with directly (`gateway.upstreams.in_process`). With every role and no
//! Redis this is the embedded default: SQLite files under `./data`, in-process cache and bus.

use std::sync::Arc;

use anyhow::Context as _;
use tailor_gateway::InProcessUpstreams;
use tailor_kit::auth::{TokenIssuer, TokenSource, Verifier};
use tailor_kit::db::Db;
use tailor_kit::events::Bus;
use tailor_kit::grpc::in_process::InProcess;
use tailor_kit::grpc::server::bind;
use tailor_kit::redis::Redis;
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::telemetry::TelemetryGuard;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::roles::Role;
use crate::settings::Settings;

/// What every role of the process shares.
#[derive(Clone)]
struct Shared {
    settings: Arc<Settings>,
    redis: Option<Redis>,
    bus: Bus,
    verifier: Verifier,
    /// Where profile and recommend publish their routes for the gateway of this process.
    in_process: InProcessUpstreams,
}

/// Serves `roles` until `stop`; the first role to fail stops the others.
pub async fn serve(
    settings: Settings,
    roles: &[Role],
    telemetry: &TelemetryGuard,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let redis = Redis::from_settings(&settings.redis).await?;
    let bus = Bus::new(redis.as_ref(), &settings.events);
    let verifier = Verifier::new(&settings.auth)?;
    let hosted = |role| roles.contains(&role).then(InProcess::new);
    let shared = Shared {
        settings: Arc::new(settings),
        redis,
        bus,
        verifier,
        in_process: InProcessUpstreams {
            profile: hosted(Role::Profile),
            recommend: hosted(Role::Recommend),
        },
    };

    // Bind everything first, so a taken port fails the start instead of one role later.
    let mut listeners = Vec::with_capacity(roles.len());
    for role in roles {
        let listener = bind(role.server(&shared.settings)).await?;
        listeners.push((*role, listener));
    }
    print_banner(&listeners, &shared);

    let mut tasks = JoinSet::new();
    if let Some(listen) = shared.settings.telemetry.metrics_listen {
        let metrics = telemetry.metrics_server(listen, stop.clone().cancelled_owned());
        tasks.spawn(async move { metrics.await.context("metrics endpoint") });
    }
    for (role, listener) in listeners {
        let shared = shared.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            run_role(role, listener, shared, stop)
                .await
                .with_context(|| format!("{} failed", role.name()))
        });
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.context("a role panicked").and_then(|r| r);
        if let Err(err) = outcome {
            tracing::error!(error = format!("{err:#}"), "stopping every role");
            stop.cancel();
            if result.is_ok() {
                result = Err(err);
            }
        }
    }
    result
}

async fn connect(role: Role, settings: &Settings) -> anyhow::Result<Db> {
    let database = role
        .database(settings)
        .with_context(|| format!("{} has no database", role.name()))?;
    Db::connect(database).await
}

async fn run_role(
    role: Role,
    listener: TcpListener,
    shared: Shared,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let settings = &shared.settings;
    match role {
        Role::Profile => {
            let db = connect(role, settings).await?;
            let deps = tailor_profile::Deps {
                db: db.clone(),
                redis: shared.redis.clone(),
                bus: shared.bus.clone(),
                verifier: shared.verifier.clone(),
                events: settings.events.clone(),
            };
            let mut app = tailor_profile::App::build(settings.profile.clone(), deps).await?;
            if let Some(slot) = &shared.in_process.profile {
                app = app.publish_in(slot.clone());
            }
            let served = app.serve(listener, stop).await;
            close(role, &db).await;
            served
        }
        Role::Recommend => {
            let db = connect(role, settings).await?;
            let deps = tailor_recommend::Deps {
                db: db.clone(),
                redis: shared.redis.clone(),
                bus: shared.bus.clone(),
                verifier: shared.verifier.clone(),
                events: settings.events.clone(),
            };
            let mut app = tailor_recommend::App::build(settings.recommend.clone(), deps).await?;
            if let Some(slot) = &shared.in_process.recommend {
                app = app.publish_in(slot.clone());
            }
            let served = app.serve(listener, stop).await;
            close(role, &db).await;
            served
        }
        Role::Gateway => {
            let issuer = TokenIssuer::new(&settings.auth, role.name(), role.scopes())?;
            let deps = tailor_gateway::Deps {
                redis: shared.redis.clone(),
                tokens: TokenSource::new(issuer),
                in_process: shared.in_process.clone(),
            };
            let app = tailor_gateway::App::build(settings.gateway.clone(), deps).await?;
            app.serve(listener, stop).await
        }
    }
}

/// Closes a role's database once the role has stopped (its background tasks joined). On
/// SQLite the last connection to close copies the write-ahead log back into the database
/// file and deletes it, so after a clean stop the file alone holds the data (what a backup
/// copies); without it the log (up to 10,000 pages, about 40 MB, before a checkpoint) kept
/// every write since the last one.
async fn close(role: Role, db: &Db) {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
    if tokio::time::timeout(PATIENCE, db.close()).await.is_err() {
        tracing::warn!(
            role = role.name(),
            patience = ?PATIENCE,
            "database connections still in use after stopping; leaving them to the exit"
        );
    }
}

/// Applies every role's migrations and exits.
pub async fn migrate(settings: &Settings, roles: &[Role]) -> anyhow::Result<()> {
    for role in roles.iter().filter(|r| r.database(settings).is_some()) {
        let db = connect(*role, settings).await?;
        match role {
            Role::Profile => db.migrate(&tailor_profile::MIGRATIONS).await?,
            Role::Recommend => db.migrate(&tailor_recommend::MIGRATIONS).await?,
            Role::Gateway => {}
        }
        tracing::info!(role = role.name(), "migrations applied");
        db.close().await;
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // the start banner is for the person who ran the command
fn print_banner(listeners: &[(Role, TcpListener)], shared: &Shared) {
    let backend = if shared.redis.is_some() {
        "Redis cache and Redis Streams bus"
    } else {
        "in-process cache and bus"
    };
    println!("Tailor is starting ({backend}):");
    for (role, listener) in listeners {
        let addr = listener
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        match role {
            Role::Gateway => println!(
                "  {:<10} http://{addr}  (storefront, gRPC-web and gRPC)",
                role.name()
            ),
            _ => println!("  {:<10} grpc://{addr}", role.name()),
        }
    }
    if let Some(metrics) = shared.settings.telemetry.metrics_listen {
        println!("  {:<10} http://{metrics}/metrics", "metrics");
    }
}
