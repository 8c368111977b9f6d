//! Smoke tests: the generator runs for about a second against the in-process echo server and
//! a profile service spawned on SQLite, and reports requests without errors. They prove the
//! tool works; they never judge speed.

// Helpers outside #[test] functions panic on setup failures too, like the tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;

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
