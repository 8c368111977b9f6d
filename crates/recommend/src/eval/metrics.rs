//! Ranking metrics, exactly as `recsys_baseline.py` computes them.
//!
//! Recall@K = |top-K ∩ T| / |T|; NDCG@K with binary relevance, DCG summing `1 / log2(r + 1)`
//! over hits at 1-based rank r, ideal DCG over `min(|T|, K)` ranks; both averaged over every
//! test user. Coverage@10 is the number of distinct items in all users' top-10 lists over the
//! number of items in the dataset.

use std::collections::{BTreeMap, HashSet};

use crate::algo::ItemIdx;

/// Averages over the test users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Recall@K per K.
    pub recall: BTreeMap<usize, f64>,
    /// NDCG@K per K.
    pub ndcg: BTreeMap<usize, f64>,
    /// Catalog coverage of the top-10 lists.
    pub coverage_at_10: f64,
}

/// Recall of one ranked list at `k`.
pub fn recall_at(ranked: &[ItemIdx], truth: &[ItemIdx], k: usize) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let hits = ranked.iter().take(k).filter(|i| truth.contains(i)).count();
    hits as f64 / truth.len() as f64
}

/// NDCG of one ranked list at `k` (binary relevance).
pub fn ndcg_at(ranked: &[ItemIdx], truth: &[ItemIdx], k: usize) -> f64 {
    if truth.is_empty() || k == 0 {
        return 0.0;
    }
    let gain = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| truth.contains(i))
        .map(|(r, _)| gain(r))
        .sum();
    let idcg: f64 = (0..truth.len().min(k)).map(gain).sum();
    dcg / idcg
}

/// Metrics over all test users: `ranked[u]` is the model's list for the user whose held-out
/// items are `truth[u]`.
pub fn evaluate(
    ranked: &[Vec<ItemIdx>],
    truth: &[&[ItemIdx]],
    n_items: usize,
    ks: &[usize],
) -> Metrics {
    let n = ranked.len().max(1) as f64;
    let mut m = Metrics::default();
    for &k in ks {
        let r: f64 = ranked
            .iter()
            .zip(truth)
            .map(|(l, t)| recall_at(l, t, k))
            .sum();
        let g: f64 = ranked
            .iter()
            .zip(truth)
            .map(|(l, t)| ndcg_at(l, t, k))
            .sum();
        m.recall.insert(k, r / n);
        m.ndcg.insert(k, g / n);
    }
    let covered: HashSet<ItemIdx> = ranked
        .iter()
        .flat_map(|l| l.iter().take(10))
        .copied()
        .collect();
    m.coverage_at_10 = covered.len() as f64 / n_items.max(1) as f64;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_recall_and_ndcg() {
        // Hits at ranks 1 and 3 of 3 relevant items.
        let ranked = [5, 9, 7, 1];
        let truth = [5, 7, 2];
        assert!(close(recall_at(&ranked, &truth, 2), 1.0 / 3.0));
        assert!(close(recall_at(&ranked, &truth, 4), 2.0 / 3.0));
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(ndcg_at(&ranked, &truth, 4), dcg / idcg));
        // At K = 1 the ideal DCG has one term: a hit at rank 1 is perfect.
        assert!(close(ndcg_at(&ranked, &truth, 1), 1.0));
        // A single relevant item at rank 2.
        assert!(close(ndcg_at(&[3, 4], &[4], 10), 1.0 / 3f64.log2()));
    }

    #[test]
    fn averages_and_coverage() {
        let ranked = vec![vec![0, 1], vec![1, 2]];
        let truth: Vec<&[ItemIdx]> = vec![&[0], &[3]];
        let m = evaluate(&ranked, &truth, 8, &[1, 10]);
        assert!(close(m.recall[&1], 0.5));
        assert!(close(m.ndcg[&10], 0.5));
        assert!(close(m.coverage_at_10, 3.0 / 8.0));
    }
}
