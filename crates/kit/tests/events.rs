//! The event pipeline end to end — outbox, relay, bus, idempotent consumer — on every
//! database backend and every bus available: SQLite and the in-process bus always,
//! PostgreSQL (`DATABASE_URL`) and Redis (`REDIS_URL`) when configured, as in CI.
#![allow(clippy::unwrap_used)] // test helpers, not only #[test] fns, may unwrap

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use sqlx::{Any, Row as _, Transaction};
use tailor_kit::db::Db;
use tailor_kit::events::consumer::{ConsumerSpec, Handler, run};
use tailor_kit::events::outbox::{Relay, enqueue};
use tailor_kit::events::{Bus, EventSettings, envelope};
use tailor_kit::redis::Redis;
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::testing::{TestDb, TestRedis, init_for_tests};
use tailor_proto::events::v1::{ConsentChanged, EventEnvelope};

const TOPIC: &str = "tailor.test.consent_changed";

/// Counts how often each event was applied, so duplicates show.
struct CountingHandler;

#[async_trait::async_trait]
impl Handler for CountingHandler {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Any>,
        envelope: &EventEnvelope,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO effect (event_id, applied) VALUES ($1, 1) \
             ON CONFLICT (event_id) DO UPDATE SET applied = effect.applied + 1",
        )
        .bind(&envelope.event_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

fn settings() -> EventSettings {
    EventSettings {
        relay_poll: Duration::from_millis(20),
        block: Duration::from_millis(100),
        reclaim_idle: Duration::from_millis(300),
        ..EventSettings::default()
    }
}

async fn commit_events(db: &Db, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut tx = db.begin_write().await.unwrap();
        let event = envelope(
            "test",
            &format!("u{i}"),
            &ConsentChanged {
                user_id: format!("u{i}"),
                purpose: "ads".into(),
                granted: i % 2 == 0,
                version: 1,
            },
        );
        enqueue(&mut tx, TOPIC, &event).await.unwrap();
        tx.commit().await.unwrap();
        ids.push(event.event_id);
    }
    ids
}

async fn effects(db: &Db) -> Vec<(String, i64)> {
    sqlx::query("SELECT event_id, applied FROM effect ORDER BY event_id")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect()
}

/// Polls until every event took effect once (or fails after a generous timeout).
async fn wait_for_effects(db: &Db, ids: &[String]) {
    let mut expected: Vec<(String, i64)> = ids.iter().map(|id| (id.clone(), 1)).collect();
    expected.sort();
    for _ in 0..400 {
        if effects(db).await.len() >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        effects(db).await,
        expected,
        "every event applied exactly once"
    );
}

fn spawn_consumer(
    bus: &Bus,
    db: &Db,
    name: &str,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut spec = ConsumerSpec::new(TOPIC, "test-group");
    spec.name = name.to_owned();
    tokio::spawn(run(
        bus.clone(),
        db.clone(),
        spec,
        Arc::new(CountingHandler),
        settings(),
        stop.clone(),
    ))
}

async fn buses() -> Vec<(&'static str, Bus, Option<TestRedis>)> {
    let mut buses = vec![("memory", Bus::new(None, &settings()), None)];
    match TestRedis::new().await.unwrap() {
        Some(redis) => buses.push((
            "redis",
            Bus::new(Some(&redis.redis), &settings()),
            Some(redis),
        )),
        None => eprintln!("REDIS_URL not set: Redis part skipped"),
    }
    buses
}

