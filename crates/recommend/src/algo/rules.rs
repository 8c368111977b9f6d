//! Association rules for "frequently bought together": pairwise rules `a → b` over baskets,
//! with support `P(a ∧ b)`, confidence `P(b | a)` and lift `P(b | a) / P(b)`.
//!
//! Only single-item antecedents are mined, which is what a product page or cart needs ("with
//! this, people also bought") and keeps mining to one co-occurrence pass instead of Apriori's
//! itemset lattice. Baskets larger than `max_basket` are skipped: a bulk buyer's thousand
//! items say little about any pair and cost a million pair updates.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Interactions, InteractionsBuilder, ItemIdx, Merge, Query, Recommender, Result, ensure,
    topk::{TopK, add_dense, sparse_top_k},
};

/// Mining thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesConfig {
    /// Minimum fraction of baskets containing both items.
    pub min_support: f64,
    /// Minimum `P(b | a)`.
    pub min_confidence: f32,
    /// Rules kept per antecedent, by confidence.
    pub max_rules: usize,
    /// Baskets with more items are ignored.
    pub max_basket: usize,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            min_support: 0.0001,
            min_confidence: 0.01,
            max_rules: 100,
            max_basket: 500,
        }
    }
}

/// One rule `antecedent → consequent`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The item recommended when the antecedent is present.
    pub consequent: ItemIdx,
    /// Fraction of baskets with both items.
    pub support: f32,
    /// `P(consequent | antecedent)`.
    pub confidence: f32,
    /// Confidence over the consequent's base rate; above 1 means a real association.
    pub lift: f32,
}

/// Mined rules, grouped by antecedent, by confidence (best first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssociationRules {
    n_baskets: usize,
    indptr: Vec<usize>,
    rules: Vec<Rule>,
}

impl AssociationRules {
    /// Mines rules with every user's items as one basket.
    pub fn fit(config: &RulesConfig, data: &Interactions) -> Result<Self> {
        ensure(
            (0.0..=1.0).contains(&config.min_support),
            "min_support",
            "must be within [0, 1]",
        )?;
        ensure(
            (0.0..=1.0).contains(&config.min_confidence),
            "min_confidence",
            "must be within [0, 1]",
        )?;
        let baskets = data.user_items();
        let items = data.item_users();
        let n_items = data.n_items();
        let keep: Vec<bool> = (0..baskets.n_rows() as u32)
            .map(|b| baskets.row_len(b) <= config.max_basket)
            .collect();
        let n_baskets = keep.iter().filter(|&&k| k).count();
        let count: Vec<u32> = (0..n_items as u32)
            .map(|i| {
                items
                    .row_indices(i)
                    .iter()
                    .filter(|&&b| keep[b as usize])
                    .count() as u32
            })
            .collect();
        let n = n_baskets.max(1) as f32;
        let lists: Vec<Vec<Rule>> = (0..n_items as u32)
            .into_par_iter()
            .map_init(
                || (vec![0u32; n_items], Vec::<u32>::new()),
                |(acc, touched), a| {
                    for &b in items.row_indices(a) {
                        if !keep[b as usize] {
                            continue;
                        }
                        for &c in baskets.row_indices(b) {
                            if acc[c as usize] == 0 {
                                touched.push(c);
                            }
                            acc[c as usize] += 1;
                        }
                    }
                    let mut top = TopK::new(config.max_rules);
                    let mut found = Vec::new();
                    for &c in touched.iter() {
                        let both = std::mem::take(&mut acc[c as usize]);
                        if c == a {
                            continue;
                        }
                        let support = both as f32 / n;
                        let confidence = both as f32 / count[a as usize] as f32;
                        if f64::from(support) >= config.min_support
                            && confidence >= config.min_confidence
                        {
                            let lift = confidence / (count[c as usize] as f32 / n);
                            top.push(found.len() as u32, confidence);
                            found.push(Rule {
                                consequent: c,
                                support,
                                confidence,
                                lift,
                            });
                        }
                    }
                    touched.clear();
                    top.into_sorted()
                        .into_iter()
                        .map(|(k, _)| found[k as usize])
                        .collect()
                },
            )
            .collect();
        let mut indptr = vec![0];
        let mut rules = Vec::new();
        for list in lists {
            rules.extend(list);
            indptr.push(rules.len());
        }
        Ok(Self {
            n_baskets,
            indptr,
            rules,
        })
    }

