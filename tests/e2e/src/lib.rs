//! The whole Tailor system in one test process: profile, recommend and the gateway, each on
//! its own port 0 listener with its own fresh database (PostgreSQL when `DATABASE_URL` is
//! set, else SQLite), sharing one event bus (Redis Streams when `REDIS_URL` is set, else
//! in-process) — and clients that talk to it as the mobile app (gRPC-web over HTTP/1.1) and
//! as other teams' services (gRPC with a service token) do.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // a test harness: failing loudly is its job

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tailor_kit::auth::{AuthSettings, TokenIssuer, TokenSource};
use tailor_kit::events::{Bus, EventSettings};
use tailor_kit::grpc::client::{Outbound, UpstreamSettings};
use tailor_kit::grpc::in_process::InProcess;
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::testing::{TestDb, TestRedis, channel_to, init_for_tests, tokens, verifier};
use tailor_proto::mobile::v1::mobile_service_client::MobileServiceClient;
use tailor_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tailor_proto::recommend::v1 as rpb;
use tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic_web::{GrpcWebClientLayer, GrpcWebClientService};

/// A gRPC-web client over HTTP/1.1, as a browser speaks to the gateway.
pub type WebClient = MobileServiceClient<
    GrpcWebClientService<Client<HttpConnector, tonic_web::GrpcWebCall<tonic::body::Body>>>,
>;

/// One running role.
struct Role {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Role {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Settings for fast tests: events relayed and consumed within milliseconds, training on
/// demand only and without the holdout pass.
pub fn event_settings() -> EventSettings {
    EventSettings {
        relay_poll: Duration::from_millis(20),
        block: Duration::from_millis(100),
        reclaim_idle: Duration::from_secs(5),
        ..EventSettings::default()
    }
}

/// The recommend settings tests use.
pub fn recommend_settings() -> tailor_recommend::Settings {
    let mut settings = tailor_recommend::Settings::default();
    settings.training.holdout = false;
    settings.training.interval = Duration::ZERO;
    settings.training.catalog_debounce = Duration::from_secs(3600);
    settings.training.model_poll = Duration::from_millis(200);
    settings
}

/// The whole system.
pub struct System {
    /// The gateway (mobile API, storefront).
    pub gateway: SocketAddr,
    /// The profile service.
    pub profile: SocketAddr,
    /// The recommend service.
    pub recommend: SocketAddr,
    /// The shared bus.
    pub bus: Bus,
    /// Which backends run ("sqlite", "postgres+redis", …), for messages.
    pub label: String,
    roles: Vec<(&'static str, Role)>,
    _dbs: Vec<TestDb>,
    _redis: Option<TestRedis>,
}

impl System {
    /// Starts every role with default test settings.
    pub async fn start() -> Self {
        Self::start_with(tailor_gateway::Settings::default()).await
    }

    /// Starts every role with the test catalog and shoppers' behaviour loaded and a model
    /// trained: where most journeys begin.
    pub async fn start_trained() -> Self {
        let system = Self::start().await;
        system.load_catalog(catalog()).await;
        load_behaviour(&system).await;
        system.train().await;
        system
    }

    /// Starts every role, the gateway with `gateway` settings (listen address and upstreams
    /// are filled in).
    pub async fn start_with(mut gateway: tailor_gateway::Settings) -> Self {
        init_for_tests();
        let redis = TestRedis::new().await.unwrap();
        let events = event_settings();
        let bus = Bus::new(redis.as_ref().map(|r| &r.redis), &events);
        let profile_db = TestDb::fresh(&tailor_profile::MIGRATIONS).await.unwrap();
        let recommend_db = TestDb::fresh(&tailor_recommend::MIGRATIONS).await.unwrap();
        let label = format!(
            "{}{}",
            profile_db.label,
            if redis.is_some() {
                "+redis"
            } else {
                "+memory bus"
            }
        );

        let (profile_listener, profile) = listener().await;
        let profile_app = tailor_profile::App::build(
            tailor_profile::Settings::default(),
            tailor_profile::Deps {
                db: profile_db.db.clone(),
                redis: redis.as_ref().map(|r| r.redis.clone()),
                bus: bus.clone(),
                verifier: verifier(),
                events: events.clone(),
            },
        )
        .await
        .unwrap();
        // Wired as `tailor serve all` is: the gateway calls the roles in process.
        let (profile_slot, recommend_slot) = (InProcess::new(), InProcess::new());
        let profile_app = profile_app.publish_in(profile_slot.clone());
        let profile_role = spawn(profile_listener, |l, s| profile_app.serve(l, s));

        let (recommend_listener, recommend) = listener().await;
        let recommend_app = tailor_recommend::App::build(
            recommend_settings(),
            tailor_recommend::Deps {
                db: recommend_db.db.clone(),
                redis: redis.as_ref().map(|r| r.redis.clone()),
                bus: bus.clone(),
                verifier: verifier(),
                events: events.clone(),
            },
        )
        .await
        .unwrap();
        let recommend_app = recommend_app.publish_in(recommend_slot.clone());
        let recommend_role = spawn(recommend_listener, |l, s| recommend_app.serve(l, s));

        let (gateway_listener, gateway_addr) = listener().await;
        gateway.server.listen = gateway_addr;
        gateway.upstreams.profile = UpstreamSettings::at(format!("http://{profile}"));
        gateway.upstreams.recommend = UpstreamSettings::at(format!("http://{recommend}"));
        gateway
            .allowed_origins
            .push(format!("http://{gateway_addr}"));
        let issuer =
            TokenIssuer::new(&AuthSettings::default(), "gateway", &tailor_gateway::SCOPES).unwrap();
        let gateway_app = tailor_gateway::App::build(
            gateway,
            tailor_gateway::Deps {
                redis: redis.as_ref().map(|r| r.redis.clone()),
                tokens: TokenSource::new(issuer),
                in_process: tailor_gateway::InProcessUpstreams {
                    profile: Some(profile_slot),
                    recommend: Some(recommend_slot),
                },
            },
        )
        .await
        .unwrap();
        let gateway_role = spawn(gateway_listener, |l, s| gateway_app.serve(l, s));

        let system = Self {
            gateway: gateway_addr,
            profile,
            recommend,
            bus,
            label,
            roles: vec![
                ("profile", profile_role),
                ("recommend", recommend_role),
                ("gateway", gateway_role),
            ],
            _dbs: vec![profile_db, recommend_db],
            _redis: redis,
        };
        system.wait_ready().await;
        system
    }

