//! Serving latency: top-20 for one user out of a 25k-item catalog, on one core.
//!
//! The data are synthetic (30k users, 25k items, Zipf-like popularity, ~10 items per user) so
//! the bench runs anywhere; the fits are shortened because only serving is measured.
//! Run: `cargo bench -p tailor-recommend --bench serving`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tailor_recommend::algo::{
    AlgoConfig, Interactions, InteractionsBuilder, Merge, Model, Query, Recommender, TrainData,
    als::AlsConfig, knn::KnnConfig, knn::Weighting, sequence::SequenceConfig,
};

const USERS: u32 = 30_000;
const ITEMS: u32 = 25_000;

fn synthetic() -> Interactions {
    let mut rng = StdRng::seed_from_u64(1);
    let mut b = InteractionsBuilder::new().with_size(USERS as usize, ITEMS as usize);
    let mut t = 0;
    for u in 0..USERS {
        let n = rng.random_range(3..18);
        for _ in 0..n {
            // Inverse-power sampling gives a long tail of rarely seen items.
            let x: f64 = rng.random();
            let item = ((ITEMS as f64) * x.powf(2.5)) as u32 % ITEMS;
            b.push_idx(u, item, 1.0, t);
            t += 1;
        }
    }
    b.build(Merge::Binary)
}

fn fit(config: AlgoConfig, data: &Interactions) -> Model {
    config
        .fit(TrainData::new(data), &ProgressBar::hidden())
        .expect("fit")
}

fn serving(c: &mut Criterion) {
    let data = synthetic();
    // One thread: the latency of one request on one core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let als = fit(
        AlgoConfig::Als(AlsConfig {
            iterations: 3,
            alpha: 20.0,
            regularization: 0.1,
            ..AlsConfig::default()
        }),
        &data,
    );
    let item_knn = fit(
        AlgoConfig::ItemKnn(KnnConfig {
            k: 100,
            weighting: Weighting::bm25(),
        }),
        &data,
    );
    let user_knn = fit(
        AlgoConfig::UserKnn(KnnConfig::new(Weighting::Cosine)),
        &data,
    );
    let seq = fit(AlgoConfig::Sequence(SequenceConfig::default()), &data);

    let user = 1234;
    let seen = data.user_sequence(user);
    let recent: Vec<u32> = (0..10)
        .map(|k| data.user_items().row_indices(k * 7)[0])
        .collect();
    let mut g = c.benchmark_group("top20_of_25k");
    g.sample_size(200);
    let cases: [(&str, &Model, Query<'_>); 6] = [
        ("als_known_user", &als, Query::known(user, &seen)),
        ("als_fold_in_10_items", &als, Query::anonymous(&recent)),
        ("itemknn_10_items", &item_knn, Query::anonymous(&recent)),
        ("userknn_known_user", &user_knn, Query::known(user, &seen)),
        (
            "userknn_new_user_10_items",
            &user_knn,
            Query::anonymous(&recent),
        ),
        ("sequence_10_items", &seq, Query::anonymous(&recent)),
    ];
    for (name, model, query) in cases {
        g.bench_function(name, |b| {
            pool.install(|| {
                b.iter(|| black_box(model.recommend(black_box(&query), 20, query.history)))
            })
        });
    }
    g.finish();
    c.bench_function("als_similar_items_top20", |b| {
        b.iter(|| black_box(als.similar_items(black_box(42), 20)))
    });
}

criterion_group!(benches, serving);
criterion_main!(benches);
