//! The set of models that serves together: one per configured source (popularity, item-kNN,
//! ALS, content, …), trained on the same id space from the interactions and the catalog,
//! evaluated on a time-based holdout, versioned, persisted as one blob, and swapped in whole.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tailor_kit::cache::{Outcome, ReadCounter};
use tailor_kit::time::{Micros, SECOND};

use super::PURCHASE;
use super::catalog::Item;
use crate::algo::{
    AlgoConfig, Catalog as AlgoCatalog, IdMap, Interactions, InteractionsBuilder, ItemIdx,
    ItemMeta, Merge, Model, Query, Recommender as _, TrainData, UserIdx, topk,
};
use crate::config::TrainingSettings;
use crate::eval::metrics::evaluate;
use crate::eval::split::{SplitMode, split};

const MAGIC: &[u8; 4] = b"TLMS";
/// Bump when any persisted type changes shape (2: content and embedding models keep
/// neighbour lists instead of vectors).
const FORMAT_VERSION: u16 = 2;
/// Users scored by the holdout evaluation at most (enough for stable means, bounded cost).
const HOLDOUT_USERS: usize = 2_000;
/// Items kept per region in cold-start popularity.
const REGION_TOP: usize = 200;

/// One stored interaction, as training reads it.
#[derive(Debug, Clone)]
pub struct TrainingRow {
    /// User.
    pub user_id: String,
    /// Item.
    pub item_id: String,
    /// Behaviour number.
    pub kind: i32,
    /// Interest weight.
    pub weight: f32,
    /// When.
    pub occurred_at: Micros,
}

/// Trained models sharing one id space.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelSet {
    /// Version id (UTC time of training).
    pub version: String,
    /// When trained.
    pub trained_at: Micros,
    /// Users known to the models.
    pub users: IdMap,
    /// Items known to the models (the catalog at training time plus interacted items).
    pub items: IdMap,
    /// Category of each item, by index ("" when unknown).
    pub item_categories: Vec<String>,
    /// Models by source name.
    pub sources: BTreeMap<String, Model>,
    /// Most popular items per region, for cold start.
    pub region_popular: HashMap<String, Vec<(ItemIdx, f32)>>,
    /// Holdout metrics, e.g. `als.ndcg@10`.
    pub metrics: BTreeMap<String, f64>,
    /// Interactions trained on.
    pub interactions: usize,
    /// Seconds spent.
    pub train_seconds: f64,
    /// Popularity lists per category path prefix, derived after loading.
    #[serde(skip)]
    pub popular_by_category: HashMap<String, Vec<(ItemIdx, f32)>>,
    /// Sources' rankings of the users they were trained with and of the histories they
    /// ranked, filled while serving.
    #[serde(skip)]
    pub rankings: Rankings,
}

/// The best items of a source for a user it was trained with (factor models) or for a
/// history (factor models folding it in, item-based models walking its items' neighbours),
/// unfiltered: a function of the model and the user (or the history) alone, so it is
/// computed once per model set (a full-catalog product or a few thousand neighbour look-ups,
/// the largest costs of a placement) and only filtered per request.
#[derive(Clone)]
pub struct Rankings {
    /// By source, whom and depth (rankings of different depths are different lists). Read
    /// several times per request: the key is three numbers, hashed by foldhash.
    kept: moka::sync::Cache<(SourceId, Ranked, usize), Ranking, foldhash::fast::RandomState>,
    /// Hits and rankings computed, as `cache.reads{cache="recommend:rankings"}` (a request
    /// that waited for another's ranking of the same key counts as a hit).
    reads: Arc<ReadCounter>,
}

/// A source's place among its set's sources ([`ModelSet::source`]): what kept rankings are
/// keyed by instead of its name. Every set keeps its own rankings, so places never shift
/// under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(u16);

/// Whom a kept ranking is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ranked {
    /// A user the model was trained with.
    User(UserIdx),
    /// A user it was not, by a hash of the history (items and weights) folded in.
    History(u64),
}

impl Ranked {
    /// The key of a folded-in history.
    pub fn history(items: &[ItemIdx], weights: Option<&[f32]>) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hasher};
        let mut hasher = BuildHasherDefault::<DefaultHasher>::default().build_hasher();
        for item in items {
            hasher.write_u32(*item);
        }
        hasher.write_u8(u8::from(weights.is_some()));
        for weight in weights.unwrap_or_default() {
            hasher.write_u32(weight.to_bits());
        }
        Self::History(hasher.finish())
    }
}