    async fn wait_ready(&self) {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        for addr in [self.profile, self.recommend, self.gateway] {
            let mut client = HealthClient::new(channel_to(addr));
            for attempt in 0.. {
                let status = client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if status.is_ok_and(|s| s.into_inner().status == 1) {
                    break;
                }
                assert!(attempt < 200, "{addr} never became SERVING");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }

    /// Stops one role ("profile", "recommend" or "gateway"), as an outage would.
    pub async fn stop(&mut self, name: &str) {
        if let Some(pos) = self.roles.iter().position(|(n, _)| *n == name) {
            let (_, role) = self.roles.remove(pos);
            role.stop().await;
        }
    }

    /// The app's client: gRPC-web over HTTP/1.1 to the gateway.
    pub fn web_client(&self) -> WebClient {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(false)
            .build_http();
        let service = tower::ServiceBuilder::new()
            .layer(GrpcWebClientLayer::new())
            .service(client);
        MobileServiceClient::with_origin(
            service,
            format!("http://{}", self.gateway).parse().unwrap(),
        )
    }

    /// A plain gRPC client of the gateway (HTTP/2), as native apps speak.
    pub fn grpc_client(&self) -> MobileServiceClient<Channel> {
        MobileServiceClient::new(channel_to(self.gateway))
    }

    /// A signed-in user's token, from the gateway's development endpoint.
    pub async fn user_token(&self, user: &str) -> String {
        let auth = tailor_gateway::auth::UserAuth::new(&tailor_gateway::Settings::default().jwt)
            .await
            .unwrap();
        auth.mint(user, Duration::from_secs(600)).unwrap()
    }

    /// Another team's service calling recommend on its own.
    pub fn recommend_admin(&self) -> RecommendServiceClient<Outbound> {
        RecommendServiceClient::new(Outbound::new(
            channel_to(self.recommend),
            tokens("catalog", &["recommend:admin", "recommend:read"]),
        ))
    }

    /// Another team's service calling profile on its own.
    pub fn profile_admin(&self) -> ProfileServiceClient<Outbound> {
        ProfileServiceClient::new(Outbound::new(
            channel_to(self.profile),
            tokens("crm", &["profile:read", "profile:write"]),
        ))
    }

    /// How many interactions the recommend service holds for `user` (via its privacy export).
    pub async fn recommend_interactions(&self, user: &str) -> usize {
        use tailor_proto::privacy::v1 as prv;
        let mut client =
            prv::privacy_participant_service_client::PrivacyParticipantServiceClient::new(
                Outbound::new(channel_to(self.recommend), tokens("privacy", &["privacy"])),
            );
        let page = client
            .export_user_data(prv::ExportUserDataRequest {
                user_id: user.to_owned(),
                page_size: 1000,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        page.records
            .iter()
            .filter(|r| r.collection == "interaction")
            .count()
    }

    /// Loads `items` into the catalog.
    pub async fn load_catalog(&self, items: Vec<rpb::Item>) {
        for chunk in items.chunks(500) {
            self.recommend_admin()
                .upsert_items(rpb::UpsertItemsRequest {
                    items: chunk.to_vec(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                })
                .await
                .unwrap();
        }
    }

    /// Trains the models now and waits until the new version serves.
    pub async fn train(&self) {
        let mut admin = self.recommend_admin();
        // The previous run (the catalog's upserts start one) swaps its model in a moment
        // before it ends: until then a new request is answered "already running". Its model
        // may predate data this caller stored since, so the wait is for a model that
        // finished after this caller's run started, not for any change of version.
        let mut asked_at = 0;
        let mut started = false;
        for _ in 0..200 {
            asked_at = tailor_kit::time::now_micros();
            started = admin
                .train_models(rpb::TrainModelsRequest {
                    request_id: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .started;
            if started {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started, "a training run was still going after 10 s");
        for _ in 0..600 {
            if active_model_finished_at(&mut admin).await >= Some(asked_at) {
                // The replica that trained swaps at once; give the poller of others a beat.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("training did not finish");
    }
}

/// When the serving model finished training (unix microseconds).
async fn active_model_finished_at(
    admin: &mut RecommendServiceClient<Outbound>,
) -> Option<tailor_kit::time::Micros> {
    let models = admin
        .list_models(rpb::ListModelsRequest {
            page_size: 5,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .models;
    let active = models.into_iter().find(|m| m.active)?;
    tailor_kit::time::from_timestamp(&active.create_time?)
}

fn spawn<F, Fut>(listener: TcpListener, serve: F) -> Role
where
    F: FnOnce(TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(listener, stop.clone()));
    Role { stop, task }
}

impl Drop for System {
    fn drop(&mut self) {
        for (_, role) in &self.roles {
            role.stop.cancel();
        }
    }
}

/// Other shoppers' behaviour, so collaborative models have something to learn: readers of
/// science fiction read each other's books, kitchen buyers buy kettle and teapot together.
pub async fn load_behaviour(system: &System) {
    use tailor_proto::events::v1::BehaviorType;
    use tailor_proto::profile::v1 as ppb;
    let now = tailor_kit::time::now_micros();
    let mut events = Vec::new();
    for u in 0..30 {
        let (items, kind): (&[&str], BehaviorType) = match u % 3 {
            0 => (
                &["books-0", "books-1", "books-2", "books-3"],
                BehaviorType::View,
            ),
            1 => (&["home-0", "home-1", "home-2"], BehaviorType::Purchase),
            _ => (
                &["electronics-0", "electronics-1", "electronics-2"],
                BehaviorType::Click,
            ),
        };
        for (i, item) in items.iter().enumerate() {
            events.push(ppb::BehaviorEvent {
                event_id: format!("seed-{u}-{i}"),
                user_id: format!("shopper-{u}"),
                r#type: kind as i32,
                occurred_at: Some(tailor_kit::time::to_timestamp(
                    now - (u * 10 + i as i64) * 1_000_000,
                )),
                item_id: (*item).to_owned(),
                unit_price: (kind == BehaviorType::Purchase).then(|| {
                    tailor_proto::common::v1::Money {
                        amount_minor: 2999,
                        currency: "CNY".into(),
                    }
                }),
                ..Default::default()
            });
        }
    }
    let n = events.len();
    let response = system
        .profile_admin()
        .record_events(ppb::RecordEventsRequest { events })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.accepted_count as usize, n,
        "{:?}",
        response.rejected
    );
    // Wait until the recommend service has them all (they travel over the bus).
    for _ in 0..200 {
        if system.recommend_interactions("shopper-29").await >= 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("behaviour never reached the recommend service");
}

/// A small, structured catalog: three categories, items in each sharing words, one
/// unavailable item.
pub fn catalog() -> Vec<rpb::Item> {
    let mut items = Vec::new();
    let groups = [
        (
            "books/scifi",
            "Space opera novel",
            &[
                "Dune",
                "Foundation",
                "Hyperion",
                "Solaris",
                "Neuromancer",
                "Ubik",
            ][..],
        ),
        (
            "home/kitchen",
            "Kitchen essential",
            &["Kettle", "Teapot", "Cups", "Toaster", "Whisk", "Knife"][..],
        ),
        (
            "electronics/audio",
            "Wireless audio",
            &[
                "Earbuds",
                "Speaker",
                "Headphones",
                "Soundbar",
                "Turntable",
                "DAC",
            ][..],
        ),
    ];
    for (category, blurb, titles) in groups {
        for (i, title) in titles.iter().enumerate() {
            let id = format!("{}-{}", category.split('/').next().unwrap(), i);
            items.push(rpb::Item {
                item_id: id,
                kind: rpb::ItemKind::Product as i32,
                title: (*title).to_owned(),
                description: format!("{blurb}: {title}"),
                category: category.to_owned(),
                brand: "Acme".to_owned(),
                tags: vec![category.split('/').next_back().unwrap().to_owned()],
                price: Some(tailor_proto::common::v1::Money {
                    amount_minor: 1999 + 100 * i as i64,
                    currency: "CNY".into(),
                }),
                available: !(category == "home/kitchen" && i == 5),
                stock: 10,
                image_embedding: Vec::new(),
                image_url: String::new(),
                update_time: None,
            });
        }
    }
    items
}
