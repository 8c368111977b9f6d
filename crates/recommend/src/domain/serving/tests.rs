use std::collections::HashMap;

use indicatif::ProgressBar;
use tailor_kit::time::SECOND;

use super::*;
use crate::config::{ServingSettings, TrainingSettings};
use crate::domain::models::{TrainingInput, TrainingRow, train};

/// Two worlds: books (b*) read together, kitchen items (k*) bought together; k3 is not
/// available; "fresh" is a new book nobody touched.
fn world() -> (ModelSet, Catalog) {
    let catalog = Catalog::default();
    let mut items = Vec::new();
    for (id, category, title) in [
        ("b1", "books/scifi", "Dune"),
        ("b2", "books/scifi", "Foundation"),
        ("b3", "books/scifi", "Hyperion"),
        ("b4", "books/history", "SPQR"),
        ("k1", "home/kitchen", "Kettle"),
        ("k2", "home/kitchen", "Teapot"),
        ("k3", "home/kitchen", "Cups"),
        ("fresh", "books/scifi", "Dune Messiah"),
    ] {
        items.push(Item {
            item_id: id.to_owned(),
            title: title.to_owned(),
            description: format!("{title} {category} desert planet spice")
                .replace("Kettle", "kettle boil water"),
            category: category.to_owned(),
            available: id != "k3",
            ..Item::default()
        });
    }
    catalog.apply(
        items
            .iter()
            .map(|i| (i.item_id.clone(), Some(i.clone()), 1))
            .collect(),
        1,
    );
    let mut rows = Vec::new();
    let mut t = 0;
    for u in 0..20 {
        let (basket, kind): (&[&str], i32) = if u % 2 == 0 {
            (&["b1", "b2", "b3", "b4"], 1)
        } else {
            (&["k1", "k2", "k3"], PURCHASE)
        };
        for item in basket {
            t += 1;
            rows.push(TrainingRow {
                user_id: format!("u{u}"),
                item_id: (*item).to_owned(),
                kind,
                weight: 1.0,
                occurred_at: t * SECOND,
            });
        }
    }
    let regions = HashMap::from([("u1".to_owned(), "CN-31".to_owned())]);
    (trained(rows, catalog.all(), regions), catalog)
}

/// Every default source trained on `rows`, without a holdout.
fn trained(
    rows: Vec<TrainingRow>,
    catalog: Vec<Arc<Item>>,
    regions: HashMap<String, String>,
) -> ModelSet {
    let input = TrainingInput {
        rows,
        catalog,
        regions,
    };
    let settings = TrainingSettings {
        holdout: false,
        ..TrainingSettings::default()
    };
    train(&input, &settings, &ProgressBar::hidden()).unwrap()
}

fn request<'a>(
    placement: Placement,
    user: &'a str,
    history: &'a [Touch],
    context: &'a [String],
) -> Request<'a> {
    Request {
        placement,
        user_id: user,
        history,
        use_user_state: true,
        context,
        exclude: &[],
        page_size: 3,
        boosts: &[],
        region: None,
        onboarding: &[],
    }
}

fn touch(item: &str, kind: i32) -> Touch {
    Touch {
        item_id: item.to_owned(),
        kind,
        weight: 1.0,
        at: 0,
    }
}

fn ids(list: &[Recommendation]) -> Vec<&str> {
    list.iter().map(|r| r.item.item_id.as_str()).collect()
}

#[test]
fn history_drives_the_home_feed_and_each_item_is_explained() {
    let (models, catalog) = world();
    let settings = ServingSettings::default();
    let history = [touch("b1", 1)];
    let list = recommend(
        &models,
        &catalog,
        &settings.home,
        &settings,
        &request(Placement::Home, "newcomer", &history, &[]),
    );
    assert_eq!(list.len(), 3);
    assert!(
        ids(&list)
            .iter()
            .take(2)
            .all(|id| id.starts_with('b') || *id == "fresh"),
        "{:?}",
        ids(&list)
    );
    let similar = list
        .iter()
        .find(|r| r.reason_kind == ReasonKind::SimilarToHistory)
        .expect("an item-based reason");
    assert_eq!(similar.reason, "Because you viewed Dune");
    assert_eq!(similar.reason_item.as_deref(), Some("b1"));
}

#[test]
fn bought_unavailable_and_excluded_items_never_come_back() {
    let (models, catalog) = world();
    let settings = ServingSettings::default();
    let history = [touch("k1", PURCHASE)];
    let exclude = ["k2".to_owned()];
    let mut req = request(Placement::Home, "u1", &history, &[]);
    req.exclude = &exclude;
    req.page_size = 8;
    let list = recommend(&models, &catalog, &settings.home, &settings, &req);
    let got = ids(&list);
    assert!(!got.contains(&"k1"), "bought");
    assert!(!got.contains(&"k2"), "excluded by the caller");
    assert!(!got.contains(&"k3"), "unavailable");
}

