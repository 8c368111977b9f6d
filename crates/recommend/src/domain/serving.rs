//! Putting a list together: candidates from each source of a placement's blend, normalised
//! and weighted, filtered (unavailable, excluded, already bought), boosted by business rules,
//! diversified across categories, and explained. Pure: models and catalog in, a list out.

use std::cmp::Ordering;
use std::sync::Arc;

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use super::catalog::{Catalog, Item};
use super::models::{ModelSet, Ranked, Rankings, SourceId};
use super::{PURCHASE, Placement, Touch};
use crate::algo::{ItemIdx, Model, Query, Recommender as _, topk};
use crate::config::{Blend, ServingSettings};

/// What a boost applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum BoostTarget {
    /// One item.
    Item(String),
    /// Items under a category path.
    Category(String),
    /// Items of a brand.
    Brand(String),
}

/// A business rule multiplying matching items' scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Boost {
    /// What it applies to.
    pub target: BoostTarget,
    /// Multiplier, > 0.
    pub factor: f64,
}

impl Boost {
    fn applies(&self, item: &Item) -> bool {
        match &self.target {
            BoostTarget::Item(id) => &item.item_id == id,
            BoostTarget::Category(c) => {
                item.category == *c || item.category.starts_with(&format!("{c}/"))
            }
            BoostTarget::Brand(b) => item.brand.eq_ignore_ascii_case(b),
        }
    }
}

/// Why an item is recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    /// Similar to the user's history.
    SimilarToHistory,
    /// Liked by similar users.
    SimilarUsers,
    /// Popular.
    Popular,
    /// Bought together with a context item.
    BoughtTogether,
    /// Matches the user's interests.
    MatchesInterests,
    /// Trending.
    Trending,
    /// Similar to the context item.
    SimilarToContext,
}

/// One recommended item.
#[derive(Debug, Clone)]
pub struct Recommendation {
    /// The item.
    pub item: Arc<Item>,
    /// Blended score.
    pub score: f64,
    /// Kind of reason.
    pub reason_kind: ReasonKind,
    /// Human-readable reason.
    pub reason: String,
    /// The item the reason refers to.
    pub reason_item: Option<String>,
    /// The source that contributed most.
    pub source: String,
}

/// One request's inputs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Where it is shown.
    pub placement: Placement,
    /// The user.
    pub user_id: &'a str,
    /// Recent interactions, newest first (empty when personalization is not allowed).
    pub history: &'a [Touch],
    /// Whether what the models learned about this user may be used (consent given and not
    /// erased since training).
    pub use_user_state: bool,
    /// Context items (product page item, cart, purchase).
    pub context: &'a [String],
    /// Items not to return.
    pub exclude: &'a [String],
    /// Items wanted.
    pub page_size: usize,
    /// Business boosts.
    pub boosts: &'a [Boost],
    /// Region, for cold start.
    pub region: Option<&'a str>,
    /// Onboarding categories, for cold start.
    pub onboarding: &'a [String],
}

/// Sources whose candidates come from items the query names.
const ITEM_BASED: [&str; 4] = ["itemknn", "sequence", "content", "embedding"];

