//! Smoke tests: the generator runs for about a second against the in-process echo server,
//! a profile service spawned on SQLite, and the whole system (profile, recommend and the
//! gateway, over gRPC and gRPC-web), and reports requests without errors. They prove the
//! tool works; they never judge speed.

// Helpers outside #[test] functions panic on setup failures too, like the tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use tailor_kit::events::{Bus, EventSettings};
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::testing::{TestDb, init_for_tests, verifier};
use tailor_loadgen::{LoadgenArgs, Report};
use tailor_profile::{App, Deps, MIGRATIONS, Settings};

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadgenArgs,
}

/// A profile service on port 0 over a fresh SQLite file; stops when the token is dropped.
async fn spawn_profile() -> (SocketAddr, TestDb, tokio_util::sync::DropGuard) {
    init_for_tests();
    let db = TestDb::sqlite(&MIGRATIONS).await.unwrap();
    let events = EventSettings::default();
    let deps = Deps {
        db: db.db.clone(),
        redis: None,
        bus: Bus::new(None, &events),
        verifier: verifier(),
        events,
    };
    let app = App::build(Settings::default(), deps).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(app.serve(listener, stop.clone()));
    (addr, db, stop.drop_guard())
}

async fn run(dir: &Path, scenario: &str, extra: &[&str]) -> (Report, String) {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    let mut argv = vec![
        "loadgen".to_owned(),
        path.display().to_string(),
        "--quiet".to_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    let cli = Cli::parse_from(argv);
    let mut out = Vec::new();
    let report = tailor_loadgen::run(cli.args, &mut out).await.unwrap();
    (report, String::from_utf8(out).unwrap())
}

fn assert_clean(report: &Report) {
    let sides = std::iter::once(&report.target).chain(report.baseline.as_ref());
    for side in sides {
        assert!(!side.runs.is_empty(), "{}: no runs", side.name);
        for run in &side.runs {
            assert!(run.requests > 0, "{} {}: no requests", side.name, run.label);
            for step in &run.steps {
                assert!(
                    step.requests > 0,
                    "{} {}: no requests",
                    side.name,
                    step.name
                );
                assert!(
                    step.errors.is_empty(),
                    "{} {}: {:?}",
                    side.name,
                    step.name,
                    step.errors
                );
                assert_eq!(step.rejected_items, 0, "{} {}", side.name, step.name);
            }
        }
    }
}

const MIXED: &str = r#"
name = "smoke"
description = "every operation, briefly"

[population]
users = 200
items = 100

[load]
mode = "open"
rate = 150
warmup = "200ms"
duration = "1s"

[[steps]]
op = "echo"
params = { request_bytes = 100 }

[[steps]]
name = "ingest"
op = "profile.record_events"
params = { batch = 20 }

[[steps]]
op = "profile.get_profile"
weight = 2

[[steps]]
op = "profile.list_recent_items"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_run_against_echo_and_profile_reports_requests_and_no_errors() {
    let (addr, _db, _stop) = spawn_profile().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let plot = dir.path().join("plot.svg");
    let target = format!("profile=http://{addr}");
    let (report, text) = run(
        dir.path(),
        MIXED,
        &[
            "--target",
            &target,
            "--baseline",
            "echo",
            "--json",
            json.to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ],
    )
    .await;

    assert_clean(&report);
    assert_eq!(report.mode, "open");
    assert_eq!(report.target.name, "echo+profile");
    let run = &report.target.runs[0];
    assert_eq!(run.steps.len(), 4);
    let ingest = run.steps.iter().find(|s| s.name == "ingest").unwrap();
    assert_eq!(ingest.mean_items, 20.0, "every event accepted");
    assert!(report.baseline.is_some());
    assert_eq!(report.comparisons.len(), 1);
    assert!(
        text.contains("echo+profile / echo baseline at equal load"),
        "{text}"
    );

    let saved: Report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(saved.target.runs[0].requests, run.requests);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_and_closed_loop_work_against_the_echo_server() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "name = \"web\"\n[load]\nwarmup = \"100ms\"\nduration = \"500ms\"\n\
                    [[steps]]\nop = \"echo\"\nthink = \"5ms\"\nparams = { request_bytes = 2000, reply_bytes = 10 }\n";
    let (report, _) = run(
        dir.path(),
        scenario,
        &[
            "--transport",
            "grpc-web",
            "--mode",
            "closed",
            "--users",
            "4",
        ],
    )
    .await;
    assert_clean(&report);
    assert_eq!(report.target.transport, "grpc-web");
    assert_eq!(report.mode, "closed");
    let step = &report.target.runs[0].steps[0];
    assert!(
        (1900.0..2100.0).contains(&step.mean_request_bytes),
        "{step:?}"
    );
    assert!(step.mean_response_bytes < 20.0, "{step:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_fast_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(
        &path,
        "name = \"x\"\n[[steps]]\nop = \"profile.get_profile\"\n",
    )
    .unwrap();
    let cli = Cli::parse_from([
        "loadgen",
        path.to_str().unwrap(),
        "--quiet",
        "--target",
        "profile=http://127.0.0.1:9",
        "--timeout",
        "2s",
    ]);
    let err = tailor_loadgen::run(cli.args, &mut Vec::new())
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("against profile at http://127.0.0.1:9/"),
        "{message}"
    );
    assert!(message.contains("UNAVAILABLE"), "{message}");
}

