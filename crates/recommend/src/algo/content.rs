//! Content-based recommendations: TF-IDF over item text (title, description, tags), tokenised
//! by `tailor_text::tokenize` so Chinese is segmented and English lowercased without stop
//! words.
//!
//! Item vectors use sublinear term frequency `1 + ln tf` and smoothed idf
//! `ln((1 + N) / (1 + df)) + 1` (scikit-learn's defaults), L2-normalised, so a dot product is a
//! cosine. Training keeps each item's `k` most similar items (all pairs sharing a term, through
//! the inverted index); serving sums the neighbour lists of the user's items, like item-kNN,
//! so a request costs history × `k` additions instead of a walk over the postings of every
//! term the history names (which, for a long history, covers much of the catalog).

use std::collections::HashMap;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::{
    AlgoError, Csr, IdMap, ItemIdx, Query, Recommender, Result, TrainData, ensure,
    knn::{Neighbours, all_pairs},
};

/// TF-IDF settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentConfig {
    /// Similar items kept per item.
    pub k: usize,
    /// How many times title tokens count (titles say more per word than descriptions).
    pub title_weight: u32,
    /// How many times tag tokens count.
    pub tag_weight: u32,
    /// Terms in more than this fraction of items are dropped (no discriminating power).
    pub max_df: f32,
}

impl Default for ContentConfig {
    fn default() -> Self {
        Self {
            k: 50,
            title_weight: 2,
            tag_weight: 2,
            max_df: 0.5,
        }
    }
}

/// The vocabulary with its idf, and each item's most similar items by text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentModel {
    vocabulary: IdMap,
    idf: Vec<f32>,
    n_items: usize,
    neighbours: Neighbours,
}

impl ContentModel {
    /// Builds vectors from the catalog text; needs [`TrainData::catalog`].
    pub fn fit(
        config: &ContentConfig,
        data: TrainData<'_>,
        progress: &ProgressBar,
    ) -> Result<Self> {
        ensure(config.k > 0, "k", "must be at least 1")?;
        ensure(
            config.max_df > 0.0 && config.max_df <= 1.0,
            "max_df",
            "must be within (0, 1]",
        )?;
        let catalog = data.catalog.ok_or(AlgoError::MissingData(
            "content_tfidf needs item text (a catalog)",
        ))?;
        let n_items = data.interactions.n_items().max(catalog.items.len());
        let mut vocabulary = IdMap::default();
        let mut docs: Vec<HashMap<u32, u32>> = Vec::with_capacity(n_items);
        for meta in &catalog.items {
            let mut tf: HashMap<u32, u32> = HashMap::new();
            let mut add = |text: &str, times: u32| {
                for token in tailor_text::tokenize(text) {
                    *tf.entry(vocabulary.intern(&token)).or_default() += times;
                }
            };
            add(&meta.title, config.title_weight);
            add(&meta.description, 1);
            for tag in &meta.tags {
                add(tag, config.tag_weight);
            }
            docs.push(tf);
        }
        docs.resize_with(n_items, HashMap::new);
        let n = n_items as f32;
        let mut df = vec![0u32; vocabulary.len()];
        for doc in &docs {
            for &t in doc.keys() {
                df[t as usize] += 1;
            }
        }
        let max_df = (config.max_df * n).max(1.0);
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| {
                if d as f32 > max_df && n_items > 1 {
                    0.0
                } else {
                    ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0
                }
            })
            .collect();
        let mut triples = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let mut row: Vec<(u32, f32)> = doc
                .iter()
                .map(|(&t, &c)| (t, (1.0 + (c as f32).ln()) * idf[t as usize]))
                .filter(|&(_, w)| w > 0.0)
                .collect();
            let norm = row.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
            for (t, w) in &mut row {
                triples.push((i as u32, *t, *w / norm));
            }
            row.clear();
        }
        let (vectors, _) = Csr::from_unique_triples(n_items, vocabulary.len(), &triples);
        let (postings, _) = vectors.transpose();
        let neighbours = all_pairs(&vectors, &postings, config.k, progress);
        Ok(Self {
            vocabulary,
            idf,
            n_items,
            neighbours,
        })
    }

    /// Number of distinct terms.
    pub fn vocabulary_len(&self) -> usize {
        self.vocabulary.len()
    }

    /// The idf of a term, if known.
    pub fn idf(&self, term: &str) -> Option<f32> {
        self.vocabulary.get(term).map(|t| self.idf[t as usize])
    }
}

