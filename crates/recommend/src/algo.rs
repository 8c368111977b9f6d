//! Recommendation algorithms behind one [`Recommender`] trait, selectable by name.
//!
//! Training takes [`TrainData`] (interactions plus an optional item [`Catalog`]) and an
//! [`AlgoConfig`]; it returns a [`Model`], a closed enum so the service can persist, load and
//! hot-swap any of them through one versioned format ([`persist`]).
//!
//! Serving asks with a [`Query`]: a known user's dense id and/or their recent items, so users
//! who were not in the training data still get recommendations (ALS folds them in, the kNN
//! models aggregate neighbours of their items).

pub mod als;
pub mod bpr;
pub mod content;
pub mod embedding;
pub(crate) mod kernels;
pub mod knn;
pub mod matrix;
pub mod persist;
pub mod popularity;
pub mod rules;
pub(crate) mod screen;
pub mod sequence;
pub mod topk;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

pub use matrix::{Csr, IdMap, Interactions, InteractionsBuilder, ItemIdx, Merge, UserIdx};
pub use persist::ModelBundle;

/// Errors from fitting, serving setup and model persistence.
#[derive(Debug, thiserror::Error)]
pub enum AlgoError {
    /// A configuration value is out of its valid range.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The algorithm needs data the caller did not provide (e.g. a catalog).
    #[error("missing training data: {0}")]
    MissingData(&'static str),
    /// An unknown algorithm name.
    #[error("unknown algorithm {0:?} (known: {known})", known = AlgoConfig::NAMES.join(", "))]
    UnknownAlgorithm(String),
    /// A persisted model could not be read or written.
    #[error("model file: {0}")]
    Persist(String),
    /// Reading or writing a model failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result alias for this module.
pub type Result<T, E = AlgoError> = std::result::Result<T, E>;

/// What serving knows about the user at request time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    /// The user's dense id when the model was trained with this user.
    pub user: Option<UserIdx>,
    /// The user's items, oldest first (recent views, cart, purchases); used for users unknown
    /// to the model and by the item-based and sequence models for everyone.
    pub history: &'a [ItemIdx],
    /// Optional strength of each history item (say a purchase 3, a view 1), aligned with
    /// `history`; every item counts 1 without it. Item-kNN, content, embedding, rules,
    /// sequence and the factor models' fold-in use it; user-kNN ignores it.
    pub weights: Option<&'a [f32]>,
}

impl<'a> Query<'a> {
    /// A query for a user the model was trained with, with their known items.
    pub fn known(user: UserIdx, history: &'a [ItemIdx]) -> Self {
        Self {
            user: Some(user),
            history,
            weights: None,
        }
    }

    /// A query for a user the model has never seen, from their recent items.
    pub fn anonymous(history: &'a [ItemIdx]) -> Self {
        Self {
            user: None,
            history,
            weights: None,
        }
    }

    /// The same query with a weight per history item.
    pub fn with_weights(self, weights: &'a [f32]) -> Self {
        Self {
            weights: Some(weights),
            ..self
        }
    }

    /// `(item, weight)` for every history item, oldest first.
    pub fn weighted_history(&self) -> impl DoubleEndedIterator<Item = (ItemIdx, f32)> + '_ {
        self.history.iter().enumerate().map(|(k, &i)| {
            let w = self.weights.and_then(|w| w.get(k)).copied();
            (i, w.unwrap_or(1.0))
        })
    }
}

/// The serving interface every model implements.
pub trait Recommender: Send + Sync {
    /// Number of items the model scores (its item ids are `0..n_items`).
    fn n_items(&self) -> usize;

    /// Writes a score for every item into `out` (length [`Recommender::n_items`]); higher is
    /// better, `-inf` means "never recommend".
    fn score_all(&self, query: &Query<'_>, out: &mut [f32]);

    /// Items most similar to `item`, best first, without the item itself.
    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)>;

    /// Top `k` items for the query, best first, never returning `exclude`d items (the caller
    /// passes the items already seen or bought, out of stock, ...).
    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        top_k_by_full_scan(self, query, k, exclude)
    }

    /// Top `k` for many queries (`exclude[q]` belongs to `queries[q]`), in parallel. Factor
    /// models override it to score a block of users with one matrix product.
    fn recommend_many(
        &self,
        queries: &[Query<'_>],
        k: usize,
        exclude: &[&[ItemIdx]],
    ) -> Vec<Vec<(ItemIdx, f32)>> {
        use rayon::prelude::*;
        queries
            .par_iter()
            .zip(exclude.par_iter())
            .map(|(q, e)| self.recommend(q, k, e))
            .collect()
    }

    /// Scores of the given items (for blending candidates from several models).
    fn score_items(&self, query: &Query<'_>, items: &[ItemIdx]) -> Vec<f32> {
        topk::with_dense_scores(self.n_items(), |scores| {
            self.score_all(query, scores);
            items
                .iter()
                .map(|&i| scores.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY))
                .collect()
        })
    }
}

