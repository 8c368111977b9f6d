//! Sequence-aware next-item model: item-to-item transitions from each user's time-ordered
//! history (a first-order Markov chain with a short skip window).
//!
//! Fit counts, for every item `a` in a user's sequence, the items that follow it within
//! `window` steps, the `d`-th follower weighted `step_decay^(d-1)`; each row is normalised to
//! a distribution `P(next | a)`. Serving sums those distributions over the user's last
//! `history` items, the most recent weighted 1 and each older one `recency_decay` times
//! less. It answers "what comes next" — strong when tastes move (the `time` split), where
//! order-free models only know "what goes together".

use serde::{Deserialize, Serialize};

use super::{
    Interactions, ItemIdx, Query, Recommender, Result, ensure,
    knn::Neighbours,
    topk::{TopK, add_dense, sparse_top_k},
};

/// Transition-model settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceConfig {
    /// How many following items count as a transition.
    pub window: usize,
    /// Weight of the d-th follower relative to the (d-1)-th.
    pub step_decay: f32,
    /// How many of the user's latest items drive a recommendation.
    pub history: usize,
    /// Weight of each older history item relative to the next newer one.
    pub recency_decay: f32,
    /// Successors kept per item.
    pub max_successors: usize,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        Self {
            window: 3,
            step_decay: 0.5,
            history: 5,
            recency_decay: 0.7,
            max_successors: 200,
        }
    }
}

/// Normalised transition lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transitions {
    n_items: usize,
    history: usize,
    recency_decay: f32,
    successors: Neighbours,
}

impl Transitions {
    /// Counts transitions in every user's time-ordered sequence.
    pub fn fit(config: &SequenceConfig, data: &Interactions) -> Result<Self> {
        ensure(config.window > 0, "window", "must be at least 1")?;
        ensure(config.history > 0, "history", "must be at least 1")?;
        ensure(
            config.step_decay > 0.0 && config.recency_decay > 0.0,
            "decay",
            "must be positive",
        )?;
        let n_items = data.n_items();
        let mut triples: Vec<(u32, u32, f32)> = Vec::new();
        for u in 0..data.n_users() as u32 {
            let seq = data.user_sequence(u);
            for (p, &a) in seq.iter().enumerate() {
                let mut w = 1.0;
                for &b in seq.iter().skip(p + 1).take(config.window) {
                    if b != a {
                        triples.push((a, b, w));
                    }
                    w *= config.step_decay;
                }
            }
        }
        triples.sort_unstable_by_key(|&(a, b, _)| (a, b));
        let mut lists: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
        let mut k = 0;
        while k < triples.len() {
            let (a, b, _) = triples[k];
            let mut sum = 0.0;
            while k < triples.len() && triples[k].0 == a && triples[k].1 == b {
                sum += triples[k].2;
                k += 1;
            }
            lists[a as usize].push((b, sum));
        }
        for list in &mut lists {
            let total: f32 = list.iter().map(|x| x.1).sum();
            let mut top = TopK::new(config.max_successors);
            for &(b, c) in list.iter() {
                top.push(b, c / total);
            }
            *list = top.into_sorted();
        }
        Ok(Self {
            n_items,
            history: config.history,
            recency_decay: config.recency_decay,
            successors: Neighbours::from_lists(lists),
        })
    }

    /// `P(next | item)`, most likely first.
    pub fn successors(&self, item: ItemIdx) -> impl Iterator<Item = (ItemIdx, f32)> + '_ {
        self.successors.of(item)
    }
}

impl Transitions {
    /// Successors of the latest history items, discounted by how far back each item is.
    fn accumulate(&self, query: &Query<'_>, mut add: impl FnMut(ItemIdx, f32)) {
        let mut recency = 1.0;
        for (a, weight) in query.weighted_history().rev().take(self.history) {
            let w = recency * weight;
            for (b, p) in self.successors.of(a) {
                add(b, w * p);
            }
            recency *= self.recency_decay;
        }
    }
}

impl Recommender for Transitions {
    fn n_items(&self) -> usize {
        self.n_items
    }

    /// Reads `query.history` oldest first, so its tail is the user's latest items.
    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
        self.accumulate(query, |j, v| add_dense(out, j, v));
    }

    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        sparse_top_k(self.n_items, k, exclude, |acc| {
            self.accumulate(query, |j, v| acc.add(j, v));
        })
    }

    /// The likeliest next items after `item`.
    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        self.successors(item).take(k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{InteractionsBuilder, Merge};

    #[test]
    fn transitions_follow_time_order_with_step_decay() {
        // Sequences a→b→c and a→c (times set the order, not insertion).
        let mut b = InteractionsBuilder::new();
        b.push("u1", "c", 1.0, 3);
        b.push("u1", "a", 1.0, 1);
        b.push("u1", "b", 1.0, 2);
        b.push("u2", "a", 1.0, 1);
        b.push("u2", "c", 1.0, 2);
        let m = b.build(Merge::Binary);
        let (a, bb, c) = (
            m.items.get("a").unwrap(),
            m.items.get("b").unwrap(),
            m.items.get("c").unwrap(),
        );
        let config = SequenceConfig {
            window: 2,
            step_decay: 0.5,
            ..SequenceConfig::default()
        };
        let model = Transitions::fit(&config, &m).unwrap();
        // From a: b weight 1 (u1), c weight 0.5 (u1, second step) + 1 (u2) = 1.5 -> 0.6 / 0.4.
        let next: Vec<_> = model.successors(a).collect();
        assert_eq!(next, vec![(c, 0.6), (bb, 0.4)]);
        assert_eq!(model.successors(bb).collect::<Vec<_>>(), vec![(c, 1.0)]);
        assert_eq!(model.successors(c).count(), 0);
    }

    #[test]
    fn recent_items_weigh_more() {
        let mut b = InteractionsBuilder::new();
        // x→p and y→q, each seen once.
        b.push("u1", "x", 1.0, 1);
        b.push("u1", "p", 1.0, 2);
        b.push("u2", "y", 1.0, 1);
        b.push("u2", "q", 1.0, 2);
        let m = b.build(Merge::Binary);
        let id = |s: &str| m.items.get(s).unwrap();
        let model = Transitions::fit(&SequenceConfig::default(), &m).unwrap();
        // History x then y: y is the latest, so q (1.0) beats p (0.7).
        let rec = model.recommend(&Query::anonymous(&[id("x"), id("y")]), 2, &[]);
        assert_eq!(rec[0], (id("q"), 1.0));
        assert_eq!(rec[1].0, id("p"));
        assert!((rec[1].1 - 0.7).abs() < 1e-6);
    }
}