/// Items with their scores, best first.
pub type Ranking = Arc<[(ItemIdx, f32)]>;

impl Rankings {
    /// Items kept per ranking when requests read `k`: room for what the user bought and the
    /// caller excludes (a request whose exclusions eat into it scores afresh). Deeper costs
    /// every first request a longer sort and halves how many rankings fit.
    pub fn depth(k: usize) -> usize {
        k + 32
    }

    /// Room for about `mib` MiB of rankings (8 bytes a ranked item).
    pub fn new(mib: u64) -> Self {
        Self {
            kept: moka::sync::Cache::builder()
                .weigher(|_, ranking: &Ranking| {
                    u32::try_from(ranking.len()).unwrap_or(u32::MAX).max(1)
                })
                .max_capacity(mib.saturating_mul(1 << 20) / 8)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            reads: Arc::new(ReadCounter::new("recommend:rankings")),
        }
    }

    /// `source`'s best `depth` items for `whom`, computed by `rank` on a miss.
    pub fn get_or_rank(
        &self,
        source: SourceId,
        whom: Ranked,
        depth: usize,
        rank: impl FnOnce() -> Vec<(ItemIdx, f32)>,
    ) -> Ranking {
        let mut ranked = false;
        let ranking = self.kept.get_with((source, whom, depth), || {
            ranked = true;
            Arc::from(rank())
        });
        self.reads.add(if ranked {
            Outcome::Fetched
        } else {
            Outcome::Hit
        });
        ranking
    }

    /// Drops every kept ranking (benchmarks of a first request).
    pub fn clear(&self) {
        self.kept.invalidate_all();
    }
}

impl std::fmt::Debug for Rankings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rankings")
            .field("rankings", &self.kept.entry_count())
            .finish()
    }
}

impl Default for Rankings {
    fn default() -> Self {
        Self::new(crate::config::KEPT_RANKINGS_MIB)
    }
}

impl ModelSet {
    /// The set before any training: nothing known, nothing to recommend but the catalog.
    pub fn empty() -> Self {
        Self {
            version: "none".to_owned(),
            trained_at: 0,
            users: IdMap::default(),
            items: IdMap::default(),
            item_categories: Vec::new(),
            sources: BTreeMap::new(),
            region_popular: HashMap::new(),
            metrics: BTreeMap::new(),
            interactions: 0,
            train_seconds: 0.0,
            popular_by_category: HashMap::new(),
            rankings: Rankings::default(),
        }
    }

    /// Encodes for storage.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&postcard::to_stdvec(self).context("encoding the model set")?);
        Ok(out)
    }

    /// Decodes from storage and derives the serving indexes.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bytes.len() >= 6 && &bytes[..4] == MAGIC,
            "not a Tailor model set"
        );
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        anyhow::ensure!(
            version == FORMAT_VERSION,
            "model set format {version}, this build reads {FORMAT_VERSION}"
        );
        let mut set: Self = postcard::from_bytes(&bytes[6..]).context("decoding the model set")?;
        set.prepare();
        Ok(set)
    }

    /// A source by name, with its id.
    pub fn source(&self, name: &str) -> Option<(SourceId, &Model)> {
        // A handful of sources: a scan is as quick as the map's own search.
        let (i, (_, model)) = self
            .sources
            .iter()
            .enumerate()
            .find(|(_, (source, _))| *source == name)?;
        Some((SourceId(u16::try_from(i).ok()?), model))
    }

    /// Builds the per-category popularity lists (every path prefix: "electronics" covers
    /// "electronics/phones").
    fn prepare(&mut self) {
        let Some(popular) = self.sources.get("popular") else {
            return;
        };
        let mut scores = vec![0f32; popular.n_items()];
        popular.score_all(&Query::anonymous(&[]), &mut scores);
        let mut lists: HashMap<String, Vec<(ItemIdx, f32)>> = HashMap::new();
        for (i, category) in self.item_categories.iter().enumerate() {
            let score = scores.get(i).copied().unwrap_or(0.0);
            let mut end = 0;
            while end < category.len() {
                end = category[end..]
                    .find('/')
                    .map_or(category.len(), |p| end + p);
                lists
                    .entry(category[..end].to_owned())
                    .or_default()
                    .push((i as ItemIdx, score));
                end += 1;
            }
        }
        for list in lists.values_mut() {
            list.sort_by(topk::best_first);
        }
        self.popular_by_category = lists;
    }
}

/// What training needs from the store and the catalog.
pub struct TrainingInput {
    /// Every interaction.
    pub rows: Vec<TrainingRow>,
    /// The catalog.
    pub catalog: Vec<Arc<Item>>,
    /// Known regions of users.
    pub regions: HashMap<String, String>,
}

