//! Popularity: the cold-start fallback and the baseline every model must beat.
//!
//! Three rankings come out of one fit: global counts, counts per category (when a catalog is
//! given) and "trending" counts where each interaction decays exponentially with its age, so
//! a burst of recent interest outranks old volume.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::{
    ItemIdx, Query, Recommender, Result, TrainData, ensure,
    topk::{TopK, best_first, top_k_dense},
};

/// Popularity settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopularityConfig {
    /// Rank by time-decayed counts instead of plain counts when recommending.
    pub trending: bool,
    /// Half-life of the decay, in timestamp units (e.g. seconds).
    pub half_life: f64,
    /// Only interactions at most this old count towards trending (`None`: all).
    pub window: Option<i64>,
}

impl Default for PopularityConfig {
    fn default() -> Self {
        Self {
            trending: false,
            half_life: 7.0 * 86_400.0,
            window: Some(30 * 86_400),
        }
    }
}

impl PopularityConfig {
    /// Trending over the defaults' window.
    pub fn trending_default() -> Self {
        Self {
            trending: true,
            ..Self::default()
        }
    }
}

/// Item popularity, global, trending and per category.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Popularity {
    trending: bool,
    /// Number of users per item (weights ignored: one user buying 10 times is one vote).
    counts: Vec<f32>,
    /// Time-decayed counts relative to the latest timestamp in the data.
    decayed: Vec<f32>,
    /// Items of each category, most popular first.
    by_category: HashMap<String, Vec<(ItemIdx, f32)>>,
    /// Category of each item, when known.
    category_of: Vec<Option<u32>>,
    categories: Vec<String>,
    /// Every item, best first: built on first use (not persisted), so that a request walks
    /// the ranking instead of scoring and selecting over the whole catalog.
    #[serde(skip)]
    ranked: OnceLock<Vec<(ItemIdx, f32)>>,
}

impl Popularity {
    /// Counts users per item, their decayed sum, and per-category rankings.
    pub fn fit(config: &PopularityConfig, data: TrainData<'_>) -> Result<Self> {
        ensure(
            config.half_life > 0.0,
            "half_life",
            "must be positive".to_owned(),
        )?;
        let m = data.interactions;
        let counts: Vec<f32> = (0..m.n_items() as u32)
            .map(|i| m.item_users().row_len(i) as f32)
            .collect();
        let now = m.max_time();
        let mut decayed = vec![0f32; m.n_items()];
        let rate = std::f64::consts::LN_2 / config.half_life;
        for (_, i, _, t) in m.entries() {
            let age = (now - t).max(0);
            if config.window.is_some_and(|w| age > w) {
                continue;
            }
            decayed[i as usize] += (-rate * age as f64).exp() as f32;
        }
        let mut categories = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut category_of = vec![None; m.n_items()];
        let mut by_category: HashMap<String, Vec<(ItemIdx, f32)>> = HashMap::new();
        if let Some(catalog) = data.catalog {
            for (i, meta) in catalog.items.iter().enumerate().take(m.n_items()) {
                if let Some(c) = &meta.category {
                    let id = *index.entry(c.clone()).or_insert_with(|| {
                        categories.push(c.clone());
                        categories.len() as u32 - 1
                    });
                    category_of[i] = Some(id);
                    by_category
                        .entry(c.clone())
                        .or_default()
                        .push((i as ItemIdx, counts[i]));
                }
            }
            for list in by_category.values_mut() {
                list.sort_by(best_first);
            }
        }
        Ok(Self {
            trending: config.trending,
            counts,
            decayed,
            by_category,
            category_of,
            categories,
            ranked: OnceLock::new(),
        })
    }

    /// Most popular items overall.
    pub fn top_global(&self, k: usize) -> Vec<(ItemIdx, f32)> {
        top_k_dense(&self.counts, k)
    }

    /// Trending items (time-decayed counts); items with no interaction in the window are not
    /// trending at all.
    pub fn top_trending(&self, k: usize) -> Vec<(ItemIdx, f32)> {
        let mut top = TopK::new(k);
        for (i, &s) in self.decayed.iter().enumerate() {
            if s > 0.0 {
                top.push(i as ItemIdx, s);
            }
        }
        top.into_sorted()
    }

    /// Most popular items of a category (empty for an unknown category).
    pub fn top_in_category(&self, category: &str, k: usize) -> Vec<(ItemIdx, f32)> {
        self.by_category
            .get(category)
            .map(|l| l.iter().take(k).copied().collect())
            .unwrap_or_default()
    }

    fn ranking(&self) -> &[f32] {
        if self.trending {
            &self.decayed
        } else {
            &self.counts
        }
    }

    /// [`Self::ranking`] sorted, best first; ties go to the lower index, as
    /// [`top_k_dense`] breaks them.
    fn ranked(&self) -> &[(ItemIdx, f32)] {
        self.ranked.get_or_init(|| {
            let mut ranked: Vec<(ItemIdx, f32)> = self
                .ranking()
                .iter()
                .enumerate()
                .map(|(i, &s)| (i as ItemIdx, s))
                .filter(|(_, s)| !s.is_nan() && *s != f32::NEG_INFINITY)
                .collect();
            ranked.sort_unstable_by(best_first);
            ranked
        })
    }
}