#[tokio::test]
async fn committed_events_take_effect_once_even_when_published_twice() {
    init_for_tests();
    for test_db in TestDb::every_backend(&common::MIGRATIONS).await.unwrap() {
        for (bus_name, bus, _redis) in buses().await {
            sqlx::query("DELETE FROM effect")
                .execute(test_db.db.pool())
                .await
                .unwrap();
            let stop = CancellationToken::new();
            let ids = commit_events(&test_db.db, 20).await;
            // An event written in a rolled-back transaction must never leave.
            let mut tx = test_db.db.begin_write().await.unwrap();
            let ghost = envelope("test", "ghost", &ConsentChanged::default());
            enqueue(&mut tx, TOPIC, &ghost).await.unwrap();
            tx.rollback().await.unwrap();

            let relay = Relay::new(test_db.db.clone(), bus.clone(), settings());
            // Simulate a relay that crashed after publishing but before deleting its rows.
            let rows = sqlx::query("SELECT envelope FROM outbox ORDER BY outbox_id")
                .fetch_all(test_db.db.pool())
                .await
                .unwrap();
            let payloads: Vec<Bytes> = rows
                .iter()
                .map(|r| Bytes::from(r.get::<Vec<u8>, _>(0)))
                .collect();
            bus.publish(TOPIC, &payloads).await.unwrap();
            tokio::spawn(relay.run(stop.clone()));
            let consumer = spawn_consumer(&bus, &test_db.db, "c1", &stop);

            wait_for_effects(&test_db.db, &ids).await;
            let left: i64 = sqlx::query("SELECT COUNT(*) FROM outbox")
                .fetch_one(test_db.db.pool())
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                left, 0,
                "{} / {bus_name}: relayed rows are deleted",
                test_db.label
            );
            stop.cancel();
            consumer.await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_crashed_consumers_events_are_reclaimed_by_another() {
    init_for_tests();
    for test_db in TestDb::every_backend(&common::MIGRATIONS).await.unwrap() {
        for (_bus_name, bus, _redis) in buses().await {
            sqlx::query("DELETE FROM effect")
                .execute(test_db.db.pool())
                .await
                .unwrap();
            let ids = commit_events(&test_db.db, 10).await;
            Relay::new(test_db.db.clone(), bus.clone(), settings())
                .relay_once()
                .await
                .unwrap();

            // The first consumer takes everything and dies without acknowledging.
            let mut doomed = bus.subscribe(TOPIC, "test-group", "doomed").await.unwrap();
            let taken = doomed.next_batch(100).await.unwrap();
            assert_eq!(taken.len(), ids.len());
            drop(doomed);

            let stop = CancellationToken::new();
            let survivor = spawn_consumer(&bus, &test_db.db, "survivor", &stop);
            wait_for_effects(&test_db.db, &ids).await;
            stop.cancel();
            survivor.await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_consumer_restarted_under_its_name_resumes_its_own_pending_events() {
    init_for_tests();
    let Some(redis) = TestRedis::new().await.unwrap() else {
        eprintln!("REDIS_URL not set: skipped");
        return;
    };
    let test_db = TestDb::fresh(&common::MIGRATIONS).await.unwrap();
    let mut slow = settings();
    slow.reclaim_idle = Duration::from_secs(3600); // only the restart path can recover them
    let bus = Bus::new(Some(&redis.redis), &slow);
    let ids = commit_events(&test_db.db, 5).await;
    Relay::new(test_db.db.clone(), bus.clone(), slow.clone())
        .relay_once()
        .await
        .unwrap();
    let mut before_crash = bus
        .subscribe(TOPIC, "test-group", "worker-1")
        .await
        .unwrap();
    assert_eq!(before_crash.next_batch(100).await.unwrap().len(), 5);
    drop(before_crash);

    let stop = CancellationToken::new();
    let mut spec = ConsumerSpec::new(TOPIC, "test-group");
    spec.name = "worker-1".into();
    let task = tokio::spawn(run(
        bus,
        test_db.db.clone(),
        spec,
        Arc::new(CountingHandler),
        slow,
        stop.clone(),
    ));
    wait_for_effects(&test_db.db, &ids).await;
    stop.cancel();
    task.await.unwrap();
}

/// A disposable Redis server with an append-only file, as production runs it.
struct OwnRedis {
    child: Child,
    port: u16,
    dir: Option<tempfile::TempDir>,
}

impl OwnRedis {
    fn start(port: u16, dir: tempfile::TempDir) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        Self {
            child,
            port,
            dir: Some(dir),
        }
    }

    fn kill(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.take().expect("data dir"))
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn events_survive_a_redis_restart_without_loss_or_duplicate_effects() {
    init_for_tests();
    if tailor_kit::testing::redis_url().is_none() {
        eprintln!("REDIS_URL not set: skipped");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = OwnRedis::start(port, tempfile::tempdir().unwrap());
    server.wait_ready().await;
    let url = secrecy::SecretString::from(format!("redis://127.0.0.1:{port}"));
    let redis = Redis::connect(&url, "").await.unwrap();
    let bus = Bus::new(Some(&redis), &settings());
    let test_db = TestDb::fresh(&common::MIGRATIONS).await.unwrap();

    let stop = CancellationToken::new();
    let relay = Relay::new(test_db.db.clone(), bus.clone(), settings());
    let waker = relay.waker();
    tokio::spawn(relay.run(stop.clone()));
    let consumer = spawn_consumer(&bus, &test_db.db, "c1", &stop);

    let mut ids = commit_events(&test_db.db, 10).await;
    waker.wake();
    wait_for_effects(&test_db.db, &ids).await;

    // Redis goes away; producers keep committing into the outbox meanwhile.
    let (port, dir) = server.kill();
    ids.extend(commit_events(&test_db.db, 10).await);
    waker.wake();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = OwnRedis::start(port, dir);
    server.wait_ready().await;
    ids.extend(commit_events(&test_db.db, 10).await);
    waker.wake();

    wait_for_effects(&test_db.db, &ids).await;
    stop.cancel();
    consumer.await.unwrap();
    drop(server);
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_does_not_block_the_rest() {
    init_for_tests();
    let test_db = TestDb::sqlite(&common::MIGRATIONS).await.unwrap();
    let bus = Bus::new(None, &settings());
    let ids = commit_events(&test_db.db, 3).await;
    bus.publish(TOPIC, &[Bytes::from_static(b"\xff\xffnot protobuf")])
        .await
        .unwrap();
    Relay::new(test_db.db.clone(), bus.clone(), settings())
        .relay_once()
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let consumer = spawn_consumer(&bus, &test_db.db, "c1", &stop);
    wait_for_effects(&test_db.db, &ids).await;
    stop.cancel();
    consumer.await.unwrap();
    let Bus::Memory(memory) = &bus else {
        unreachable!()
    };
    assert_eq!(memory.len(&format!("{TOPIC}.dead")), 1);
}

#[test]
fn envelopes_carry_the_payload_type() {
    let env = envelope("test", "u", &ConsentChanged::default());
    let decoded = EventEnvelope::decode(env.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded.producer, "test");
}

/// Applies like [`CountingHandler`], and notes what another connection sees in `committed`.
struct ObservingHandler {
    db: Db,
    seen: std::sync::Mutex<Vec<i64>>,
}

#[async_trait::async_trait]
impl Handler for ObservingHandler {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Any>,
        envelope: &EventEnvelope,
    ) -> anyhow::Result<()> {
        CountingHandler.handle(tx, envelope).await
    }

    async fn committed(&self, envelope: &EventEnvelope) {
        let applied: i64 = sqlx::query("SELECT COUNT(*) FROM effect WHERE event_id = $1")
            .bind(&envelope.event_id)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
            .get(0);
        self.seen.lock().unwrap().push(applied);
    }
}

#[tokio::test]
async fn the_committed_hook_runs_once_the_effect_is_visible_to_others() {
    init_for_tests();
    for test_db in TestDb::every_backend(&common::MIGRATIONS).await.unwrap() {
        let bus = Bus::new(None, &settings());
        let stop = CancellationToken::new();
        let ids = commit_events(&test_db.db, 5).await;
        tokio::spawn(Relay::new(test_db.db.clone(), bus.clone(), settings()).run(stop.clone()));
        let handler = Arc::new(ObservingHandler {
            db: test_db.db.clone(),
            seen: std::sync::Mutex::new(Vec::new()),
        });
        let consumer = tokio::spawn(run(
            bus.clone(),
            test_db.db.clone(),
            ConsumerSpec::new(TOPIC, "observing-group"),
            handler.clone(),
            settings(),
            stop.clone(),
        ));
        wait_for_effects(&test_db.db, &ids).await;
        for _ in 0..100 {
            if handler.seen.lock().unwrap().len() >= ids.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            *handler.seen.lock().unwrap(),
            vec![1; ids.len()],
            "{}",
            test_db.label
        );
        stop.cancel();
        consumer.await.unwrap();
    }
}