    /// Mines rules from explicit baskets (e.g. orders) over items `0..n_items`.
    pub fn fit_baskets(
        config: &RulesConfig,
        baskets: &[Vec<ItemIdx>],
        n_items: usize,
    ) -> Result<Self> {
        let mut b = InteractionsBuilder::new().with_size(baskets.len(), n_items);
        for (basket, items) in baskets.iter().enumerate() {
            for &i in items.iter().filter(|&&i| (i as usize) < n_items) {
                b.push_idx(basket as u32, i, 1.0, 0);
            }
        }
        Self::fit(config, &b.build(Merge::Binary))
    }

    /// Rules whose antecedent is `item`, best confidence first.
    pub fn rules_for(&self, item: ItemIdx) -> &[Rule] {
        let i = item as usize;
        if i + 1 < self.indptr.len() {
            &self.rules[self.indptr[i]..self.indptr[i + 1]]
        } else {
            &[]
        }
    }

    /// Number of baskets mined.
    pub fn n_baskets(&self) -> usize {
        self.n_baskets
    }
}

impl AssociationRules {
    /// The confidence of every rule the history fires, times the antecedent's weight.
    fn accumulate(&self, query: &Query<'_>, mut add: impl FnMut(ItemIdx, f32)) {
        for (a, w) in query.weighted_history() {
            for r in self.rules_for(a) {
                add(r.consequent, w * r.confidence);
            }
        }
    }
}

impl Recommender for AssociationRules {
    fn n_items(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Sums the confidence of every rule fired by the history (times the item's weight).
    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
        self.accumulate(query, |j, v| add_dense(out, j, v));
    }

    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        sparse_top_k(self.n_items(), k, exclude, |acc| {
            self.accumulate(query, |j, v| acc.add(j, v));
        })
    }

    /// "Frequently bought together" with `item`, by confidence.
    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        self.rules_for(item)
            .iter()
            .take(k)
            .map(|r| (r.consequent, r.confidence))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::fixtures::tiny;

    #[test]
    fn support_confidence_and_lift_match_hand_counts() {
        // 4 baskets; i1 is in 3 of them, i2 in 2 (both with i1).
        let m = tiny();
        let config = RulesConfig {
            min_support: 0.0,
            min_confidence: 0.0,
            ..RulesConfig::default()
        };
        let rules = AssociationRules::fit(&config, &m).unwrap();
        let r = rules.rules_for(2);
        // i2 -> i1: both in 2 baskets; P(i1|i2) = 1; lift = 1 / (3/4).
        assert_eq!(r[0].consequent, 1);
        assert_eq!((r[0].support, r[0].confidence), (0.5, 1.0));
        assert!((r[0].lift - 4.0 / 3.0).abs() < 1e-6);
        // i1 -> i0 and i1 -> i2: 2 of 3 baskets; lower ids first on ties.
        let r = rules.rules_for(1);
        assert_eq!(
            r.iter().map(|x| x.consequent).collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
        assert!((r[0].confidence - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn thresholds_prune_weak_rules() {
        let m = tiny();
        let config = RulesConfig {
            min_support: 0.3,
            min_confidence: 0.6,
            ..RulesConfig::default()
        };
        let rules = AssociationRules::fit(&config, &m).unwrap();
        // i1 -> i3 has support 1/4 and confidence 1/3: gone.
        assert_eq!(
            rules
                .similar_items(1, 10)
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
            vec![0, 2]
        );
        // i4 -> i3: support 1/4 < 0.3.
        assert!(rules.rules_for(4).is_empty());
    }

    #[test]
    fn explicit_baskets_and_recommendations() {
        let baskets = vec![vec![0, 1], vec![0, 1], vec![0, 2], vec![3]];
        let config = RulesConfig {
            min_support: 0.0,
            min_confidence: 0.0,
            ..RulesConfig::default()
        };
        let rules = AssociationRules::fit_baskets(&config, &baskets, 5).unwrap();
        assert_eq!(rules.n_baskets(), 4);
        assert_eq!(rules.n_items(), 5);
        // Cart {i0}: i1 (confidence 2/3) before i2 (1/3); nothing else fires.
        let rec = rules.recommend(&Query::anonymous(&[0]), 5, &[0]);
        assert_eq!(rec.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
    }
}