/// Profile, recommend and the gateway on port 0 over fresh SQLite files and one in-process
/// bus, wired as `tests/e2e`'s `System::start` does (only what the generator needs).
struct System {
    profile: SocketAddr,
    recommend: SocketAddr,
    gateway: SocketAddr,
    _dbs: [TestDb; 2],
    _stop: tokio_util::sync::DropGuard,
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

impl System {
    async fn start() -> Self {
        use tailor_kit::auth::{AuthSettings, TokenIssuer, TokenSource};
        use tailor_kit::grpc::client::UpstreamSettings;

        init_for_tests();
        // Events relayed and consumed within milliseconds, so seeded behaviour reaches the
        // recommend service at once.
        let events = EventSettings {
            relay_poll: Duration::from_millis(20),
            block: Duration::from_millis(100),
            reclaim_idle: Duration::from_secs(5),
            ..EventSettings::default()
        };
        let bus = Bus::new(None, &events);
        let stop = CancellationToken::new();

        let profile_db = TestDb::sqlite(&MIGRATIONS).await.unwrap();
        let (profile_listener, profile) = listener().await;
        let app = App::build(
            Settings::default(),
            Deps {
                db: profile_db.db.clone(),
                redis: None,
                bus: bus.clone(),
                verifier: verifier(),
                events: events.clone(),
            },
        )
        .await
        .unwrap();
        tokio::spawn(app.serve(profile_listener, stop.clone()));

        let recommend_db = TestDb::sqlite(&tailor_recommend::MIGRATIONS).await.unwrap();
        let (recommend_listener, recommend) = listener().await;
        // Training on demand only (the test trains once the behaviour is in), no holdout.
        let mut settings = tailor_recommend::Settings::default();
        settings.training.holdout = false;
        settings.training.interval = Duration::ZERO;
        settings.training.catalog_debounce = Duration::from_secs(3600);
        settings.training.model_poll = Duration::from_millis(200);
        let app = tailor_recommend::App::build(
            settings,
            tailor_recommend::Deps {
                db: recommend_db.db.clone(),
                redis: None,
                bus: bus.clone(),
                verifier: verifier(),
                events: events.clone(),
            },
        )
        .await
        .unwrap();
        tokio::spawn(app.serve(recommend_listener, stop.clone()));

        let (gateway_listener, gateway) = listener().await;
        let mut settings = tailor_gateway::Settings::default();
        settings.server.listen = gateway;
        settings.upstreams.profile = UpstreamSettings::at(format!("http://{profile}"));
        settings.upstreams.recommend = UpstreamSettings::at(format!("http://{recommend}"));
        // Every call comes from one address and hot users call often: the limits would
        // refuse them. A slow test machine must not degrade modules either.
        settings.rate_limit.per_user_per_second = 1_000_000;
        settings.rate_limit.per_user_burst = 1_000_000;
        settings.rate_limit.per_ip_per_second = 1_000_000;
        settings.rate_limit.per_ip_burst = 1_000_000;
        settings.deadlines.screen = Duration::from_secs(10);
        settings.deadlines.backend_call = Duration::from_secs(10);
        let issuer =
            TokenIssuer::new(&AuthSettings::default(), "gateway", &tailor_gateway::SCOPES).unwrap();
        let app = tailor_gateway::App::build(
            settings,
            tailor_gateway::Deps {
                redis: None,
                tokens: TokenSource::new(issuer),
                // Over the network, as the gateway runs in its own process in production.
                in_process: tailor_gateway::InProcessUpstreams::default(),
            },
        )
        .await
        .unwrap();
        tokio::spawn(app.serve(gateway_listener, stop.clone()));

        Self {
            profile,
            recommend,
            gateway,
            _dbs: [profile_db, recommend_db],
            _stop: stop.drop_guard(),
        }
    }