impl Recommender for Popularity {
    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn score_all(&self, _query: &Query<'_>, out: &mut [f32]) {
        out.copy_from_slice(self.ranking());
    }

    /// What scoring would return (the query does not matter to popularity), read off the
    /// sorted ranking: `k` plus the excluded items are visited instead of the whole catalog.
    fn recommend(&self, _query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        let mut excluded = exclude.to_vec();
        excluded.sort_unstable();
        self.ranked()
            .iter()
            .filter(|(i, _)| excluded.binary_search(i).is_err())
            .take(k)
            .copied()
            .collect()
    }

    /// The most popular other items of the same category (or overall, without a category).
    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        let ranking = self.ranking();
        let category = self.category_of.get(item as usize).copied().flatten();
        let mut top = TopK::new(k);
        for (i, &s) in ranking.iter().enumerate() {
            if i as ItemIdx != item && (category.is_none() || self.category_of[i] == category) {
                top.push(i as ItemIdx, s);
            }
        }
        top.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{Catalog, InteractionsBuilder, ItemMeta, Merge, fixtures::tiny};

    #[test]
    fn global_popularity_ranks_by_user_count_and_skips_excluded() {
        let m = tiny();
        let p = Popularity::fit(&PopularityConfig::default(), TrainData::new(&m)).unwrap();
        // counts: i0=2, i1=3, i2=2, i3=2, i4=1
        assert_eq!(p.top_global(2), vec![(1, 3.0), (0, 2.0)]);
        let rec = p.recommend(&Query::known(0, &[0, 1]), 3, &[0, 1]);
        assert_eq!(rec, vec![(2, 2.0), (3, 2.0), (4, 1.0)]);
    }

    #[test]
    fn trending_prefers_recent_interest() {
        let mut b = InteractionsBuilder::new();
        // "old" has three users 10 days ago, "new" two users now; half-life one day.
        for u in 0..3 {
            b.push(&format!("a{u}"), "old", 1.0, 0);
        }
        for u in 0..2 {
            b.push(&format!("b{u}"), "new", 1.0, 10 * 86_400);
        }
        let m = b.build(Merge::Binary);
        let config = PopularityConfig {
            trending: true,
            half_life: 86_400.0,
            window: None,
        };
        let p = Popularity::fit(&config, TrainData::new(&m)).unwrap();
        let new = m.items.get("new").unwrap();
        let old = m.items.get("old").unwrap();
        let top = p.top_trending(2);
        assert_eq!(top[0], (new, 2.0));
        assert_eq!(top[1].0, old);
        assert!((top[1].1 - 3.0 / 1024.0).abs() < 1e-6);
        // A window of five days drops the old item entirely.
        let windowed = PopularityConfig {
            window: Some(5 * 86_400),
            ..config
        };
        let p = Popularity::fit(&windowed, TrainData::new(&m)).unwrap();
        assert_eq!(p.top_trending(2), vec![(new, 2.0)]);
    }

    #[test]
    fn per_category_rankings_follow_the_catalog() {
        let m = tiny();
        let cat = |c: &str| ItemMeta {
            category: Some(c.to_owned()),
            ..ItemMeta::default()
        };
        let catalog = Catalog {
            items: vec![cat("x"), cat("y"), cat("x"), cat("x"), cat("y")],
        };
        let data = TrainData {
            interactions: &m,
            catalog: Some(&catalog),
        };
        let p = Popularity::fit(&PopularityConfig::default(), data).unwrap();
        assert_eq!(
            p.top_in_category("x", 5),
            vec![(0, 2.0), (2, 2.0), (3, 2.0)]
        );
        assert_eq!(p.top_in_category("y", 1), vec![(1, 3.0)]);
        assert!(p.top_in_category("z", 1).is_empty());
        assert_eq!(p.similar_items(4, 5), vec![(1, 3.0)]);
    }

    #[test]
    fn recommending_reads_the_ranking_exactly_as_scoring_would() {
        let mut b = InteractionsBuilder::new();
        // Ties in count and in decayed count, an item nobody touched lately, 40 items.
        for i in 0..40u32 {
            for u in 0..(i % 7) {
                b.push(
                    &format!("u{u}"),
                    &format!("i{i}"),
                    1.0,
                    i64::from(i % 5) * 86_400,
                );
            }
        }
        let m = b.build(Merge::Binary);
        let configs = [
            PopularityConfig::default(),
            PopularityConfig {
                window: Some(2 * 86_400),
                ..PopularityConfig::trending_default()
            },
        ];
        for config in configs {
            let p = Popularity::fit(&config, TrainData::new(&m)).unwrap();
            for k in [0, 1, 5, 17, 40, 100] {
                for exclude in [&[][..], &[0], &[3, 1, 39, 12, 12], &[7, 8, 9, 10, 11, 12]] {
                    let scored = crate::algo::topk::with_dense_scores(p.n_items(), |scores| {
                        p.score_all(&Query::anonymous(&[]), scores);
                        for &i in exclude {
                            if let Some(s) = scores.get_mut(i as usize) {
                                *s = f32::NEG_INFINITY;
                            }
                        }
                        top_k_dense(scores, k)
                    });
                    assert_eq!(
                        p.recommend(&Query::anonymous(&[]), k, exclude),
                        scored,
                        "trending {}, k {k}, excluding {exclude:?}",
                        config.trending
                    );
                }
            }
        }
    }
}
