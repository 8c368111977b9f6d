//! The binary as ops and newcomers use it: configuration errors, `serve all`, health,
//! reflection, graceful shutdown on SIGTERM and `demo seed`.
#![allow(clippy::unwrap_used)] // test helpers, not only #[test] fns, may unwrap

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tailor_kit::grpc::client::Outbound;
use tailor_kit::testing::{channel_to, tokens};
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::profile::v1 as pb;
use tailor_proto::profile::v1::profile_service_client::ProfileServiceClient;

const BIN: &str = env!("CARGO_BIN_EXE_tailor");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tailor serve all` in a fresh directory on a free port; killed when dropped.
struct Running {
    child: Child,
    port: u16,
    recommend_port: u16,
    dir: tempfile::TempDir,
}

impl Running {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let recommend_port = free_port();
        let child = Command::new(BIN)
            .args(["serve", "all"])
            .current_dir(dir.path())
            .env(
                "TAILOR_PROFILE__SERVER__LISTEN",
                format!("127.0.0.1:{port}"),
            )
            .env(
                "TAILOR_RECOMMEND__SERVER__LISTEN",
                format!("127.0.0.1:{recommend_port}"),
            )
            .env(
                "TAILOR_GATEWAY__SERVER__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("TAILOR_TELEMETRY__LOG_FORMAT", "json")
            .env_remove("REDIS_URL")
            // A file, never a pipe nobody reads (a full pipe would block the server's logging).
            .stdout(std::fs::File::create(dir.path().join("out.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err.log")).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            recommend_port,
            dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    async fn wait_serving(&self) {
        for _ in 0..600 {
            let status = Command::new(BIN)
                .args([
                    "health",
                    "--addr",
                    &self.addr().to_string(),
                    "--service",
                    "tailor.profile.v1.ProfileService",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        panic!(
            "tailor serve all never reported SERVING\nstdout:\n{}\nstderr:\n{}",
            log("out.log"),
            log("err.log")
        );
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_bad_setting_exits_64_naming_the_key() {
    let output = Command::new(BIN)
        .args(["serve", "all"])
        .env("TAILOR_PROFILE__INGEST__MAX_BATCH_SIZE", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("profile.ingest.max_batch_size"), "{stderr}");

    let output = Command::new(BIN)
        .args(["serve", "all"])
        .env("TAILOR_PROFILE__SERVER__LISTN", "x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("profile.server.listn"));

    let output = Command::new(BIN)
        .args(["serve", "all"])
        .env("TAILOR_ENVIRONMENT", "production")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(64),
        "the dev secret is refused in production"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("auth.service_secret"));

    let output = Command::new(BIN)
        .args(["serve", "billing"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
}

#[tokio::test]
async fn serve_all_reports_serving_and_lists_its_services_by_reflection() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let running = Running::start();
    running.wait_serving().await;
    let mut client = ServerReflectionClient::new(channel_to(running.addr()));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "tailor.profile.v1.ProfileService",
        "tailor.privacy.v1.PrivacyParticipantService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_calls_finish_then_exits_0() {
    let mut running = Running::start();
    running.wait_serving().await;
    let channel = Outbound::new(
        channel_to(running.addr()),
        tokens("test", &["profile:write"]),
    );
    let mut client = ProfileServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call = tokio::spawn(async move {
        client
            .stream_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let chunk = |n: usize| pb::StreamEventsRequest {
        events: vec![pb::BehaviorEvent {
            event_id: format!("e{n}"),
            user_id: "u".into(),
            r#type: BehaviorType::View as i32,
            occurred_at: Some(tailor_kit::time::to_timestamp(
                tailor_kit::time::now_micros(),
            )),
            item_id: "i".into(),
            ..Default::default()
        }],
    };
    tx.send(chunk(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The call in flight when SIGTERM arrived still completes.
    tx.send(chunk(2)).await.unwrap();
    drop(tx);
    let summary = call.await.unwrap().unwrap().into_inner();
    assert_eq!(summary.accepted_count, 2);
    let status = tokio::task::spawn_blocking(move || {
        let status = running.child.wait();
        (running, status)
    });
    let (running, status) = status.await.unwrap();
    assert_eq!(status.unwrap().code(), Some(0));
    // Each role closed its database: SQLite copied its log back into the file and removed it.
    let data = running.dir.path().join("data");
    for db in ["profile.db", "recommend.db"] {
        assert!(data.join(db).exists(), "{db} missing");
        for log in ["-wal", "-shm"] {
            let file = data.join(format!("{db}{log}"));
            assert!(!file.exists(), "{} left behind", file.display());
        }
    }
}

#[tokio::test]
async fn demo_seed_fills_a_running_system_once_and_personalizes_it() {
    use tailor_proto::recommend::v1 as rpb;
    use tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient;

    let running = Running::start();
    running.wait_serving().await;
    let recommend_addr = std::net::SocketAddr::from(([127, 0, 0, 1], running.recommend_port));
    let seed = || {
        let out = Command::new(BIN)
            .args([
                "demo", "seed", "--users", "40", "--days", "20", "--seed", "7",
            ])
            .args(["--profile-url", &format!("http://{}", running.addr())])
            .args(["--recommend-url", &format!("http://{recommend_addr}")])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "demo seed failed\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let number_before = |text: &str, word: &str| -> u64 {
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.trim_end_matches(',') == word)
            .unwrap();
        words[at - 1].parse().unwrap()
    };

    let first = seed();
    let sent = number_before(&first, "events");
    assert!(sent > 500, "40 shoppers over 20 days did little: {first}");
    assert_eq!(number_before(&first, "stored"), sent, "{first}");
    assert!(first.contains("model set"), "{first}");

    // Seeding again stores nothing twice.
    let second = seed();
    assert_eq!(number_before(&second, "events"), sent, "{second}");
    assert_eq!(number_before(&second, "stored"), 0, "{second}");
    assert_eq!(number_before(&second, "already"), sent, "{second}");

    // The profile knows what shopper-0001 likes, and their feed leans that way.
    let mut profile = ProfileServiceClient::new(Outbound::new(
        channel_to(running.addr()),
        tokens("test", &["profile:read"]),
    ));
    let shopper = profile
        .get_profile(pb::GetProfileRequest {
            user_id: "shopper-0001".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    let favourite = shopper
        .interests
        .iter()
        .filter(|i| i.dimension == pb::InterestDimension::Category as i32)
        .max_by(|a, b| a.weight.total_cmp(&b.weight))
        .map(|i| i.key.clone())
        .unwrap();
    let mut recommend = RecommendServiceClient::new(Outbound::new(
        channel_to(recommend_addr),
        tokens("test", &["recommend:read"]),
    ));
    let feed = recommend
        .recommend(rpb::RecommendRequest {
            user_id: "shopper-0001".into(),
            placement: rpb::Placement::Home.into(),
            page_size: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(feed.len(), 20);
    let in_favourite = feed
        .iter()
        .filter_map(|r| r.item.as_ref())
        .filter(|i| i.category.starts_with(favourite.as_str()))
        .count();
    assert!(
        in_favourite >= 3,
        "only {in_favourite} of 20 home items are in the shopper's top category {favourite}"
    );
}
