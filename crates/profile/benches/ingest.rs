//! The ingestion writer on the embedded default (SQLite in a temporary file), in process:
//! calls of 500 events from a Zipf-skewed population (200,000 users, 50,000 items, a shop's
//! behaviour mix), as `crates/loadgen/scenarios/profile-ingest.toml` sends them over gRPC.
//! The database is first filled with 200,000 events so profiles exist and the tables have
//! depth. `one_call` is a call alone (a group of 500); `ten_calls` is ten at once, which
//! the writer commits together as under load (groups of up to 5,000).
//! Run: `cargo bench -p tailor-profile --bench ingest` (with
//! `TAILOR_PROFILE__DATABASE__SQLITE_CHECKPOINT_INTERVAL=0s` for the writer's own checkpoints
//! instead of those behind it).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, Zipf};
use tailor_kit::cache::Cache;
use tailor_kit::events::outbox::RelayWaker;
use tailor_kit::testing::TestDb;
use tailor_kit::time::{SECOND, now_micros};
use tailor_profile::MIGRATIONS;
use tailor_profile::Settings;
use tailor_profile::domain::event::{Money, RawEvent};
use tailor_profile::domain::profiles::Profiles;
use tailor_profile::store::Store;

// The allocator of the `tailor` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CALL: usize = 500;
const FILL_CALLS: usize = 400;

/// Behaviour in the loadgen's default mix: (kind number, weight).
const MIX: [(i32, u32); 8] = [
    (1, 60),
    (2, 5),
    (3, 18),
    (4, 8),
    (5, 2),
    (6, 4),
    (7, 2),
    (8, 1),
];
const REVIEWS: [&str; 4] = [
    "Great quality, arrived quickly. Would buy again!",
    "Terrible, it broke after two days.",
    "质量很好，物流也很快，非常满意！",
    "一般般吧，价格还算合理。",
];

struct Events {
    rng: StdRng,
    users: Zipf<f64>,
    items: Zipf<f64>,
    next_id: u64,
}

impl Events {
    fn new() -> Self {
        Self {
            rng: StdRng::seed_from_u64(42),
            users: Zipf::new(200_000.0, 1.0).expect("a Zipf law"),
            items: Zipf::new(50_000.0, 1.1).expect("a Zipf law"),
            next_id: 0,
        }
    }

    fn call(&mut self) -> Vec<RawEvent> {
        let now = now_micros();
        (0..CALL).map(|_| self.event(now)).collect()
    }

    fn event(&mut self, now: i64) -> RawEvent {
        self.next_id += 1;
        let user = self.users.sample(&mut self.rng) as u64;
        let item = self.items.sample(&mut self.rng) as u64;
        let mut pick = self.rng.random_range(0..100);
        let kind = MIX
            .iter()
            .find(|(_, weight)| {
                let hit = pick < *weight;
                pick = pick.saturating_sub(*weight);
                hit
            })
            .map_or(1, |(kind, _)| *kind);
        let mut event = RawEvent {
            event_id: format!("e{:016x}", self.next_id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            user_id: format!("u{user}"),
            kind,
            occurred_at: Some(now - self.rng.random_range(0..60 * SECOND)),
            session_id: format!("s{}", self.rng.random::<u32>()),
            ..RawEvent::default()
        };
        if kind == 2 {
            event.query = "wireless earbuds".to_owned();
            return event;
        }
        event.item_id = format!("i{item}");
        event.category = format!("c{}/c{}", item % 12, item % 97);
        event.brand = format!("b{}", item % 400);
        event.tags = vec![format!("t{}", item % 60)];
        let price = Money {
            amount_minor: 1_000 + i64::try_from(item % 50_000).unwrap_or(0) * 7,
            currency: "CNY".to_owned(),
        };
        match kind {
            4 | 5 => {
                event.quantity = 1;
                event.unit_price = Some(price);
            }
            6 => {
                event.quantity = self.rng.random_range(1..=3);
                event.unit_price = Some(price);
                event.discounted = self.rng.random_bool(0.25);
            }
            7 => {
                event.rating = [5, 5, 4, 3, 1][self.rng.random_range(0..5)];
                if self.rng.random_bool(0.5) {
                    event.review_text = REVIEWS[self.rng.random_range(0..REVIEWS.len())].to_owned();
                }
            }
            _ => {}
        }
        event
    }
}

/// The profile role's setting, read from the environment as `tailor serve profile` reads it:
/// `0s` leaves checkpoints to the writer (see `crates/kit/src/db.rs`).
const CHECKPOINT_INTERVAL: &str = "TAILOR_PROFILE__DATABASE__SQLITE_CHECKPOINT_INTERVAL";

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let checkpoint_interval = std::env::var(CHECKPOINT_INTERVAL).ok().map(|every| {
        humantime::parse_duration(&every).expect("a duration such as 1s in the variable")
    });
    let db = runtime
        .block_on(TestDb::sqlite_with(&MIGRATIONS, |settings| {
            if let Some(every) = checkpoint_interval {
                settings.sqlite_checkpoint_interval = every;
            }
        }))
        .expect("a migrated SQLite database");
    let settings = Arc::new(Settings::default());
    let profiles = runtime.block_on(async {
        let cache = Cache::new(None, "profile:record", Duration::from_secs(60), 100_000);
        Profiles::new(
            Store::new(db.db.clone()),
            cache,
            settings,
            RelayWaker::default(),
        )
    });
    let mut events = Events::new();
    runtime.block_on(async {
        for _ in 0..FILL_CALLS {
            let report = profiles
                .record(events.call(), None, now_micros(), 0)
                .await
                .expect("the fill is stored");
            assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
        }
    });

    let mut group = c.benchmark_group("sqlite");
    // Long runs: a WAL checkpoint (every 10,000 pages) stalls the odd call, so short ones
    // vary by ±20 %.
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(CALL as u64));
    group.bench_function("one_call/500_events", |b| {
        b.to_async(&runtime).iter_batched(
            || events.call(),
            |call| {
                let profiles = &profiles;
                async move { black_box(profiles.record(call, None, now_micros(), 0).await) }
            },
            BatchSize::PerIteration,
        );
    });
    group.throughput(Throughput::Elements(10 * CALL as u64));
    group.bench_function("ten_calls/5000_events", |b| {
        b.to_async(&runtime).iter_batched(
            || (0..10).map(|_| events.call()).collect::<Vec<_>>(),
            |calls| {
                let profiles = &profiles;
                async move {
                    let now = now_micros();
                    black_box(
                        futures::future::join_all(
                            calls
                                .into_iter()
                                .map(|call| profiles.record(call, None, now, 0)),
                        )
                        .await,
                    )
                }
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
