//! The recommend service's batched writes on the embedded default (SQLite in a temporary
//! file): a batch of deferred exposures as the serving path gathers them (up to 1,000 per
//! commit), and a batch of interactions as the event consumer stores them. Both are
//! multi-row inserts whose cost per row must not grow with the batch.
//! Run: `cargo bench -p tailor-recommend --bench store_writes`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tailor_kit::testing::TestDb;
use tailor_recommend::MIGRATIONS;
use tailor_recommend::store::{Exposure, NewInteraction, Store};

fn exposures(batch: u64, size: u64) -> Vec<Exposure> {
    (0..size)
        .map(|i| Exposure {
            recommendation_id: format!("rec-{batch}-{i}"),
            user_id: format!("user-{}", i % 997),
            placement: "home".to_owned(),
            experiment: String::new(),
            variant: String::new(),
            model_version: "20261128T000000.000Z".to_owned(),
            items: (0..20)
                .map(|k| format!("item-{}", (i * 7 + k) % 25_000))
                .collect(),
            created_at: 1_800_000_000_000_000,
        })
        .collect()
}

fn interactions(batch: u64, size: u64) -> Vec<NewInteraction> {
    (0..size)
        .map(|i| NewInteraction {
            user_id: format!("user-{}", i % 997),
            event_id: format!("event-{batch}-{i}"),
            item_id: format!("item-{}", (i * 13) % 25_000),
            kind: 1,
            weight: 1.0,
            occurred_at: 1_800_000_000_000_000,
        })
        .collect()
}

fn store_writes(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let db = runtime
        .block_on(TestDb::sqlite(&MIGRATIONS))
        .expect("a migrated SQLite database");
    let store = Store::new(db.db.clone());
    let mut batch = 0;
    let mut group = c.benchmark_group("sqlite");
    group.sample_size(20);
    for size in [100, 1_000] {
        group.bench_function(format!("save_deferred/{size}_exposures"), |b| {
            b.to_async(&runtime).iter_batched(
                || {
                    batch += 1;
                    exposures(batch, size)
                },
                |rows| {
                    let store = &store;
                    async move { black_box(store.save_deferred(&rows, &[]).await) }
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.bench_function("insert_interactions/500", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                batch += 1;
                interactions(batch, 500)
            },
            |rows| {
                let (store, db) = (&store, &db.db);
                async move {
                    let mut tx = db.begin_write().await.expect("a write transaction");
                    let stored = store.insert_interactions(&mut tx, &rows).await;
                    tx.commit().await.expect("a commit");
                    black_box(stored)
                }
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, store_writes);
criterion_main!(benches);