/// Trains every configured source on `input`, evaluating each on a time-based holdout
/// first when configured. Sources that cannot train on this data (no embeddings, no
/// purchases) are left out with a warning rather than failing the run.
pub fn train(
    input: &TrainingInput,
    settings: &TrainingSettings,
    progress: &ProgressBar,
) -> anyhow::Result<ModelSet> {
    let started = Instant::now();
    let mut items = IdMap::default();
    for item in &input.catalog {
        items.intern(&item.item_id);
    }
    let mut users = IdMap::default();
    for row in &input.rows {
        users.intern(&row.user_id);
        items.intern(&row.item_id);
    }
    let mut all = InteractionsBuilder::with_ids(users.clone(), items.clone());
    let mut purchases = InteractionsBuilder::with_ids(users.clone(), items.clone());
    for row in &input.rows {
        let t = row.occurred_at / SECOND;
        all.push(&row.user_id, &row.item_id, row.weight, t);
        if row.kind == PURCHASE {
            purchases.push(&row.user_id, &row.item_id, 1.0, t);
        }
    }
    let all = all.build(Merge::Sum);
    let purchases = purchases.build(Merge::Binary);

    let by_id: HashMap<&str, &Item> = input
        .catalog
        .iter()
        .map(|i| (i.item_id.as_str(), i.as_ref()))
        .collect();
    let dims = majority_dimension(&input.catalog);
    let mut item_categories = Vec::with_capacity(items.len());
    let mut metas = Vec::with_capacity(items.len());
    for idx in 0..items.len() as u32 {
        let item = items.external(idx).and_then(|id| by_id.get(id));
        let category = item.map(|i| i.category.clone()).unwrap_or_default();
        item_categories.push(category.clone());
        metas.push(ItemMeta {
            category: (!category.is_empty()).then_some(category),
            title: item.map(|i| i.title.clone()).unwrap_or_default(),
            description: item.map(|i| i.description.clone()).unwrap_or_default(),
            tags: item.map(|i| i.tags.clone()).unwrap_or_default(),
            embedding: item
                .filter(|i| dims.is_some_and(|d| i.embedding.len() == d))
                .map(|i| i.embedding.clone()),
        });
    }
    let catalog = AlgoCatalog { items: metas };

    let mut metrics = BTreeMap::new();
    if settings.holdout {
        progress.set_message("holdout evaluation");
        holdout(&all, &purchases, &catalog, settings, progress, &mut metrics);
    }
    let mut sources = BTreeMap::new();
    for (name, algorithm) in &settings.algorithms {
        progress.set_message(format!("training {name}"));
        let config = AlgoConfig::by_name(algorithm)?;
        let data = if matches!(config, AlgoConfig::Rules(_)) {
            &purchases
        } else {
            &all
        };
        match config.fit(
            TrainData {
                interactions: data,
                catalog: Some(&catalog),
            },
            progress,
        ) {
            Ok(model) => {
                sources.insert(name.clone(), model);
            }
            Err(err) => {
                tracing::warn!(source = %name, error = %err, "source not trained on this data")
            }
        }
    }

    let mut set = ModelSet {
        version: chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        trained_at: tailor_kit::time::now_micros(),
        users: all.users.clone(),
        items: all.items.clone(),
        item_categories,
        sources,
        region_popular: region_popular(input, &all.items),
        metrics,
        interactions: input.rows.len(),
        train_seconds: started.elapsed().as_secs_f64(),
        popular_by_category: HashMap::new(),
        rankings: Rankings::default(),
    };
    set.prepare();
    Ok(set)
}

/// The embedding length most catalog items share (items with another length are ignored).
fn majority_dimension(catalog: &[Arc<Item>]) -> Option<usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for item in catalog.iter().filter(|i| !i.embedding.is_empty()) {
        *counts.entry(item.embedding.len()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(dim, n)| (*n, *dim))
        .map(|(dim, _)| dim)
}

