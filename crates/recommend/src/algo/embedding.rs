//! Image-embedding similarity: items whose pictures look alike.
//!
//! Vectors are L2-normalised so similarity is the cosine. Training finds each item's `k`
//! nearest items: by brute force in small catalogs (exact, and for a few thousand items faster
//! than any index), through an HNSW graph (`instant-distance`, approximate, logarithmic per
//! search) from `ann_threshold` items on. Serving sums the neighbour lists of the user's items,
//! like item-kNN: history × `k` additions per request, no vector search on the request path.

use indicatif::ProgressBar;
use instant_distance::{Builder, HnswMap, Search};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    AlgoError, ItemIdx, Query, Recommender, Result, TrainData, ensure, kernels::score_rows,
    knn::Neighbours, topk::TopK,
};

/// Embedding-neighbour settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingConfig {
    /// Nearest items kept per item.
    pub k: usize,
    /// Catalogs with at least this many embedded items get an HNSW index.
    pub ann_threshold: usize,
    /// HNSW build breadth (higher: better graph, slower build).
    pub ef_construction: usize,
    /// HNSW search breadth; also caps how many neighbours one search returns.
    pub ef_search: usize,
    /// Seed of the HNSW layer assignment, for reproducible indexes.
    pub seed: u64,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            k: 50,
            ann_threshold: 20_000,
            ef_construction: 100,
            ef_search: 100,
            seed: 42,
        }
    }
}

/// A normalised embedding as an HNSW point.
#[derive(Debug, Clone)]
struct Unit(Vec<f32>);

impl instant_distance::Point for Unit {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

/// `a · b` with eight independent sums, which the compiler turns into vector instructions
/// (one running sum must add in order and stays scalar): the index search's inner loop.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Each item's nearest items by image embedding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingModel {
    n_items: usize,
    approximate: bool,
    neighbours: Neighbours,
}

/// The normalised embeddings training searches, with their index when the catalog is large.
struct Space {
    dim: usize,
    /// Row-major, zero rows for items without an embedding.
    vectors: Vec<f32>,
    present: Vec<bool>,
    index: Option<HnswMap<Unit, ItemIdx>>,
}

impl Space {
    fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// The `k` items nearest to item `i` (itself left out), best first; `scores` is scratch
    /// for the brute-force search.
    fn nearest(&self, i: usize, k: usize, scores: &mut Vec<f32>) -> Vec<(ItemIdx, f32)> {
        let mut top = TopK::new(k);
        match &self.index {
            Some(index) => {
                let mut search = Search::default();
                for hit in index.search(&Unit(self.row(i).to_vec()), &mut search) {
                    if *hit.value as usize != i {
                        top.push(*hit.value, 1.0 - hit.distance);
                    }
                }
            }
            None => {
                scores.resize(self.present.len(), 0.0);
                score_rows(&self.vectors, self.row(i), scores);
                for (j, (&s, &p)) in scores.iter().zip(&self.present).enumerate() {
                    if p && j != i {
                        top.push(j as ItemIdx, s);
                    }
                }
            }
        }
        top.into_sorted()
    }
}