    fn recommend_admin(
        &self,
    ) -> tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient<
        tailor_kit::grpc::client::Outbound,
    > {
        tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient::new(
            tailor_kit::grpc::client::Outbound::new(
                tailor_kit::testing::channel_to(self.recommend),
                tailor_kit::testing::tokens("bench", &["recommend:admin"]),
            ),
        )
    }

    /// The active model version and how many interactions it learnt from.
    async fn active_model(&self) -> Option<(String, i64)> {
        let models = self
            .recommend_admin()
            .list_models(tailor_proto::recommend::v1::ListModelsRequest {
                page_size: 5,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .models;
        models
            .into_iter()
            .find(|m| m.active)
            .map(|m| (m.version, m.interactions))
    }

    /// Trains the models until two versions in a row learnt from the same interactions: the
    /// seeded events, which reach the recommend service over the bus a moment after they
    /// are stored, are all in.
    async fn train(&self) {
        let mut active = self.active_model().await;
        for _ in 0..20 {
            self.recommend_admin()
                .train_models(tailor_proto::recommend::v1::TrainModelsRequest {
                    request_id: String::new(),
                })
                .await
                .unwrap();
            let mut trained = None;
            for _ in 0..200 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = self.active_model().await;
                if now.is_some() && now != active {
                    trained = now;
                    break;
                }
            }
            let trained = trained.expect("training did not finish within 10s");
            let before = active.replace(trained.clone());
            if trained.1 > 0 && before.is_some_and(|b| b.1 == trained.1) {
                // The replica that trained swaps at once; give serving a beat.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the interactions learnt never settled: {active:?}");
    }
}

/// The population of the system tests: small, so one call seeds the whole catalogue.
const POPULATION: &str = "[population]\nusers = 200\nitems = 120\n";

/// The catalogue in one call, and behaviour (every kind that becomes an interaction).
const SEED: &str = r#"
[load]
mode = "closed"
users = 2
warmup = "0s"
duration = "1s"

[[steps]]
name = "catalog"
op = "recommend.upsert_items"
params = { batch = 120 }

[[steps]]
name = "behaviour"
op = "profile.record_events"
weight = 2
params = { batch = 50, mix = { search = 0, remove_from_cart = 0, review = 0 } }
"#;

/// Every new gateway operation, by users and devices alike.
const MOBILE_STEPS: &str = r#"
[[steps]]
name = "home"
op = "mobile.get_home_feed"
params = { signed_in = 0.5 }

[[steps]]
name = "home_tablet"
op = "mobile.get_home_feed"
params = { signed_in = 0.5, device_class = "tablet" }

[[steps]]
name = "product"
op = "mobile.get_product_page"
params = { signed_in = 0.5 }

[[steps]]
name = "track"
op = "mobile.track_events"
params = { signed_in = 0.5, batch = 5 }
"#;

/// Every new recommend read.
const RECOMMEND_STEPS: &str = r#"
[[steps]]
name = "for_you"
op = "recommend.recommend"

[[steps]]
name = "on_product_page"
op = "recommend.recommend"
params = { placement = "product_page", page_size = 10 }

[[steps]]
name = "in_cart"
op = "recommend.recommend"
params = { placement = "cart" }

[[steps]]
name = "similar"
op = "recommend.list_similar_items"
"#;

const BRIEF_OPEN_LOOP: &str =
    "[load]\nmode = \"open\"\nrate = 150\nwarmup = \"200ms\"\nduration = \"1s\"\n";

/// No errors (`assert_clean`), and every answer had something in it.
fn assert_full(report: &Report) {
    assert_clean(report);
    for run in &report.target.runs {
        for step in &run.steps {
            assert_eq!(
                step.empty_answers, 0,
                "{}: {} of {} answers empty",
                step.name, step.empty_answers, step.latency_ms.count
            );
        }
    }
}

#[test]
fn app_user_credentials_match_the_gateways_defaults() {
    let jwt = tailor_gateway::config::JwtSettings::default();
    assert!(jwt.uses_dev_secret());
    assert_eq!(
        tailor_loadgen::identity::DEV_USER_JWT_SECRET,
        tailor_gateway::config::DEV_JWT_SECRET
    );
    assert_eq!(tailor_loadgen::identity::DEV_USER_JWT_ISSUER, jwt.issuer);
    assert_eq!(
        tailor_loadgen::identity::DEV_USER_JWT_AUDIENCE,
        jwt.audience
    );
    assert_eq!(
        tailor_loadgen::identity::DEVICE_HEADER,
        tailor_gateway::auth::DEVICE_HEADER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recommend_and_mobile_operations_run_against_the_whole_system_over_both_transports() {
    let system = System::start().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = format!("profile=http://{}", system.profile);
    let recommend = format!("recommend=http://{}", system.recommend);
    let gateway = format!("gateway=http://{}", system.gateway);

    // Seed: the catalogue and behaviour through the generator's own operations.
    let seed = format!("name = \"seed\"\n{POPULATION}{SEED}");
    let (report, _) = run(
        dir.path(),
        &seed,
        &["--target", &profile, "--target", &recommend],
    )
    .await;
    assert_clean(&report);
    let steps = &report.target.runs[0].steps;
    let catalog = steps.iter().find(|s| s.name == "catalog").unwrap();
    assert_eq!(catalog.mean_items, 120.0, "the whole catalogue upserted");
    let behaviour = steps.iter().find(|s| s.name == "behaviour").unwrap();
    assert_eq!(behaviour.mean_items, 50.0, "every event accepted");
    system.train().await;

    // gRPC: the gateway and the recommend service.
    let scenario =
        format!("name = \"system\"\n{POPULATION}{BRIEF_OPEN_LOOP}{MOBILE_STEPS}{RECOMMEND_STEPS}");
    let (report, text) = run(
        dir.path(),
        &scenario,
        &["--target", &gateway, "--target", &recommend],
    )
    .await;
    assert_full(&report);
    assert_eq!(report.target.name, "gateway+recommend");
    assert_eq!(report.target.transport, "grpc");
    let steps = &report.target.runs[0].steps;
    assert_eq!(steps.len(), 8, "{text}");
    let track = steps.iter().find(|s| s.name == "track").unwrap();
    assert_eq!(track.mean_items, 5.0, "every tracked event accepted");

    // gRPC-web (HTTP/1.1), as the mobile web client: the gateway serves both on one port.
    let scenario = format!("name = \"web\"\n{POPULATION}{BRIEF_OPEN_LOOP}{MOBILE_STEPS}");
    let (report, _) = run(
        dir.path(),
        &scenario,
        &["--target", &gateway, "--transport", "grpc-web"],
    )
    .await;
    assert_full(&report);
    assert_eq!(report.target.transport, "grpc-web");
    assert_eq!(report.target.runs[0].steps.len(), 4);
}
