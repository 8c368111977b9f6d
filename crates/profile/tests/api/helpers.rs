//! Spawning the service on port 0 with its own database, and clients acting as services or
//! users.

use std::net::SocketAddr;
use std::time::Duration;

use prost_types::Timestamp;
use tailor_kit::events::{Bus, EventSettings};
use tailor_kit::grpc::client::Outbound;
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::testing::{TestDb, TestRedis, channel_to, init_for_tests, tokens, verifier};
use tailor_kit::time::{DAY, Micros, now_micros, to_timestamp};
use tailor_profile::{App, Deps, MIGRATIONS, Settings};
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::privacy::v1::privacy_participant_service_client::PrivacyParticipantServiceClient;
use tailor_proto::profile::v1 as pb;
use tailor_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::service::interceptor::InterceptedService;

pub type Client = ProfileServiceClient<InterceptedService<Outbound, ActAs>>;
pub type PrivacyClient = PrivacyParticipantServiceClient<InterceptedService<Outbound, ActAs>>;

/// Adds the end user a service acts for, like the gateway does.
#[derive(Clone)]
pub struct ActAs(Option<String>);

impl tonic::service::Interceptor for ActAs {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(user) = &self.0 {
            request
                .metadata_mut()
                .insert("x-tailor-user-id", user.parse().unwrap());
        }
        Ok(request)
    }
}

/// A running profile service with its own database (and Redis namespace).
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: TestDb,
    pub bus: Bus,
    pub label: String,
    pub settings: Settings,
    redis: Option<TestRedis>,
    /// Stops the server when the test app is dropped.
    stop: tokio_util::sync::DropGuard,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn event_settings() -> EventSettings {
    EventSettings {
        relay_poll: Duration::from_millis(20),
        block: Duration::from_millis(100),
        reclaim_idle: Duration::from_secs(2),
        ..EventSettings::default()
    }
}

async fn start(db: TestDb, redis: Option<TestRedis>, settings: Settings) -> TestApp {
    let events = event_settings();
    let bus = Bus::new(redis.as_ref().map(|r| &r.redis), &events);
    let deps = Deps {
        db: db.db.clone(),
        redis: redis.as_ref().map(|r| r.redis.clone()),
        bus: bus.clone(),
        verifier: verifier(),
        events,
    };
    let app = App::build(settings.clone(), deps).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.serve(listener, stop.clone()));
    let label = match &redis {
        Some(_) => format!("{}+redis", db.label),
        None => db.label.to_owned(),
    };
    TestApp {
        addr,
        db,
        bus,
        label,
        settings,
        redis,
        stop: stop.drop_guard(),
        task,
    }
}

impl TestApp {
    /// On SQLite with the in-process bus and cache.
    pub async fn sqlite() -> Self {
        init_for_tests();
        start(
            TestDb::sqlite(&MIGRATIONS).await.unwrap(),
            None,
            Settings::default(),
        )
        .await
    }

    /// SQLite always; PostgreSQL + Redis too when configured.
    pub async fn every_backend() -> Vec<Self> {
        Self::every_backend_with(Settings::default()).await
    }

    /// [`Self::every_backend`] with custom settings.
    pub async fn every_backend_with(settings: Settings) -> Vec<Self> {
        init_for_tests();
        let mut apps = vec![
            start(
                TestDb::sqlite(&MIGRATIONS).await.unwrap(),
                None,
                settings.clone(),
            )
            .await,
        ];
        match TestDb::postgres(&MIGRATIONS).await.unwrap() {
            Some(db) => {
                let redis = TestRedis::new().await.unwrap();
                if redis.is_none() {
                    eprintln!(
                        "REDIS_URL not set: PostgreSQL runs with the in-process cache and bus"
                    );
                }
                apps.push(start(db, redis, settings).await);
            }
            None => eprintln!("DATABASE_URL not set: PostgreSQL part skipped"),
        }
        apps
    }

    /// Stops the server (gracefully) and starts a new one on the same database: a restart.
    pub async fn restart(self) -> Self {
        let Self {
            db,
            redis,
            settings,
            stop,
            task,
            ..
        } = self;
        drop(stop);
        task.await.unwrap().unwrap();
        start(db, redis, settings).await
    }

    /// A client authenticated as `service` with `scopes`, acting for `user` if given.
    pub fn client(&self, service: &str, scopes: &[&str], user: Option<&str>) -> Client {
        let channel = Outbound::new(channel_to(self.addr), tokens(service, scopes));
        ProfileServiceClient::with_interceptor(channel, ActAs(user.map(str::to_owned)))
    }

    /// A trusted back-office client with read and write scopes.
    pub fn admin(&self) -> Client {
        self.client("marketing", &["profile:read", "profile:write"], None)
    }

    /// The privacy service's client.
    pub fn privacy(&self) -> PrivacyClient {
        let channel = Outbound::new(channel_to(self.addr), tokens("privacy", &["privacy"]));
        PrivacyParticipantServiceClient::with_interceptor(channel, ActAs(None))
    }
}

/// A timestamp `days` before now.
pub fn days_ago(days: f64) -> Timestamp {
    to_timestamp(now_micros() - (days * DAY as f64) as Micros)
}

/// A behaviour event with sensible defaults.
pub fn event(
    id: &str,
    user: &str,
    kind: BehaviorType,
    item: &str,
    category: &str,
) -> pb::BehaviorEvent {
    pb::BehaviorEvent {
        event_id: id.to_owned(),
        user_id: user.to_owned(),
        r#type: kind as i32,
        occurred_at: Some(days_ago(0.0)),
        item_id: item.to_owned(),
        item: Some(pb::ItemContext {
            category: category.to_owned(),
            brand: String::new(),
            tags: Vec::new(),
        }),
        ..pb::BehaviorEvent::default()
    }
}

/// Records `events` as the admin client and returns the response.
pub async fn record(app: &TestApp, events: Vec<pb::BehaviorEvent>) -> pb::RecordEventsResponse {
    app.admin()
        .record_events(pb::RecordEventsRequest { events })
        .await
        .unwrap()
        .into_inner()
}

/// The profile of `user` as the admin sees it.
pub async fn profile(app: &TestApp, user: &str) -> pb::Profile {
    app.admin()
        .get_profile(pb::GetProfileRequest {
            user_id: user.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap()
}

/// The field violations of an INVALID_ARGUMENT status.
pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}
