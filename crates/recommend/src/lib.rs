//! The recommend service: holds the catalog it needs and users' interactions, trains and
//! serves recommendation models, and explains every item it recommends.
//!
//! Interactions arrive from the profile service's behaviour events (consumed from the bus;
//! a user's next recommendations reflect an event within a second, without retraining) and
//! from bulk imports. Models train in the background on a schedule or on demand, are
//! evaluated on a holdout, versioned, persisted and hot-swapped atomically; every replica
//! picks up the active version. Users are assigned to experiment variants (blends) by a
//! GrowthBook-compatible hash, and exposures are recorded.
//!
//! # Layout
//! - [`api`]: the gRPC services (`tailor.recommend.v1`, privacy participant), thin.
//! - [`domain`]: catalog, model sets and training, serving (blend, filter, boost,
//!   diversify, explain), and the use-cases.
//! - [`store`]: SQL for SQLite and PostgreSQL.
//! - [`events`]: behaviour and consent consumers.
//! - [`import`]: `tailor import`.
//! - [`algo`]: the interaction matrix, the [`algo::Recommender`] trait and every algorithm
//!   (popularity, item/user kNN, ALS, BPR, TF-IDF, embeddings, association rules, next-item
//!   transitions), plus the versioned model file format. No gRPC, storage or events.
//! - [`eval`]: reading interaction files, the train/test split, Recall/NDCG/coverage, tuning on
//!   a validation split and the report of `tailor eval`.
//! - [`experiment`]: GrowthBook-compatible hashing of users into experiment variants.
//! - [`config`], [`error`].
//!
//! # Serving in a nutshell
//!
//! ```
//! use indicatif::ProgressBar;
//! use tailor_recommend::algo::{
//!     AlgoConfig, InteractionsBuilder, Merge, ModelBundle, Query, Recommender, TrainData,
//! };
//!
//! let mut events = InteractionsBuilder::new();
//! for (user, item) in [("ann", "tea"), ("ann", "cups"), ("bob", "tea"), ("bob", "kettle")] {
//!     events.push(user, item, 1.0, 0);
//! }
//! let data = events.build(Merge::Sum);
//! let config = AlgoConfig::by_name("itemknn_cosine")?;
//! let model = config.fit(TrainData::new(&data), &ProgressBar::hidden())?;
//!
//! // A visitor the model has never seen, who just viewed tea.
//! let tea = data.items.get("tea").expect("known item");
//! let recs = model.recommend(&Query::anonymous(&[tea]), 5, &[tea]);
//! let names: Vec<&str> = recs.iter().filter_map(|&(i, _)| data.items.external(i)).collect();
//! assert_eq!(names, ["cups", "kettle"]);
//!
//! // Persist and hot-swap: the bundle carries the id maps with the model.
//! let bundle = ModelBundle { config, users: data.users.clone(), items: data.items.clone(),
//!                            trained_at: 0, model };
//! let loaded = ModelBundle::from_bytes(&bundle.to_bytes()?)?;
//! assert_eq!(loaded.model.similar_items(tea, 1).len(), 1);
//! # Ok::<(), tailor_recommend::algo::AlgoError>(())
//! ```

pub mod algo;
pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod eval;
pub mod events;
pub mod experiment;
pub mod import;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tailor_kit::auth::{Authenticate, Verifier};
use tailor_kit::db::{Db, Migrations};
use tailor_kit::events::consumer::{self, ConsumerSpec};
use tailor_kit::events::{Bus, EventSettings, topics};
use tailor_kit::grpc::health::{self, Check};
use tailor_kit::grpc::in_process::InProcess;
use tailor_kit::grpc::server::{self, Health};
use tailor_kit::redis::Redis;
use tailor_kit::shutdown::CancellationToken;
use tailor_proto::privacy::v1::privacy_participant_service_server::PrivacyParticipantServiceServer;
use tailor_proto::recommend::v1::recommend_service_server::RecommendServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

pub use config::Settings;

