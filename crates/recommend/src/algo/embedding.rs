//! Image-embedding similarity: items whose pictures look alike.
//!
//! Vectors are L2-normalised so similarity is the cosine. Small catalogs are searched by brute
//! force (exact, and for a few thousand items faster than any index); from `ann_threshold`
//! items on, an HNSW graph (`instant-distance`) answers approximately in logarithmic time.

use indicatif::ProgressBar;
use instant_distance::{Builder, HnswMap, Search};
use serde::{Deserialize, Serialize};

use super::{
    AlgoError, ItemIdx, Query, Recommender, Result, TrainData, ensure, kernels::score_rows,
    topk::TopK,
};

/// Embedding-index settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingConfig {
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
            ann_threshold: 20_000,
            ef_construction: 100,
            ef_search: 100,
            seed: 42,
        }
    }
}

/// A normalised embedding as an HNSW point.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Normalised item embeddings and, for large catalogs, their HNSW index.
#[derive(Serialize, Deserialize)]
pub struct EmbeddingModel {
    dim: usize,
    /// Row-major, zero rows for items without an embedding.
    vectors: Vec<f32>,
    present: Vec<bool>,
    index: Option<HnswMap<Unit, ItemIdx>>,
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("dim", &self.dim)
            .field("items", &self.present.len())
            .field("ann", &self.index.is_some())
            .finish()
    }
}

impl Clone for EmbeddingModel {
    fn clone(&self) -> Self {
        // HnswMap is not Clone; a clone rebuilds nothing and searches by brute force.
        Self {
            dim: self.dim,
            vectors: self.vectors.clone(),
            present: self.present.clone(),
            index: None,
        }
    }
}

impl EmbeddingModel {
    /// Normalises the catalog's embeddings and indexes them when there are many.
    pub fn fit(
        config: &EmbeddingConfig,
        data: TrainData<'_>,
        progress: &ProgressBar,
    ) -> Result<Self> {
        ensure(config.ef_search > 0, "ef_search", "must be at least 1")?;
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
        let index = (embedded.len() >= config.ann_threshold).then(|| {
            let points = embedded
                .iter()
                .map(|&i| Unit(vectors[i as usize * dim..(i as usize + 1) * dim].to_vec()))
                .collect();
            progress.set_length(embedded.len() as u64);
            Builder::default()
                .ef_construction(config.ef_construction)
                .ef_search(config.ef_search)
                .seed(config.seed)
                .build(points, embedded.clone())
        });
        Ok(Self {
            dim,
            vectors,
            present,
            index,
        })
    }

    /// Whether searches go through the HNSW index.
    pub fn is_approximate(&self) -> bool {
        self.index.is_some()
    }

    /// Items nearest to a (not necessarily normalised) vector, best first, skipping `skip`.
    pub fn nearest(&self, vector: &[f32], k: usize, skip: Option<ItemIdx>) -> Vec<(ItemIdx, f32)> {
        if vector.len() != self.dim {
            return Vec::new();
        }
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 {
            return Vec::new();
        }
        let unit: Vec<f32> = vector.iter().map(|v| v / norm).collect();
        let mut top = TopK::new(k);
        match &self.index {
            Some(index) => {
                let mut search = Search::default();
                for hit in index.search(&Unit(unit), &mut search) {
                    if Some(*hit.value) != skip {
                        top.push(*hit.value, 1.0 - hit.distance);
                    }
                }
            }
            None => {
                let mut scores = vec![0.0; self.present.len()];
                score_rows(&self.vectors, &unit, &mut scores);
                for (i, (&s, &p)) in scores.iter().zip(&self.present).enumerate() {
                    if p && Some(i as ItemIdx) != skip {
                        top.push(i as ItemIdx, s);
                    }
                }
            }
        }
        top.into_sorted()
    }

    /// Cosine between two items' embeddings, when both have one.
    pub fn similarity(&self, a: ItemIdx, b: ItemIdx) -> Option<f32> {
        let row = |i: ItemIdx| {
            self.present
                .get(i as usize)
                .copied()
                .unwrap_or(false)
                .then(|| &self.vectors[i as usize * self.dim..(i as usize + 1) * self.dim])
        };
        Some(dot(row(a)?, row(b)?))
    }

    fn profile(&self, query: &Query<'_>) -> Vec<f32> {
        let mut p = vec![0f32; self.dim];
        for (i, w) in query.weighted_history() {
            if self.present.get(i as usize).copied().unwrap_or(false) {
                let v = &self.vectors[i as usize * self.dim..(i as usize + 1) * self.dim];
                p.iter_mut().zip(v).for_each(|(a, b)| *a += w * b);
            }
        }
        p
    }
}

impl Recommender for EmbeddingModel {
    fn n_items(&self) -> usize {
        self.present.len()
    }

    /// Cosine to the weighted mean of the history's embeddings: every item by brute force, or the
    /// index's candidates (others `-inf`) when approximate.
    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
        let profile = self.profile(query);
        if self.index.is_some() {
            for (i, s) in self.nearest(&profile, out.len(), None) {
                out[i as usize] = s;
            }
        } else if profile.iter().any(|&v| v != 0.0) {
            score_rows(&self.vectors, &profile, out);
            for (s, &p) in out.iter_mut().zip(&self.present) {
                if !p {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
    }

    /// The nearest items only, rather than scoring the whole catalog (through the index, the
    /// same list as ranking `score_all`'s candidates).
    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        let profile = self.profile(query);
        let mut list = self.nearest(&profile, k + exclude.len(), None);
        list.retain(|(i, _)| !exclude.contains(i));
        list.truncate(k);
        list
    }

    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        if !self.present.get(item as usize).copied().unwrap_or(false) {
            return Vec::new();
        }
        let v = self.vectors[item as usize * self.dim..(item as usize + 1) * self.dim].to_vec();
        self.nearest(&v, k, Some(item))
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