/// The top `k` of scoring every item ([`Recommender::score_all`]): what
/// [`Recommender::recommend`] returns unless a model has a faster way to the same list.
pub fn top_k_by_full_scan<R: Recommender + ?Sized>(
    model: &R,
    query: &Query<'_>,
    k: usize,
    exclude: &[ItemIdx],
) -> Vec<(ItemIdx, f32)> {
    topk::with_dense_scores(model.n_items(), |scores| {
        model.score_all(query, scores);
        for &i in exclude {
            if let Some(s) = scores.get_mut(i as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        topk::top_k_dense(scores, k)
    })
}

/// Item attributes the content-based and category models read; aligned with item ids.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemMeta {
    /// Category name, for per-category popularity.
    pub category: Option<String>,
    /// Product title.
    pub title: String,
    /// Long description.
    pub description: String,
    /// Free-form tags (brand, keywords).
    pub tags: Vec<String>,
    /// Image embedding, all of one dimension across the catalog.
    pub embedding: Option<Vec<f32>>,
}

/// Item attributes by dense item id (`items[i]` describes item `i`).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// One entry per item id; missing trailing items have no attributes.
    pub items: Vec<ItemMeta>,
}

/// Everything a fit may read.
#[derive(Clone, Copy)]
pub struct TrainData<'a> {
    /// Who interacted with what, when.
    pub interactions: &'a Interactions,
    /// Item attributes, when the caller has them.
    pub catalog: Option<&'a Catalog>,
}

impl<'a> TrainData<'a> {
    /// Training data without a catalog.
    pub fn new(interactions: &'a Interactions) -> Self {
        Self {
            interactions,
            catalog: None,
        }
    }
}

/// An algorithm and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlgoConfig {
    /// Most interacted items (optionally time-decayed: "trending").
    Popularity(popularity::PopularityConfig),
    /// Item-based collaborative filtering.
    ItemKnn(knn::KnnConfig),
    /// User-based collaborative filtering.
    UserKnn(knn::KnnConfig),
    /// Implicit ALS.
    Als(als::AlsConfig),
    /// Bayesian personalised ranking.
    Bpr(bpr::BprConfig),
    /// TF-IDF over item text.
    Content(content::ContentConfig),
    /// Image-embedding similarity.
    Embedding(embedding::EmbeddingConfig),
    /// Frequently-bought-together rules.
    Rules(rules::RulesConfig),
    /// Next-item transitions.
    Sequence(sequence::SequenceConfig),
}

impl AlgoConfig {
    /// Names accepted by [`AlgoConfig::by_name`].
    pub const NAMES: &'static [&'static str] = &[
        "popular",
        "trending",
        "itemknn_cosine",
        "itemknn_bm25",
        "itemknn_rp3",
        "userknn_cosine",
        "userknn_bm25",
        "als",
        "als_cholesky",
        "als_bm25",
        "bpr",
        "content_tfidf",
        "embedding",
        "rules",
        "sequence",
    ];

    /// The default configuration of a named algorithm.
    pub fn by_name(name: &str) -> Result<Self> {
        use knn::Weighting;
        Ok(match name {
            "popular" => Self::Popularity(popularity::PopularityConfig::default()),
            "trending" => Self::Popularity(popularity::PopularityConfig::trending_default()),
            "itemknn_cosine" => Self::ItemKnn(knn::KnnConfig::new(Weighting::Cosine)),
            "itemknn_bm25" => Self::ItemKnn(knn::KnnConfig::new(Weighting::bm25())),
            "itemknn_rp3" => Self::ItemKnn(knn::KnnConfig::new(Weighting::Rp3 {
                alpha: 1.0,
                beta: 0.5,
            })),
            "userknn_cosine" => Self::UserKnn(knn::KnnConfig::new(Weighting::Cosine)),
            "userknn_bm25" => Self::UserKnn(knn::KnnConfig::new(Weighting::bm25())),
            "als" => Self::Als(als::AlsConfig::default()),
            "als_cholesky" => Self::Als(als::AlsConfig {
                solver: als::Solver::Cholesky,
                ..als::AlsConfig::default()
            }),
            "als_bm25" => Self::Als(als::AlsConfig {
                bm25: Some(als::Bm25 { k1: 100.0, b: 0.8 }),
                ..als::AlsConfig::default()
            }),
            "bpr" => Self::Bpr(bpr::BprConfig::default()),
            "content_tfidf" => Self::Content(content::ContentConfig::default()),
            "embedding" => Self::Embedding(embedding::EmbeddingConfig::default()),
            "rules" => Self::Rules(rules::RulesConfig::default()),
            "sequence" => Self::Sequence(sequence::SequenceConfig::default()),
            other => return Err(AlgoError::UnknownAlgorithm(other.to_owned())),
        })
    }

    /// Trains a model; `progress` is advanced as the fit goes (pass
    /// [`ProgressBar::hidden`] when nobody watches).
    pub fn fit(&self, data: TrainData<'_>, progress: &ProgressBar) -> Result<Model> {
        Ok(match self {
            Self::Popularity(c) => Model::Popularity(popularity::Popularity::fit(c, data)?),
            Self::ItemKnn(c) => Model::ItemKnn(knn::ItemKnn::fit(c, data.interactions, progress)?),
            Self::UserKnn(c) => Model::UserKnn(knn::UserKnn::fit(c, data.interactions, progress)?),
            Self::Als(c) => Model::Als(als::Als::fit(c, data.interactions, progress)?),
            Self::Bpr(c) => Model::Bpr(bpr::Bpr::fit(c, data.interactions, progress)?),
            Self::Content(c) => Model::Content(content::ContentModel::fit(c, data, progress)?),
            Self::Embedding(c) => {
                Model::Embedding(embedding::EmbeddingModel::fit(c, data, progress)?)
            }
            Self::Rules(c) => Model::Rules(rules::AssociationRules::fit(c, data.interactions)?),
            Self::Sequence(c) => Model::Sequence(sequence::Transitions::fit(c, data.interactions)?),
        })
    }
}