use crate::api::{PrivacyApi, RecommendApi};
use crate::domain::recommender::{EventReach, Recommender};
use crate::events::{BehaviorConsumer, ConsentConsumer, SERVICE};
use crate::store::Store;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The service's schema, per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The gRPC services this server hosts.
pub const SERVICES: [&str; 2] = [
    <RecommendServiceServer<RecommendApi> as NamedService>::NAME,
    <PrivacyParticipantServiceServer<PrivacyApi> as NamedService>::NAME,
];

/// Connected dependencies, built by the caller.
#[derive(Clone)]
pub struct Deps {
    /// This service's database (migrated by [`App::build`]).
    pub db: Db,
    /// Redis, if configured.
    pub redis: Option<Redis>,
    /// The event bus.
    pub bus: Bus,
    /// Checks callers' service tokens.
    pub verifier: Verifier,
    /// Consumer tuning.
    pub events: EventSettings,
}

/// A ready-to-serve recommend service.
pub struct App {
    settings: Arc<Settings>,
    deps: Deps,
    recommender: Recommender,
    in_process: InProcess,
}

impl App {
    /// Migrates, loads the catalog and the active model set.
    pub async fn build(settings: Settings, deps: Deps) -> anyhow::Result<Self> {
        deps.db.migrate(&MIGRATIONS).await?;
        tailor_text::warm_up();
        let settings = Arc::new(settings);
        let reach = match deps.bus {
            Bus::Memory(_) => EventReach::ThisProcess,
            Bus::Redis(_) => EventReach::SharedBus,
        };
        let recommender =
            Recommender::load(Store::new(deps.db.clone()), settings.clone(), reach).await?;
        Ok(Self {
            settings,
            deps,
            recommender,
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

    /// The use-cases (for in-process callers, tools and tests).
    pub fn recommender(&self) -> &Recommender {
        &self.recommender
    }

    /// The gRPC routes behind authentication.
    pub fn routes(&self) -> Routes {
        let max = self.settings.server.max_message_bytes;
        let recommend = RecommendServiceServer::new(RecommendApi::new(self.recommender.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        let privacy =
            PrivacyParticipantServiceServer::new(PrivacyApi::new(self.recommender.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);
        let auth = Authenticate::new(self.deps.verifier.clone());
        Routes::new(InterceptedService::new(recommend, auth.clone()))
            .add_service(InterceptedService::new(privacy, auth))
    }

    /// Serves on `listener` until `stop`, with the consumers, training and health watcher.
    pub async fn serve(self, listener: TcpListener, stop: CancellationToken) -> anyhow::Result<()> {
        let health = Health::new(&SERVICES).await;
        let routes = self.routes();
        let mut tasks = JoinSet::new();
        tasks.spawn(self.recommender.clone().run_background(stop.clone()));
        tasks.spawn(consumer::run(
            self.deps.bus.clone(),
            self.deps.db.clone(),
            ConsumerSpec::new(topics::PROFILE_BEHAVIOR_RECORDED, SERVICE),
            Arc::new(BehaviorConsumer::new(self.recommender.clone())),
            self.deps.events.clone(),
            stop.clone(),
        ));
        tasks.spawn(consumer::run(
            self.deps.bus.clone(),
            self.deps.db.clone(),
            ConsumerSpec::new(topics::PRIVACY_CONSENT_CHANGED, SERVICE),
            Arc::new(ConsentConsumer::new(self.recommender.clone())),
            self.deps.events.clone(),
            stop.clone(),
        ));
        let mut checks = vec![Check::database(&self.deps.db)];
        if let Some(redis) = &self.deps.redis {
            checks.push(Check::redis(redis));
        }
        tasks.spawn(health::watch(
            health.clone(),
            checks,
            Duration::from_secs(5),
            stop.clone(),
        ));
        let result = server::serve(
            listener,
            &self.settings.server,
            routes,
            &health,
            &self.in_process,
            stop.clone().cancelled_owned(),
        )
        .await;
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        result
    }
}