#[test]
fn the_product_page_is_about_its_item_and_rules_explain_bought_together() {
    let (models, catalog) = world();
    let settings = ServingSettings::default();
    let context = ["k1".to_owned()];
    let list = recommend(
        &models,
        &catalog,
        &settings.cart,
        &settings,
        &request(Placement::Cart, "anon", &[], &context),
    );
    assert_eq!(list[0].item.item_id, "k2");
    assert_eq!(list[0].reason, "Often bought with Kettle");
    assert!(
        !ids(&list).contains(&"k1"),
        "the context item itself is not recommended"
    );
    let together = bought_together(&models, &catalog, "k1", 5);
    assert_eq!(together.len(), 1, "k3 is unavailable");
    assert!(together[0].lift > 1.0, "lift above chance");
}

#[test]
fn a_new_item_is_reachable_through_content_before_anyone_touched_it() {
    let (models, catalog) = world();
    let settings = ServingSettings::default();
    let context = ["b1".to_owned()];
    let mut req = request(Placement::ProductPage, "", &[], &context);
    req.page_size = 4;
    let list = recommend(&models, &catalog, &settings.product_page, &settings, &req);
    assert!(ids(&list).contains(&"fresh"), "{:?}", ids(&list));
}

#[test]
fn cold_start_uses_onboarding_categories_then_region_then_global() {
    let (models, catalog) = world();
    let settings = ServingSettings::default();
    let onboarding = ["home".to_owned()];
    let mut req = request(Placement::Home, "stranger", &[], &[]);
    req.onboarding = &onboarding;
    let list = recommend(&models, &catalog, &settings.home, &settings, &req);
    assert!(
        ids(&list).iter().all(|id| id.starts_with('k')),
        "{:?}",
        ids(&list)
    );
    assert_eq!(list[0].reason, "Popular in home");

    let mut req = request(Placement::Home, "stranger", &[], &[]);
    req.region = Some("CN-31");
    let list = recommend(&models, &catalog, &settings.home, &settings, &req);
    assert!(
        ids(&list)[0].starts_with('k'),
        "u1 of CN-31 buys kitchen items: {:?}",
        ids(&list)
    );
}

#[test]
fn boosts_reorder_and_no_category_takes_the_whole_page() {
    let (models, catalog) = world();
    let settings = ServingSettings {
        max_category_share: 0.5,
        ..ServingSettings::default()
    };
    let history = [touch("b1", 1), touch("k1", 1)];
    let boosts = [Boost {
        target: BoostTarget::Category("home".into()),
        factor: 50.0,
    }];
    let mut req = request(Placement::Home, "x", &history, &[]);
    req.boosts = &boosts;
    req.page_size = 4;
    let list = recommend(&models, &catalog, &settings.home, &settings, &req);
    assert_eq!(list[0].item.top_category(), "home", "{:?}", ids(&list));
    let homes = list
        .iter()
        .filter(|r| r.item.top_category() == "home")
        .count();
    assert!(homes <= 2, "at most half the page: {:?}", ids(&list));
}

#[test]
fn popular_lists_respect_categories_and_availability() {
    let (models, catalog) = world();
    let books = popular(&models, &catalog, Some("books"), false, 10);
    assert!(
        ids(&books)
            .iter()
            .all(|id| id.starts_with('b') || *id == "fresh")
    );
    assert_eq!(books[0].reason, "Popular in books");
    let kitchen = popular(&models, &catalog, Some("home/kitchen"), false, 10);
    assert!(!ids(&kitchen).contains(&"k3"));
}

/// Asks `source` for `query`'s candidates with several exclusions and depths, twice each
/// (computed, then kept), and checks they are what scoring returns.
fn assert_serves_as_scoring(
    models: &ModelSet,
    source: &str,
    query: &Query<'_>,
    excludes: &[Vec<ItemIdx>],
) {
    let (id, model) = models.source(source).unwrap();
    let folded = Ranked::history(query.history, query.weights);
    for exclude in excludes {
        let excluded = exclude.iter().copied().collect();
        for k in [1, 3, 20] {
            for _ in 0..2 {
                assert_eq!(
                    source_candidates(models, id, model, query, folded, k, &excluded),
                    model.recommend(query, k, exclude),
                    "{source} history={:?} k={k} exclude={exclude:?}",
                    query.history
                );
            }
        }
    }
}