impl Recommender for ContentModel {
    fn n_items(&self) -> usize {
        self.n_items
    }

    /// The history's items' text similarity to each of their neighbours, summed; items in no
    /// neighbour list get `-inf`.
    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        self.neighbours.score_all(query, out);
    }

    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        self.neighbours.recommend(self.n_items, query, k, exclude)
    }

    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        self.neighbours.of(item).take(k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{Catalog, InteractionsBuilder, ItemMeta, Merge};

    fn item(title: &str, tags: &[&str]) -> ItemMeta {
        ItemMeta {
            title: title.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..ItemMeta::default()
        }
    }

    fn model() -> ContentModel {
        let catalog = Catalog {
            items: vec![
                item("red running shoes", &["sport"]),
                item("blue running shoes", &["sport"]),
                item("red wool scarf", &["winter"]),
                item("chess board", &[]),
            ],
        };
        let m = InteractionsBuilder::new()
            .with_size(0, 4)
            .build(Merge::Binary);
        let data = TrainData {
            interactions: &m,
            catalog: Some(&catalog),
        };
        let config = ContentConfig {
            max_df: 1.0,
            ..ContentConfig::default()
        };
        ContentModel::fit(&config, data, &ProgressBar::hidden()).unwrap()
    }

    #[test]
    fn idf_is_smoothed_and_shared_words_make_neighbours() {
        let model = model();
        // "red" is in 2 of 4 items: ln(5/3) + 1.
        let idf = model.idf("red").unwrap();
        assert!((idf - ((5.0f32 / 3.0).ln() + 1.0)).abs() < 1e-6);
        // Shoes share "running", "shoes" and "sport": each other's best neighbour.
        assert_eq!(model.similar_items(0, 1)[0].0, 1);
        assert_eq!(model.similar_items(2, 1)[0].0, 0);
        assert!(model.similar_items(3, 5).is_empty());
    }

    #[test]
    fn history_items_bring_their_text_neighbours() {
        let model = model();
        let rec = model.recommend(&Query::anonymous(&[2]), 5, &[2]);
        // The scarf shares only "red" with the red shoes.
        assert_eq!(rec.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn chinese_titles_are_segmented_into_shared_words() {
        let catalog = Catalog {
            items: vec![
                item("红色运动鞋", &[]),
                item("象棋棋盘", &[]),
                item("蓝色运动鞋", &[]),
            ],
        };
        let m = InteractionsBuilder::new()
            .with_size(0, 3)
            .build(Merge::Binary);
        let data = TrainData {
            interactions: &m,
            catalog: Some(&catalog),
        };
        let config = ContentConfig {
            max_df: 1.0,
            ..ContentConfig::default()
        };
        let model = ContentModel::fit(&config, data, &ProgressBar::hidden()).unwrap();
        // Unsegmented, the two shoe titles would share no token at all.
        assert_eq!(model.similar_items(0, 2).first().map(|x| x.0), Some(2));
        assert!(model.similar_items(1, 2).is_empty());
    }

    #[test]
    fn fitting_without_a_catalog_is_an_error() {
        let m = InteractionsBuilder::new().build(Merge::Binary);
        let err = ContentModel::fit(
            &ContentConfig::default(),
            TrainData::new(&m),
            &ProgressBar::hidden(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("catalog"));
    }
}