/// A trained model of any algorithm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Model {
    /// See [`popularity::Popularity`].
    Popularity(popularity::Popularity),
    /// See [`knn::ItemKnn`].
    ItemKnn(knn::ItemKnn),
    /// See [`knn::UserKnn`].
    UserKnn(knn::UserKnn),
    /// See [`als::Als`].
    Als(als::Als),
    /// See [`bpr::Bpr`].
    Bpr(bpr::Bpr),
    /// See [`content::ContentModel`].
    Content(content::ContentModel),
    /// See [`embedding::EmbeddingModel`].
    Embedding(embedding::EmbeddingModel),
    /// See [`rules::AssociationRules`].
    Rules(rules::AssociationRules),
    /// See [`sequence::Transitions`].
    Sequence(sequence::Transitions),
}

impl Model {
    /// Whether the model ranks `user` from what it learnt about them alone, whatever their
    /// query's history: a factor model with the user's trained factors.
    pub fn ranks_by_user_alone(&self, user: UserIdx) -> bool {
        match self {
            Self::Als(m) => m.user_factor(user).is_some(),
            Self::Bpr(m) => m.user_factor(user).is_some(),
            _ => false,
        }
    }

    /// Whether the model ranks a query by its history (items and weights) alone, when it
    /// does not rank by the user alone: a factor model folding the history in (a full-catalog
    /// product) or an item-based model walking the items' neighbours. Such a ranking stays
    /// the same until the history changes, so it is worth keeping between requests.
    pub fn ranks_by_history(&self) -> bool {
        matches!(
            self,
            Self::Als(_)
                | Self::Bpr(_)
                | Self::ItemKnn(_)
                | Self::Sequence(_)
                | Self::Content(_)
                | Self::Embedding(_)
        )
    }

    /// The model as a trait object, for code that serves any algorithm.
    pub fn as_recommender(&self) -> &dyn Recommender {
        match self {
            Self::Popularity(m) => m,
            Self::ItemKnn(m) => m,
            Self::UserKnn(m) => m,
            Self::Als(m) => m,
            Self::Bpr(m) => m,
            Self::Content(m) => m,
            Self::Embedding(m) => m,
            Self::Rules(m) => m,
            Self::Sequence(m) => m,
        }
    }
}

impl Recommender for Model {
    fn n_items(&self) -> usize {
        self.as_recommender().n_items()
    }

    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        self.as_recommender().score_all(query, out);
    }

    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        self.as_recommender().similar_items(item, k)
    }

    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        self.as_recommender().recommend(query, k, exclude)
    }

    fn recommend_many(
        &self,
        queries: &[Query<'_>],
        k: usize,
        exclude: &[&[ItemIdx]],
    ) -> Vec<Vec<(ItemIdx, f32)>> {
        self.as_recommender().recommend_many(queries, k, exclude)
    }
}

/// Checks a configuration value, naming the field in the error.
/// Zeroes the `width`-wide rows of `factors` whose index `is_cold`.
pub(crate) fn zero_cold_rows(factors: &mut [f32], width: usize, is_cold: impl Fn(u32) -> bool) {
    for (row, chunk) in factors.chunks_exact_mut(width).enumerate() {
        if is_cold(row as u32) {
            chunk.fill(0.0);
        }
    }
}

pub(crate) fn ensure(ok: bool, field: &'static str, reason: impl Into<String>) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(AlgoError::InvalidConfig {
            field,
            reason: reason.into(),
        })
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The tiny dataset most algorithm tests use, small enough to check by hand:
    //!
    //! ```text
    //!        i0 i1 i2 i3 i4
    //!   u0    1  1  .  .  .
    //!   u1    1  1  1  .  .
    //!   u2    .  1  1  1  .
    //!   u3    .  .  .  1  1
    //! ```
    use super::*;

    pub(crate) fn tiny() -> Interactions {
        let rows: &[(u32, &[u32])] =
            &[(0, &[0, 1]), (1, &[0, 1, 2]), (2, &[1, 2, 3]), (3, &[3, 4])];
        let mut b = InteractionsBuilder::new();
        let mut t = 0;
        for &(u, items) in rows {
            for &i in items {
                b.push(&format!("u{u}"), &format!("i{i}"), 1.0, t);
                t += 1;
            }
        }
        b.build(Merge::Binary)
    }
}