#[test]
fn kept_rankings_serve_exactly_as_scoring_would() {
    let (models, _) = world();
    let u0 = models.users.get("u0").unwrap();
    let kept_sources: Vec<&String> = models
        .sources
        .iter()
        .filter(|(_, m)| m.ranks_by_history())
        .map(|(name, _)| name)
        .collect();
    let factor_sources: Vec<&String> = models
        .sources
        .iter()
        .filter(|(_, m)| m.ranks_by_user_alone(u0))
        .map(|(name, _)| name)
        .collect();
    for source in ["als", "itemknn", "sequence", "content"] {
        assert!(kept_sources.iter().any(|s| *s == source), "{source}");
    }
    assert!(!factor_sources.is_empty());
    let b1 = models.items.get("b1").unwrap();
    let k1 = models.items.get("k1").unwrap();
    let excludes = [vec![], vec![b1], vec![b1, k1]];
    for source in &factor_sources {
        for user in ["u0", "u1", "u7"] {
            let user = models.users.get(user).unwrap();
            assert!(
                models.sources[*source].ranks_by_user_alone(user),
                "{source}"
            );
            let history = [b1];
            assert_serves_as_scoring(&models, source, &Query::known(user, &history), &excludes);
        }
    }
    // Users the factor models never saw (their history is folded in) and every user of the
    // item-based sources: the history is ranked once and kept until it changes, and serves
    // exactly as scoring would.
    let model = &models.sources["als"];
    assert!(!model.ranks_by_user_alone(u32::MAX));
    let weights = [3.0, 1.0];
    for source in &kept_sources {
        for history in [vec![b1], vec![b1, k1]] {
            let queries = [
                Query::anonymous(&history),
                Query {
                    user: Some(u32::MAX),
                    history: &history,
                    weights: Some(&weights[..history.len()]),
                },
            ];
            for query in queries {
                assert_serves_as_scoring(&models, source, &query, &excludes);
            }
        }
    }
    // What was scored is kept: asking again ranks nothing.
    for source in &kept_sources {
        models.rankings.get_or_rank(
            models.source(source).unwrap().0,
            Ranked::history(&[b1], None),
            Rankings::depth(20),
            || panic!("{source}: the folded-in history was not kept"),
        );
    }
    // Different histories are kept apart.
    assert_ne!(Ranked::history(&[b1], None), Ranked::history(&[k1], None));
    assert_ne!(
        Ranked::history(&[b1, k1], Some(&[3.0, 1.0])),
        Ranked::history(&[b1, k1], Some(&[1.0, 3.0]))
    );
}

#[test]
fn exclusions_deeper_than_a_kept_ranking_score_afresh() {
    // 80 items, so ALS's kept ranking of a user is cut at its depth.
    let items: Vec<Arc<Item>> = (0..80)
        .map(|i| {
            Arc::new(Item {
                item_id: format!("i{i}"),
                title: format!("item {i}"),
                category: format!("c{}", i % 5),
                available: true,
                ..Item::default()
            })
        })
        .collect();
    let rows: Vec<TrainingRow> = (0..40i64)
        .flat_map(|u| {
            (0..30i64).map(move |j| TrainingRow {
                user_id: format!("u{u}"),
                item_id: format!("i{}", (u * 2 + j) % 80),
                kind: 1,
                weight: 1.0,
                occurred_at: (u * 30 + j + 1) * SECOND,
            })
        })
        .collect();
    let models = trained(rows, items, HashMap::new());
    let model = &models.sources["als"];
    let user = models.users.get("u3").unwrap();
    assert!(model.ranks_by_user_alone(user));
    let query = Query::known(user, &[]);
    let k = 20;
    let depth = Rankings::depth(k);
    let full = model.recommend(&query, depth, &[]);
    assert_eq!(full.len(), depth, "the kept ranking is cut at its depth");
    // The exclusions take all but 12 of the kept items: the page needs 20.
    let exclude: Vec<ItemIdx> = full.iter().take(depth - 12).map(|(i, _)| *i).collect();
    let folded = Ranked::history(&[], None);
    let als = models.source("als").unwrap().0;
    let excluded = exclude.iter().copied().collect();
    let served = source_candidates(&models, als, model, &query, folded, k, &excluded);
    assert_eq!(served.len(), k);
    assert_eq!(served, model.recommend(&query, k, &exclude));
}

#[test]
fn diversifying_reads_candidates_only_until_the_page_is_full() {
    let item = |id: &str, category: &str| {
        Arc::new(Item {
            item_id: id.to_owned(),
            category: category.to_owned(),
            ..Item::default()
        })
    };
    // Two books, then a kitchen item: with at most half of a two-item page per category,
    // the second book is held back and the kitchen item completes the page.
    let items = [
        item("b1", "books"),
        item("b2", "books"),
        item("k1", "home"),
        item("k2", "home"),
        item("k3", "home"),
    ];
    let mut read = 0;
    let ranked = items.iter().map(|i| {
        read += 1;
        (i, 1.0, "popular")
    });
    let page = diversify(ranked, 2, 0.5);
    let got: Vec<&str> = page.iter().map(|(i, _, _)| i.item_id.as_str()).collect();
    assert_eq!(got, ["b1", "k1"]);
    assert_eq!(
        read, 3,
        "the catalog is read in rank order only as far as the page needs"
    );
}

#[test]
fn best_first_reads_like_a_full_sort_however_far_it_is_read() {
    // Scores with ties, broken by the second field as the ranking breaks them by item id.
    let items: Vec<(f64, u32)> = (0..300u32)
        .map(|i| (f64::from((i * 7919) % 97) / 10.0, i))
        .collect();
    let order = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let mut sorted = items.clone();
    sorted.sort_by(order);
    for first in [0, 1, 20, 80, 299, 300, 500] {
        for read in [0, 1, 20, 80, 81, 300] {
            let got: Vec<_> = best_first(items.clone(), first, order).take(read).collect();
            assert_eq!(got, sorted[..read], "first {first}, read {read}");
        }
    }
}