impl EmbeddingModel {
    /// Normalises the catalog's embeddings and finds every embedded item's nearest items.
    pub fn fit(
        config: &EmbeddingConfig,
        data: TrainData<'_>,
        progress: &ProgressBar,
    ) -> Result<Self> {
        ensure(config.k > 0, "k", "must be at least 1")?;
        ensure(
            config.ef_search >= config.k,
            "ef_search",
            "must be at least k (a search returns at most ef_search items)",
        )?;
        let catalog = data.catalog.ok_or(AlgoError::MissingData(
            "embedding needs item embeddings (a catalog)",
        ))?;
        let n_items = data.interactions.n_items().max(catalog.items.len());
        let dim = catalog
            .items
            .iter()
            .find_map(|m| m.embedding.as_ref().map(Vec::len))
            .ok_or(AlgoError::MissingData("no item has an embedding"))?;
        let mut vectors = vec![0f32; n_items * dim];
        let mut present = vec![false; n_items];
        for (i, meta) in catalog.items.iter().enumerate() {
            let Some(e) = &meta.embedding else { continue };
            ensure(
                e.len() == dim,
                "embedding",
                format!("item {i} has {} dimensions, expected {dim}", e.len()),
            )?;
            let norm = e.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                for (dst, v) in vectors[i * dim..(i + 1) * dim].iter_mut().zip(e) {
                    *dst = v / norm;
                }
                present[i] = true;
            }
        }
        let embedded: Vec<ItemIdx> = (0..n_items as u32)
            .filter(|&i| present[i as usize])
            .collect();
        let mut space = Space {
            dim,
            vectors,
            present,
            index: None,
        };
        if embedded.len() >= config.ann_threshold {
            progress.set_message("embedding index");
            let points = embedded
                .iter()
                .map(|&i| Unit(space.row(i as usize).to_vec()))
                .collect();
            space.index = Some(
                Builder::default()
                    .ef_construction(config.ef_construction)
                    .ef_search(config.ef_search)
                    .seed(config.seed)
                    .build(points, embedded),
            );
        }
        progress.set_message("embedding neighbours");
        progress.set_length(n_items as u64);
        progress.set_position(0);
        let lists: Vec<Vec<(ItemIdx, f32)>> = (0..n_items)
            .into_par_iter()
            .map_init(Vec::new, |scores, i| {
                progress.inc(1);
                if space.present[i] {
                    space.nearest(i, config.k, scores)
                } else {
                    Vec::new()
                }
            })
            .collect();
        Ok(Self {
            n_items,
            approximate: space.index.is_some(),
            neighbours: Neighbours::from_lists(lists),
        })
    }

    /// Whether the neighbours were found through the HNSW index (approximate).
    pub fn is_approximate(&self) -> bool {
        self.approximate
    }
}

impl Recommender for EmbeddingModel {
    fn n_items(&self) -> usize {
        self.n_items
    }

    /// The history's items' cosine to each of their nearest items, summed; items in no
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

    fn fit(threshold: usize, vectors: Vec<Option<Vec<f32>>>) -> EmbeddingModel {
        let catalog = Catalog {
            items: vectors
                .into_iter()
                .map(|embedding| ItemMeta {
                    embedding,
                    ..ItemMeta::default()
                })
                .collect(),
        };
        let m = InteractionsBuilder::new().build(Merge::Binary);
        let data = TrainData {
            interactions: &m,
            catalog: Some(&catalog),
        };
        let config = EmbeddingConfig {
            ann_threshold: threshold,
            ..EmbeddingConfig::default()
        };
        EmbeddingModel::fit(&config, data, &ProgressBar::hidden()).unwrap()
    }

    #[test]
    fn brute_force_ranks_by_cosine() {
        let model = fit(
            100,
            vec![
                Some(vec![1.0, 0.0]),
                Some(vec![2.0, 2.0]),
                Some(vec![0.0, 3.0]),
                None,
            ],
        );
        assert!(!model.is_approximate());
        let sim = model.similar_items(0, 5);
        assert_eq!(sim.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((sim[0].1 - 0.5f32.sqrt()).abs() < 1e-6 && sim[1].1.abs() < 1e-6);
        assert!(model.similar_items(3, 5).is_empty());
        let rec = model.recommend(&Query::anonymous(&[0, 2]), 5, &[0, 2]);
        assert_eq!(rec.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn the_hnsw_index_agrees_with_brute_force_on_a_clear_case() {
        // 300 points on a circle: the neighbours of one are the points next to it.
        let points: Vec<Option<Vec<f32>>> = (0..300)
            .map(|k| {
                let a = k as f32 / 300.0 * std::f32::consts::TAU;
                Some(vec![a.cos(), a.sin()])
            })
            .collect();
        let exact = fit(10_000, points.clone());
        let approx = fit(10, points);
        assert!(approx.is_approximate());
        let mut e: Vec<_> = exact.similar_items(7, 4).iter().map(|x| x.0).collect();
        let mut a: Vec<_> = approx.similar_items(7, 4).iter().map(|x| x.0).collect();
        e.sort_unstable();
        a.sort_unstable();
        assert_eq!(e, vec![5, 6, 8, 9]);
        assert_eq!(a, e);
    }
}