/// The ranked, explained list for a request.
pub fn recommend(
    models: &ModelSet,
    catalog: &Catalog,
    blend: &Blend,
    settings: &ServingSettings,
    req: &Request<'_>,
) -> Vec<Recommendation> {
    // Anchors: context first (it is what the page is about), then the user's history, each
    // weighted by behaviour and discounted by recency.
    let mut anchors: Vec<(ItemIdx, f32)> = Vec::new();
    for id in req.context {
        if let Some(i) = models.items.get(id) {
            anchors.push((i, 8.0));
        }
    }
    for (rank, touch) in req.history.iter().take(settings.history_length).enumerate() {
        if let Some(i) = models.items.get(&touch.item_id) {
            anchors.push((
                i,
                touch.weight.max(0.1) * 0.9f32.powi(i32::try_from(rank).unwrap_or(i32::MAX)),
            ));
        }
    }
    let history: Vec<ItemIdx> = anchors.iter().map(|(i, _)| *i).collect();
    let weights: Vec<f32> = anchors.iter().map(|(_, w)| *w).collect();
    let user = if req.use_user_state {
        models.users.get(req.user_id)
    } else {
        None
    };
    let query = Query {
        user,
        history: &history,
        weights: Some(&weights),
    };
    let has_signal = user.is_some() || !history.is_empty();
    // The key of this history's fold-in rankings, the same for every factor source.
    let folded = Ranked::history(&history, Some(&weights));

    // Not to return: what the caller excludes, the context, and what the user bought.
    let excluded: FxHashSet<ItemIdx> = req
        .exclude
        .iter()
        .chain(req.context)
        .chain(
            req.history
                .iter()
                .filter(|t| t.kind == PURCHASE)
                .map(|t| &t.item_id),
        )
        .filter_map(|id| models.items.get(id))
        .collect();
    let exclude_idx: Vec<ItemIdx> = excluded.iter().copied().collect();

    // Sized for every source's full list up front: growing it rehashed every entry several
    // times per request.
    let mut blended = Blended::with_capacity_and_hasher(
        blend.len() * settings.candidates_per_source,
        FxBuildHasher,
    );
    let k = settings.candidates_per_source;
    for (source, weight) in blend.iter().filter(|(_, w)| **w > 0.0) {
        let Some((id, model)) = models.source(source) else {
            continue;
        };
        if source == "popular" || source == "trending" {
            add(
                &mut blended,
                source,
                *weight,
                popular_candidates(models, model, req, k, &exclude_idx, has_signal),
            );
        } else if has_signal {
            add(
                &mut blended,
                source,
                *weight,
                source_candidates(models, id, model, &query, folded, k, &excluded),
            );
        }
    }
    // Feeds are never left short: backfill below everything else. Lists about one item (its
    // page, a cart) stay about it, even if short.
    let feed = matches!(req.placement, Placement::Home | Placement::PostPurchase);
    if feed
        && blended.len() < req.page_size * 2
        && let Some(popular) = models.sources.get("popular")
    {
        let backfill = popular_candidates(models, popular, req, k, &exclude_idx, has_signal);
        add(&mut blended, "popular", 1e-3, backfill);
    }

    // Ranked on indices and scores alone: the catalog (string keys, a few cache misses per
    // look-up) is read in rank order only until the page is full.
    let items = catalog.view();
    let item_of = |idx: ItemIdx| {
        models
            .items
            .external(idx)
            .and_then(|id| items.get(id))
            .filter(|i| i.available)
    };
    let mut ranked: Vec<(ItemIdx, f64, &str)> = blended
        .into_iter()
        .filter(|(idx, _)| !excluded.contains(idx))
        .map(|(idx, (score, source, _))| (idx, score, source))
        .collect();
    if !req.boosts.is_empty() {
        for (idx, score, _) in &mut ranked {
            if let Some(item) = item_of(*idx) {
                *score *= req
                    .boosts
                    .iter()
                    .filter(|b| b.applies(item))
                    .map(|b| b.factor)
                    .product::<f64>();
            }
        }
    }
    let id = |idx: ItemIdx| models.items.external(idx).unwrap_or_default();
    let ranked = best_first(ranked, req.page_size.saturating_mul(4), |a, b| {
        b.1.total_cmp(&a.1).then_with(|| id(a.0).cmp(id(b.0)))
    });
    // Feeds should not be one category; lists about one item (its page, a cart) may be.
    let share = match req.placement {
        Placement::Home | Placement::PostPurchase => settings.max_category_share,
        Placement::ProductPage | Placement::Cart => 1.0,
    };
    let available = ranked
        .into_iter()
        .filter_map(|(idx, score, source)| Some((item_of(idx)?, score, source)));
    let page: Vec<(Arc<Item>, f64, String)> = diversify(available, req.page_size, share)
        .into_iter()
        .map(|(item, score, source)| (Arc::clone(item), score, source.to_owned()))
        .collect();
    drop(items);
    explain(models, catalog, req, page)
}

