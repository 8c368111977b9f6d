//! The profile service: learns who each shopper is from their behaviour.
//!
//! It ingests behaviour events (batch and client-streaming RPCs; each event validated on its
//! own, duplicates dropped, everything accepted durable before the call returns), keeps a
//! live profile per user updated on every event (interests with time decay, RFM, spending
//! tier, price sensitivity, review sentiment, lifecycle segment, weighted dimensions),
//! serves profiles from a cache, answers segment queries and behaviour analytics, publishes
//! behaviour for recommendation, honours consent and takes part in data subject requests.
//!
//! # Layout
//! - [`api`]: the gRPC services (`tailor.profile.v1`, privacy participant), thin.
//! - [`domain`]: rules and use-cases, free of gRPC and SQL.
//! - [`store`]: SQL for SQLite and PostgreSQL.
//! - [`events`]: events published and consumed.
//! - [`config`]: the settings.
//! - [`error`]: the error type and its gRPC status mapping.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tailor_kit::auth::{Authenticate, Verifier};
use tailor_kit::cache::Cache;
use tailor_kit::db::{Db, Migrations};
use tailor_kit::events::consumer::{self, ConsumerSpec};
use tailor_kit::events::outbox::Relay;
use tailor_kit::events::{Bus, EventSettings, topics};
use tailor_kit::grpc::health::{self, Check};
use tailor_kit::grpc::in_process::InProcess;
use tailor_kit::grpc::server::{self, Health};
use tailor_kit::redis::Redis;
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::time::now_micros;
use tailor_proto::privacy::v1::privacy_participant_service_server::PrivacyParticipantServiceServer;
use tailor_proto::profile::v1::profile_service_server::ProfileServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

pub use config::Settings;

use crate::api::{PrivacyApi, ProfileApi};
use crate::domain::profiles::Profiles;
use crate::events::{ConsentConsumer, SERVICE};
use crate::store::Store;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The service's schema, per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The gRPC services this server hosts (for health and reflection).
pub const SERVICES: [&str; 2] = [
    <ProfileServiceServer<ProfileApi> as NamedService>::NAME,
    <PrivacyParticipantServiceServer<PrivacyApi> as NamedService>::NAME,
];

/// Connected dependencies, built by the caller (the binary or a test).
#[derive(Clone)]
pub struct Deps {
    /// This service's database (migrated by [`App::build`]).
    pub db: Db,
    /// Redis, if configured (cache and bus).
    pub redis: Option<Redis>,
    /// The event bus.
    pub bus: Bus,
    /// Checks callers' service tokens.
    pub verifier: Verifier,
    /// Outbox and consumer tuning.
    pub events: EventSettings,
}

/// A ready-to-serve profile service.
pub struct App {
    settings: Arc<Settings>,
    deps: Deps,
    profiles: Profiles,
    relay: Relay,
    in_process: InProcess,
}

impl App {
    /// Migrates the database and wires the service.
    pub async fn build(settings: Settings, deps: Deps) -> anyhow::Result<Self> {
        deps.db.migrate(&MIGRATIONS).await?;
        // Load the sentiment model now rather than in the first request that needs it.
        tailor_text::SentimentModel::shipped();
        let settings = Arc::new(settings);
        let cache = Cache::new(
            deps.redis.as_ref(),
            "profile:record",
            settings.cache.ttl,
            settings.cache.capacity,
        );
        let relay = Relay::new(deps.db.clone(), deps.bus.clone(), deps.events.clone());
        let profiles = Profiles::new(
            Store::new(deps.db.clone()),
            cache,
            settings.clone(),
            relay.waker(),
        );
        Ok(Self {
            settings,
            deps,
            profiles,
            relay,
            in_process: InProcess::new(),
        })
    }

    /// Also serves in process: callers here holding `slot` reach the routes without the
    /// network once the service runs (`tailor serve all`).
    #[must_use]
    pub fn publish_in(mut self, slot: InProcess) -> Self {
        self.in_process = slot;
        self
    }

    /// The use-cases (for in-process callers and tests).
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The gRPC routes: the profile API and the privacy participant, behind authentication.
    pub fn routes(&self) -> Routes {
        let max = self.settings.server.max_message_bytes;
        let profile = ProfileServiceServer::new(ProfileApi::new(self.profiles.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        let privacy = PrivacyParticipantServiceServer::new(PrivacyApi::new(self.profiles.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let auth = Authenticate::new(self.deps.verifier.clone());
        Routes::new(InterceptedService::new(profile, auth.clone()))
            .add_service(InterceptedService::new(privacy, auth))
    }

    /// Starts the outbox relay, the consent consumer, the lifecycle sweeper and the health
    /// watcher; they stop with `stop`.
    pub fn spawn_background(
        self,
        health: Health,
        stop: &CancellationToken,
    ) -> (Routes, JoinSet<()>) {
        let routes = self.routes();
        let mut tasks = JoinSet::new();
        tasks.spawn(self.relay.run(stop.clone()));
        tasks.spawn(consumer::run(
            self.deps.bus.clone(),
            self.deps.db.clone(),
            ConsumerSpec::new(topics::PRIVACY_CONSENT_CHANGED, SERVICE),
            Arc::new(ConsentConsumer::new(self.profiles.clone())),
            self.deps.events.clone(),
            stop.clone(),
        ));
        let profiles = self.profiles.clone();
        let sweep = stop.clone();
        let interval = self.settings.model.lifecycle.sweep_interval;
        tasks.spawn(async move {
            loop {
                match profiles.sweep_lifecycles(now_micros()).await {
                    Ok(0) => {}
                    Ok(changed) => tracing::info!(changed, "lifecycle segments updated"),
                    Err(err) => tracing::warn!(error = %err, "lifecycle sweep failed"),
                }
                tokio::select! {
                    () = sweep.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        });
        let mut checks = vec![Check::database(&self.deps.db)];
        if let Some(redis) = &self.deps.redis {
            checks.push(Check::redis(redis));
        }
        tasks.spawn(health::watch(
            health,
            checks,
            Duration::from_secs(5),
            stop.clone(),
        ));
        (routes, tasks)
    }

    /// Serves on `listener` until `stop`, with every background task.
    pub async fn serve(self, listener: TcpListener, stop: CancellationToken) -> anyhow::Result<()> {
        let settings = self.settings.server.clone();
        let in_process = self.in_process.clone();
        let health = Health::new(&SERVICES).await;
        let (routes, mut tasks) = self.spawn_background(health.clone(), &stop);
        let result = server::serve(
            listener,
            &settings,
            routes,
            &health,
            &in_process,
            stop.clone().cancelled_owned(),
        )
        .await;
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        result
    }
}