/// Fits each source on the training part of a time split and records Recall@10 and
/// NDCG@10 on the held-out part.
fn holdout(
    all: &Interactions,
    purchases: &Interactions,
    catalog: &AlgoCatalog,
    settings: &TrainingSettings,
    progress: &ProgressBar,
    metrics: &mut BTreeMap<String, f64>,
) {
    let parts = split(all, SplitMode::Time, 42);
    if parts.test.is_empty() {
        return;
    }
    let step = parts.test.len().div_ceil(HOLDOUT_USERS).max(1);
    let test: Vec<&(u32, Vec<ItemIdx>)> = parts.test.iter().step_by(step).collect();
    metrics.insert("holdout.users".to_owned(), test.len() as f64);
    for (name, algorithm) in &settings.algorithms {
        let Ok(config) = AlgoConfig::by_name(algorithm) else {
            continue;
        };
        let train = if matches!(config, AlgoConfig::Rules(_)) {
            purchases
        } else {
            &parts.train
        };
        let Ok(model) = config.fit(
            TrainData {
                interactions: train,
                catalog: Some(catalog),
            },
            progress,
        ) else {
            continue;
        };
        let ranked: Vec<Vec<ItemIdx>> = test
            .iter()
            .map(|(user, _)| {
                let history = parts.train.user_items().row_indices(*user);
                model
                    .recommend(&Query::known(*user, history), 10, history)
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let truth: Vec<&[ItemIdx]> = test.iter().map(|(_, items)| items.as_slice()).collect();
        let m = evaluate(&ranked, &truth, all.n_items(), &[10]);
        metrics.insert(
            format!("{name}.recall@10"),
            m.recall.get(&10).copied().unwrap_or(0.0),
        );
        metrics.insert(
            format!("{name}.ndcg@10"),
            m.ndcg.get(&10).copied().unwrap_or(0.0),
        );
    }
}

/// Distinct users per item within each region, most popular first.
fn region_popular(input: &TrainingInput, items: &IdMap) -> HashMap<String, Vec<(ItemIdx, f32)>> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut counts: HashMap<&str, HashMap<ItemIdx, f32>> = HashMap::new();
    for row in &input.rows {
        let (Some(region), Some(item)) = (input.regions.get(&row.user_id), items.get(&row.item_id))
        else {
            continue;
        };
        if seen.insert((row.user_id.as_str(), row.item_id.as_str())) {
            *counts
                .entry(region.as_str())
                .or_default()
                .entry(item)
                .or_default() += 1.0;
        }
    }
    counts
        .into_iter()
        .map(|(region, items)| {
            let mut list: Vec<(ItemIdx, f32)> = items.into_iter().collect();
            list.sort_by(topk::best_first);
            list.truncate(REGION_TOP);
            (region.to_owned(), list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, category: &str) -> Arc<Item> {
        Arc::new(Item {
            item_id: id.to_owned(),
            title: format!("item {id}"),
            category: category.to_owned(),
            available: true,
            ..Item::default()
        })
    }

    fn row(user: &str, item: &str, kind: i32, at: i64) -> TrainingRow {
        TrainingRow {
            user_id: user.to_owned(),
            item_id: item.to_owned(),
            kind,
            weight: 1.0,
            occurred_at: at * SECOND,
        }
    }

    #[test]
    fn a_model_set_trains_round_trips_and_indexes_categories() {
        let mut rows = Vec::new();
        for u in 0..12 {
            for (k, i) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
                if (u + k) % 4 != 0 {
                    rows.push(row(
                        &format!("u{u}"),
                        i,
                        if k == 2 { PURCHASE } else { 1 },
                        (u * 10 + k) as i64,
                    ));
                }
            }
        }
        let input = TrainingInput {
            rows,
            catalog: vec![
                item("a", "books/novels"),
                item("b", "books"),
                item("c", "toys"),
                item("new", "books/novels"),
            ],
            regions: HashMap::from([("u1".to_owned(), "CN-31".to_owned())]),
        };
        let set = train(&input, &TrainingSettings::default(), &ProgressBar::hidden()).unwrap();
        assert!(
            set.sources.contains_key("popular")
                && set.sources.contains_key("itemknn")
                && set.sources.contains_key("als")
        );
        assert!(
            !set.sources.contains_key("embedding"),
            "no embeddings: left out, not failed"
        );
        assert!(
            set.items.get("new").is_some(),
            "catalog items without interactions are known"
        );
        assert!(set.metrics.contains_key("itemknn.ndcg@10"));
        let books = &set.popular_by_category["books"];
        assert_eq!(books.len(), 3, "books covers books/novels");
        assert!(!set.region_popular["CN-31"].is_empty());

        let loaded = ModelSet::from_bytes(&set.to_bytes().unwrap()).unwrap();
        assert_eq!(loaded.version, set.version);
        assert_eq!(
            loaded.popular_by_category["books"].len(),
            3,
            "indexes rebuilt on load"
        );
        assert!(ModelSet::from_bytes(b"nope").is_err());
    }
}