/// item → (blended score, best source, that source's contribution). Keyed by the model
/// set's own indices, never by what a caller sends, so a fast unkeyed hash is safe.
type Blended<'a> = FxHashMap<ItemIdx, (f64, &'a str, f64)>;

/// `items` in `order`, sorting only as far as they are read: the first `first` up front, the
/// rest only if the caller reads past them. A page is filled from the top few dozen of the
/// several hundred candidates, so most requests never sort the rest. `order` must be total
/// (no two items equal), which makes the result the same as sorting everything.
fn best_first<T>(
    mut items: Vec<T>,
    first: usize,
    order: impl Fn(&T, &T) -> Ordering + Copy,
) -> impl Iterator<Item = T> {
    let rest = if items.len() > first {
        items.select_nth_unstable_by(first, order);
        items.split_off(first)
    } else {
        Vec::new()
    };
    items.sort_unstable_by(order);
    items
        .into_iter()
        .chain(std::iter::once(rest).flat_map(move |mut rest| {
            rest.sort_unstable_by(order);
            rest
        }))
}

/// Adds one source's candidates with `weight`. Scores of different models are not
/// comparable, so each list is scaled by its best score. A list whose best score is not
/// positive carries no signal (e.g. a factor model folding in items it never saw) and is
/// left out rather than ranked arbitrarily.
fn add<'a>(
    blended: &mut Blended<'a>,
    source: &'a str,
    weight: f64,
    candidates: Vec<(ItemIdx, f32)>,
) {
    let top = candidates.first().map_or(0.0, |(_, s)| f64::from(*s));
    if top <= 0.0 || !top.is_finite() {
        return;
    }
    for (item, score) in candidates {
        let contribution = weight * f64::from(score).max(0.0) / top;
        if contribution <= 0.0 {
            continue;
        }
        let entry = blended.entry(item).or_insert((0.0, source, 0.0));
        entry.0 += contribution;
        if contribution > entry.2 {
            entry.1 = source;
            entry.2 = contribution;
        }
    }
}

/// Popularity candidates: global when the user gives any signal, else the best cold-start
/// list available (onboarding categories, then the region, then global).
fn popular_candidates(
    models: &ModelSet,
    model: &Model,
    req: &Request<'_>,
    k: usize,
    exclude: &[ItemIdx],
    has_signal: bool,
) -> Vec<(ItemIdx, f32)> {
    if !has_signal {
        let onboarding: Vec<(ItemIdx, f32)> = req
            .onboarding
            .iter()
            .filter_map(|c| models.popular_by_category.get(&c.trim().to_lowercase()))
            .flat_map(|list| list.iter().take(k).copied())
            .filter(|(i, _)| !exclude.contains(i))
            .collect();
        if !onboarding.is_empty() {
            return sorted(onboarding);
        }
        if let Some(list) = req.region.and_then(|r| models.region_popular.get(r)) {
            return list
                .iter()
                .filter(|(i, _)| !exclude.contains(i))
                .take(k)
                .copied()
                .collect();
        }
    }
    model.recommend(&Query::anonymous(&[]), k, exclude)
}

/// A source's top `k` for the query without `excluded`: from the set's kept ranking of the
/// user when the source ranks users by what it learnt about them alone, or of the history
/// when it ranks by the history (kept under `folded`, the key of the query's history), else
/// scored now.
fn source_candidates(
    models: &ModelSet,
    source: SourceId,
    model: &Model,
    query: &Query<'_>,
    folded: Ranked,
    k: usize,
    excluded: &FxHashSet<ItemIdx>,
) -> Vec<(ItemIdx, f32)> {
    let scored_now = || {
        let exclude: Vec<ItemIdx> = excluded.iter().copied().collect();
        model.recommend(query, k, &exclude)
    };
    let depth = Rankings::depth(k);
    let ranking = match query.user.filter(|u| model.ranks_by_user_alone(*u)) {
        Some(user) => models
            .rankings
            .get_or_rank(source, Ranked::User(user), depth, || {
                model.recommend(&Query::known(user, &[]), depth, &[])
            }),
        // A history ranks the same until it changes: the user's next request (another
        // placement, the next screen) reuses it, and so does everyone's page of a product.
        None if model.ranks_by_history() && !query.history.is_empty() => models
            .rankings
            .get_or_rank(source, folded, depth, || model.recommend(query, depth, &[])),
        None => return scored_now(),
    };
    let top: Vec<(ItemIdx, f32)> = ranking
        .iter()
        .filter(|(i, _)| !excluded.contains(i))
        .take(k)
        .copied()
        .collect();
    // A short list from a full-depth ranking means the exclusions ate into it: score afresh.
    if top.len() < k && ranking.len() == depth {
        return scored_now();
    }
    top
}

