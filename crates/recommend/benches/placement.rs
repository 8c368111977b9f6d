//! Serving latency of whole placements: the default blends (ALS, item-kNN, sequence, content,
//! embedding, rules, popularity) with filtering, diversification and explanations, over a
//! 25k-item catalog, on one core. Where `serving` times single algorithms, this times what
//! one `Recommend` call computes.
//!
//! The data are synthetic (30k users, 25k items in 200 categories, Zipf-like popularity,
//! ~10 items per user, 64-float image embeddings); training takes a minute before the
//! measurements start. Run: `cargo bench -p tailor-recommend --bench placement`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tailor_recommend::config::{ServingSettings, TrainingSettings};
use tailor_recommend::domain::catalog::{Catalog, Item};
use tailor_recommend::domain::models::{ModelSet, TrainingInput, TrainingRow, train};
use tailor_recommend::domain::serving::{self, Request};
use tailor_recommend::domain::{PURCHASE, Placement, Touch};

const USERS: u32 = 30_000;
const ITEMS: u32 = 25_000;
const WORDS: [&str; 24] = [
    "wireless", "cotton", "steel", "leather", "organic", "compact", "classic", "travel", "smart",
    "kids", "outdoor", "kitchen", "gaming", "vintage", "portable", "premium", "light", "sport",
    "home", "office", "garden", "winter", "summer", "pro",
];

fn catalog(rng: &mut StdRng) -> Vec<Item> {
    (0..ITEMS)
        .map(|i| {
            let words: Vec<&str> = (0..4)
                .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                .collect();
            Item {
                item_id: format!("item-{i}"),
                title: words.join(" "),
                description: format!("{} for everyday use", words.join(" ")),
                category: format!("top{}/sub{}", i % 20, i % 200),
                brand: format!("brand{}", i % 300),
                tags: words.iter().take(2).map(|w| (*w).to_owned()).collect(),
                available: i % 50 != 0,
                stock: 10,
                embedding: (0..64).map(|_| rng.random::<f32>() - 0.5).collect(),
                ..Item::default()
            }
        })
        .collect()
}

fn behaviour(rng: &mut StdRng) -> Vec<TrainingRow> {
    let mut rows = Vec::new();
    let mut t = 0;
    for u in 0..USERS {
        for _ in 0..rng.random_range(3..18) {
            // Inverse-power sampling gives a long tail of rarely seen items.
            let x: f64 = rng.random();
            let item = ((f64::from(ITEMS)) * x.powf(2.5)) as u32 % ITEMS;
            t += 1;
            rows.push(TrainingRow {
                user_id: format!("user-{u}"),
                item_id: format!("item-{item}"),
                kind: if rng.random_ratio(1, 5) { PURCHASE } else { 1 },
                weight: 1.0,
                occurred_at: t * 1_000_000,
            });
        }
    }
    rows
}

fn history(rows: &[TrainingRow], user: &str) -> Vec<Touch> {
    rows.iter()
        .rev()
        .filter(|r| r.user_id == user)
        .map(|r| Touch {
            item_id: r.item_id.clone(),
            kind: r.kind,
            weight: r.weight,
            at: r.occurred_at,
        })
        .collect()
}

fn world() -> (ModelSet, Catalog, Vec<TrainingRow>) {
    let mut rng = StdRng::seed_from_u64(1);
    let items = catalog(&mut rng);
    let rows = behaviour(&mut rng);
    let catalog = Catalog::default();
    catalog.apply(
        items
            .iter()
            .map(|i| (i.item_id.clone(), Some(i.clone()), 1))
            .collect(),
        1,
    );
    let input = TrainingInput {
        rows,
        catalog: items.into_iter().map(Arc::new).collect(),
        regions: HashMap::new(),
    };
    let settings = TrainingSettings {
        holdout: false,
        ..TrainingSettings::default()
    };
    let models = train(&input, &settings, &ProgressBar::hidden()).expect("train");
    (models, catalog, input.rows)
}

fn placements(c: &mut Criterion) {
    let (models, catalog, rows) = world();
    let settings = ServingSettings::default();
    let known = "user-1234";
    let known_history = history(&rows, known);
    // A shopper the models never saw, with ten recent items: every factor model folds in.
    let new_history: Vec<Touch> = (0..10)
        .filter_map(|k| {
            history(&rows, &format!("user-{}", k * 7))
                .into_iter()
                .next()
        })
        .collect();
    let context = ["item-42".to_owned()];
    let request = |placement, user_id, history, context| Request {
        placement,
        user_id,
        history,
        use_user_state: true,
        context,
        exclude: &[],
        page_size: 20,
        boosts: &[],
        region: None,
        onboarding: &[],
    };
    // Repeated requests find the sources' rankings of the user and of the history kept
    // (until the history changes). The last field drops them before every request: a
    // shopper's first request, or the next one after an event changed their history, where
    // the factor models score the whole catalog and the item-based ones walk neighbours.
    let home_known = request(Placement::Home, known, &known_history, &[]);
    let new_user = request(Placement::Home, "user-new", &new_history, &[]);
    let product_page = request(Placement::ProductPage, known, &known_history, &context);
    let cases = [
        ("home_known_user", &settings.home, home_known.clone(), false),
        (
            "home_new_user_10_items",
            &settings.home,
            new_user.clone(),
            false,
        ),
        (
            "product_page",
            &settings.product_page,
            product_page.clone(),
            false,
        ),
        (
            "home_known_user_first_request",
            &settings.home,
            home_known,
            true,
        ),
        (
            "home_new_user_10_items_first_request",
            &settings.home,
            new_user,
            true,
        ),
        (
            "product_page_first_request",
            &settings.product_page,
            product_page,
            true,
        ),
    ];
    // One thread: the latency of one request on one core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let mut g = c.benchmark_group("placement_top20_of_25k");
    g.sample_size(100);
    for (name, blend, req, first_request) in &cases {
        g.bench_function(*name, |b| {
            pool.install(|| {
                b.iter(|| {
                    if *first_request {
                        models.rankings.clear();
                    }
                    black_box(serving::recommend(
                        &models,
                        &catalog,
                        blend,
                        &settings,
                        black_box(req),
                    ))
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, placements);
criterion_main!(benches);