fn sorted(mut list: Vec<(ItemIdx, f32)>) -> Vec<(ItemIdx, f32)> {
    list.sort_by(topk::best_first);
    list.dedup_by_key(|(i, _)| *i);
    list
}

/// Takes the best items, at most `max_share` of the page from one top-level category; items
/// held back fill the page only if nothing else can.
fn diversify<'a>(
    ranked: impl IntoIterator<Item = (&'a Arc<Item>, f64, &'a str)>,
    page: usize,
    max_share: f64,
) -> Vec<(&'a Arc<Item>, f64, &'a str)> {
    if page == 0 {
        return Vec::new();
    }
    let cap = ((page as f64 * max_share).ceil() as usize).max(1);
    // At most a page of categories: no hash flooding to guard against.
    let mut per_category: FxHashMap<&str, usize> =
        FxHashMap::with_capacity_and_hasher(page, FxBuildHasher);
    let mut out = Vec::with_capacity(page);
    let mut held = Vec::new();
    for entry in ranked {
        let n = per_category.entry(entry.0.top_category()).or_default();
        if *n < cap {
            *n += 1;
            out.push(entry);
            if out.len() == page {
                break;
            }
        } else {
            held.push(entry);
        }
    }
    out.extend(held.into_iter().take(page - out.len()));
    out
}

fn explain(
    models: &ModelSet,
    catalog: &Catalog,
    req: &Request<'_>,
    page: Vec<(Arc<Item>, f64, String)>,
) -> Vec<Recommendation> {
    // For item-based sources, the reason is the most recent anchor whose neighbours include
    // the item; neighbour lists are fetched once per anchor.
    let anchors: Vec<&str> = req
        .context
        .iter()
        .map(String::as_str)
        .chain(req.history.iter().map(|t| t.item_id.as_str()))
        .take(10)
        .collect();
    // Looked up once, not once per item of the page.
    let anchor_indices: Vec<(&str, ItemIdx)> = anchors
        .iter()
        .filter_map(|a| Some((*a, models.items.get(a)?)))
        .collect();
    let mut neighbours: FxHashMap<(&str, ItemIdx), FxHashSet<ItemIdx>> = FxHashMap::default();
    let title = |id: &str| {
        catalog
            .get(id)
            .map_or_else(|| id.to_owned(), |i| i.title.clone())
    };
    page.into_iter()
        .map(|(item, score, source)| {
            let idx = models.items.get(&item.item_id);
            let mut anchor = None;
            if ITEM_BASED.contains(&source.as_str()) || source == "rules" {
                if let (Some((name, model)), Some(idx)) =
                    (models.sources.get_key_value(&source), idx)
                {
                    for &(a, a_idx) in &anchor_indices {
                        let set = neighbours.entry((name.as_str(), a_idx)).or_insert_with(|| {
                            model
                                .similar_items(a_idx, 100)
                                .into_iter()
                                .map(|(i, _)| i)
                                .collect()
                        });
                        if set.contains(&idx) {
                            anchor = Some(a.to_owned());
                            break;
                        }
                    }
                }
                if anchor.is_none() {
                    anchor = anchors.first().map(|a| (*a).to_owned());
                }
            }
            let in_context = anchor.as_ref().is_some_and(|a| req.context.contains(a));
            let (reason_kind, reason) = match (source.as_str(), &anchor) {
                ("rules", Some(a)) => (
                    ReasonKind::BoughtTogether,
                    format!("Often bought with {}", title(a)),
                ),
                (s, Some(a)) if ITEM_BASED.contains(&s) && in_context => (
                    ReasonKind::SimilarToContext,
                    format!("Similar to {}", title(a)),
                ),
                (s, Some(a)) if ITEM_BASED.contains(&s) => (
                    ReasonKind::SimilarToHistory,
                    format!("Because you viewed {}", title(a)),
                ),
                ("userknn", _) => (
                    ReasonKind::SimilarUsers,
                    "Popular with shoppers like you".to_owned(),
                ),
                ("als" | "bpr", _) => (ReasonKind::MatchesInterests, "Picked for you".to_owned()),
                ("trending", _) => (ReasonKind::Trending, "Trending now".to_owned()),
                _ if item.category.is_empty() => {
                    (ReasonKind::Popular, "Popular right now".to_owned())
                }
                _ => (
                    ReasonKind::Popular,
                    format!("Popular in {}", item.top_category()),
                ),
            };
            Recommendation {
                reason_item: anchor.filter(|_| {
                    reason_kind != ReasonKind::Popular && reason_kind != ReasonKind::Trending
                }),
                item,
                score,
                reason_kind,
                reason,
                source,
            }
        })
        .collect()
}

/// An item bought together with another, with the rule's strength.
#[derive(Debug, Clone)]
pub struct Associated {
    /// The item.
    pub item: Arc<Item>,
    /// Share of baskets holding both.
    pub support: f32,
    /// P(this | the other).
    pub confidence: f32,
    /// Confidence over this item's base rate.
    pub lift: f32,
}

/// Items bought together with `item_id`, strongest first.
pub fn bought_together(
    models: &ModelSet,
    catalog: &Catalog,
    item_id: &str,
    k: usize,
) -> Vec<Associated> {
    let (Some(Model::Rules(rules)), Some(idx)) =
        (models.sources.get("rules"), models.items.get(item_id))
    else {
        return Vec::new();
    };
    rules
        .rules_for(idx)
        .iter()
        .filter_map(|r| {
            let item = catalog
                .get(models.items.external(r.consequent)?)
                .filter(|i| i.available)?;
            Some(Associated {
                item,
                support: r.support,
                confidence: r.confidence,
                lift: r.lift,
            })
        })
        .take(k)
        .collect()
}

/// The most popular (or trending) items, under `category` when given.
pub fn popular(
    models: &ModelSet,
    catalog: &Catalog,
    category: Option<&str>,
    trending: bool,
    k: usize,
) -> Vec<Recommendation> {
    let source = if trending && models.sources.contains_key("trending") {
        "trending"
    } else {
        "popular"
    };
    let Some(model) = models.sources.get(source) else {
        return Vec::new();
    };
    let candidates: Vec<(ItemIdx, f32)> = match category {
        Some(category) => {
            let Some(list) = models.popular_by_category.get(category) else {
                return Vec::new();
            };
            let items: Vec<ItemIdx> = list.iter().map(|(i, _)| *i).collect();
            let scores = model.score_items(&Query::anonymous(&[]), &items);
            let mut scored: Vec<(ItemIdx, f32)> = items
                .into_iter()
                .zip(scores)
                .filter(|(_, s)| !trending || *s > 0.0)
                .collect();
            scored.sort_by(topk::best_first);
            scored
        }
        None => model.recommend(&Query::anonymous(&[]), k * 2, &[]),
    };
    let (reason_kind, reason) = match (trending, category) {
        (true, Some(c)) => (ReasonKind::Trending, format!("Trending in {c}")),
        (true, None) => (ReasonKind::Trending, "Trending now".to_owned()),
        (false, Some(c)) => (ReasonKind::Popular, format!("Popular in {c}")),
        (false, None) => (ReasonKind::Popular, "Popular right now".to_owned()),
    };
    candidates
        .into_iter()
        .filter_map(|(idx, score)| {
            let item = catalog
                .get(models.items.external(idx)?)
                .filter(|i| i.available)?;
            Some(Recommendation {
                item,
                score: f64::from(score),
                reason_kind,
                reason: reason.clone(),
                reason_item: None,
                source: source.to_owned(),
            })
        })
        .take(k)
        .collect()
}

#[cfg(test)]
mod tests;
