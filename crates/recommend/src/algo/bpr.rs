//! Bayesian personalised ranking (Rendle et al., 2009): SGD on sampled (user, liked item,
//! unliked item) triples so that liked items score higher, with an item bias as in `implicit`.
//!
//! Parallelism without `unsafe`: `implicit` runs hogwild SGD through raw pointers, which safe
//! Rust forbids. We use the stratified scheme of DSGD (Gemulla et al., 2011) instead: users
//! and items are shuffled into `P` blocks each; an epoch runs `P` sub-epochs, and in
//! sub-epoch `s` the `P` blocks `(p, (p + s) mod P)` run in parallel. Those blocks share no
//! user and no item, so each task owns `&mut` slices of both factor tables; negatives are
//! drawn from the task's item block. Each block has its own seeded RNG, so a fit is
//! reproducible for a given `P`.

use indicatif::ProgressBar;
use pulp::{Simd, WithSimd};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Interactions, ItemIdx, Query, Recommender, Result, UserIdx, ensure,
    kernels::{dot, score_rows, top_k_batch},
    topk::TopK,
};

/// BPR hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BprConfig {
    /// Latent dimensions (plus one item-bias column).
    pub factors: usize,
    /// Epochs; each draws as many triples as there are positive pairs.
    pub iterations: usize,
    /// SGD step size.
    pub learning_rate: f32,
    /// L2 penalty.
    pub regularization: f32,
    /// RNG seed.
    pub seed: u64,
    /// Parallel blocks `P` (0: one per rayon thread).
    pub blocks: usize,
}

impl Default for BprConfig {
    fn default() -> Self {
        Self {
            factors: 64,
            iterations: 100,
            // Tuning picked 0.05 over the baseline's 0.01 on every evaluation dataset.
            learning_rate: 0.05,
            regularization: 0.01,
            seed: 42,
            blocks: 0,
        }
    }
}

/// A fitted BPR model. Rows have `factors + 1` columns: the users' last column is fixed at 1
/// and the items' last column is their bias.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bpr {
    factors: usize,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    item_norms: Vec<f32>,
}

impl Bpr {
    /// A trained user's factor vector (with its bias term).
    pub fn user_factor(&self, user: UserIdx) -> Option<&[f32]> {
        let w = self.factors + 1;
        let start = user as usize * w;
        self.user_factors.get(start..start + w)
    }

    /// Fits by blocked parallel SGD; advances `progress` once per epoch.
    pub fn fit(config: &BprConfig, data: &Interactions, progress: &ProgressBar) -> Result<Self> {
        ensure(config.factors > 0, "factors", "must be at least 1")?;
        ensure(
            config.learning_rate > 0.0,
            "learning_rate",
            "must be positive",
        )?;
        let n_users = data.n_users();
        let n_items = data.n_items();
        let w = config.factors + 1;
        let blocks = match config.blocks {
            0 => rayon::current_num_threads(),
            b => b,
        }
        .clamp(1, n_items.max(1));
        let mut rng = StdRng::seed_from_u64(config.seed);

        // Shuffled positions: block p holds positions [bounds[p], bounds[p+1]).
        let mut user_perm: Vec<u32> = (0..n_users as u32).collect();
        let mut item_perm: Vec<u32> = (0..n_items as u32).collect();
        user_perm.shuffle(&mut rng);
        item_perm.shuffle(&mut rng);
        let mut item_pos = vec![0u32; n_items];
        for (pos, &i) in item_perm.iter().enumerate() {
            item_pos[i as usize] = pos as u32;
        }
        let user_bounds = bounds(n_users, blocks);
        let item_bounds = bounds(n_items, blocks);
        let item_block = |pos: u32| item_bounds.partition_point(|&b| b <= pos as usize) - 1;

        // Positives per (user block, item block), in local coordinates, and each user's liked
        // set (sorted item positions) to reject false negatives.
        let mut pairs: Vec<Vec<Vec<(u32, u32)>>> = vec![vec![Vec::new(); blocks]; blocks];
        let mut liked: Vec<Vec<u32>> = vec![Vec::new(); n_users];
        for (pos, &u) in user_perm.iter().enumerate() {
            let ub = user_bounds.partition_point(|&b| b <= pos) - 1;
            let mut set: Vec<u32> = data
                .user_items()
                .row_indices(u)
                .iter()
                .map(|&i| item_pos[i as usize])
                .collect();
            set.sort_unstable();
            for &ip in &set {
                let ib = item_block(ip);
                pairs[ub][ib].push(((pos - user_bounds[ub]) as u32, ip - item_bounds[ib] as u32));
            }
            liked[pos] = set;
        }

        let scale = 1.0 / config.factors as f32;
        let mut users: Vec<f32> = (0..n_users * w)
            .map(|k| {
                if k % w == config.factors {
                    1.0
                } else {
                    (rng.random::<f32>() - 0.5) * scale
                }
            })
            .collect();
        let mut items: Vec<f32> = (0..n_items * w)
            .map(|k| {
                if k % w == config.factors {
                    0.0
                } else {
                    (rng.random::<f32>() - 0.5) * scale
                }
            })
            .collect();

        progress.set_length(config.iterations as u64);
        progress.set_position(0);
        for epoch in 0..config.iterations {
            for shift in 0..blocks {
                let user_blocks = split_blocks(&mut users, &user_bounds, w);
                let mut item_blocks = split_blocks(&mut items, &item_bounds, w);
                item_blocks.rotate_left(shift);
                user_blocks
                    .into_par_iter()
                    .zip(item_blocks)
                    .enumerate()
                    .for_each(|(p, (ublock, iblock))| {
                        let q = (p + shift) % blocks;
                        let seed = config.seed
                            ^ ((epoch as u64) << 40)
                            ^ ((shift as u64) << 20)
                            ^ (p as u64 + 1);
                        pulp::Arch::new().dispatch(SgdBlock {
                            users: ublock,
                            items: iblock,
                            pairs: &pairs[p][q],
                            liked: &liked[user_bounds[p]..user_bounds[p + 1]],
                            item_offset: item_bounds[q] as u32,
                            w,
                            config,
                            rng: StdRng::seed_from_u64(seed),
                        });
                    });
            }
            progress.inc(1);
        }

        // Back to the original id order.
        let mut user_factors = vec![0f32; n_users * w];
        for (pos, &u) in user_perm.iter().enumerate() {
            user_factors[u as usize * w..(u as usize + 1) * w]
                .copy_from_slice(&users[pos * w..(pos + 1) * w]);
        }
        let mut item_factors = vec![0f32; n_items * w];
        for (pos, &i) in item_perm.iter().enumerate() {
            item_factors[i as usize * w..(i as usize + 1) * w]
                .copy_from_slice(&items[pos * w..(pos + 1) * w]);
        }
        // Items never sampled as anyone's positive keep their random start: zero them (bias
        // included) so they score nothing rather than noise.
        super::zero_cold_rows(&mut item_factors, w, |i| data.item_users().row_len(i) == 0);
        let item_norms = item_factors
            .chunks_exact(w)
            .map(|y| {
                y[..config.factors]
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        Ok(Self {
            factors: config.factors,
            user_factors,
            item_factors,
            item_norms,
        })
    }

    /// A user vector for a query: the weighted mean of its items' factors (BPR has no
    /// closed-form fold-in), with the bias column set to 1.
    pub fn fold_in(&self, query: &Query<'_>) -> Vec<f32> {
        let w = self.factors + 1;
        let mut x = vec![0f32; w];
        let mut total = 0.0;
        for (i, weight) in query.weighted_history() {
            if let Some(y) = self.item_factors.get(i as usize * w..(i as usize + 1) * w) {
                for (a, b) in x.iter_mut().zip(&y[..self.factors]) {
                    *a += weight * b;
                }
                total += weight;
            }
        }
        if total > 0.0 {
            x.iter_mut().for_each(|v| *v /= total);
        }
        x[self.factors] = 1.0;
        x
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        (self.user_factors.len() + self.item_factors.len() + self.item_norms.len()) * 4
    }
}

/// Block boundaries splitting `n` rows into `blocks` nearly equal parts.
fn bounds(n: usize, blocks: usize) -> Vec<usize> {
    (0..=blocks).map(|b| b * n / blocks).collect()
}

/// Disjoint mutable row blocks of a row-major table.
fn split_blocks<'a>(mut table: &'a mut [f32], bounds: &[usize], w: usize) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(bounds.len() - 1);
    for pair in bounds.windows(2) {
        let (head, tail) = table.split_at_mut((pair[1] - pair[0]) * w);
        out.push(head);
        table = tail;
    }
    out
}

/// One (user block, item block) task of a sub-epoch.
struct SgdBlock<'a> {
    users: &'a mut [f32],
    items: &'a mut [f32],
    pairs: &'a [(u32, u32)],
    liked: &'a [Vec<u32>],
    item_offset: u32,
    w: usize,
    config: &'a BprConfig,
    rng: StdRng,
}

impl WithSimd for SgdBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, simd: S) {
        let w = self.w;
        let n_items = self.items.len() / w;
        if self.pairs.is_empty() || n_items < 2 {
            return;
        }
        let lr = self.config.learning_rate;
        let reg = self.config.regularization;
        let bias = self.config.factors;
        let mut diff = vec![0f32; w];
        for _ in 0..self.pairs.len() {
            let (u, i) = self.pairs[self.rng.random_range(0..self.pairs.len())];
            let j = self.rng.random_range(0..n_items as u32);
            if self.liked[u as usize]
                .binary_search(&(j + self.item_offset))
                .is_ok()
            {
                continue;
            }
            let (u, i, j) = (u as usize, i as usize, j as usize);
            let xu = &mut self.users[u * w..(u + 1) * w];
            let (yi, yj) = two_rows_mut(self.items, i, j, w);
            for (d, (a, b)) in diff.iter_mut().zip(yi.iter().zip(yj.iter())) {
                *d = a - b;
            }
            let z = 1.0 / (1.0 + dot(simd, xu, &diff).exp());
            for (f, ((uf, a), b)) in xu.iter_mut().zip(yi).zip(yj).enumerate() {
                let old = *uf;
                if f != bias {
                    *uf += lr * (z * diff[f] - reg * old);
                }
                *a += lr * (z * old - reg * *a);
                *b += lr * (-z * old - reg * *b);
            }
        }
    }
}

/// Rows `a` and `b` (distinct) of a row-major table, both mutable.
fn two_rows_mut(table: &mut [f32], a: usize, b: usize, w: usize) -> (&mut [f32], &mut [f32]) {
    if a < b {
        let (head, tail) = table.split_at_mut(b * w);
        (&mut head[a * w..(a + 1) * w], &mut tail[..w])
    } else {
        let (head, tail) = table.split_at_mut(a * w);
        (&mut tail[..w], &mut head[b * w..(b + 1) * w])
    }
}

impl Recommender for Bpr {
    fn n_items(&self) -> usize {
        self.item_norms.len()
    }

    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        let folded;
        let user = match query.user.and_then(|u| self.user_factor(u)) {
            Some(x) => x,
            None => {
                folded = self.fold_in(query);
                &folded
            }
        };
        score_rows(&self.item_factors, user, out);
    }

    fn recommend_many(
        &self,
        queries: &[Query<'_>],
        k: usize,
        exclude: &[&[ItemIdx]],
    ) -> Vec<Vec<(ItemIdx, f32)>> {
        let vectors: Vec<Vec<f32>> = queries
            .par_iter()
            .map(|q| match q.user.and_then(|u| self.user_factor(u)) {
                Some(x) => x.to_vec(),
                None => self.fold_in(q),
            })
            .collect();
        top_k_batch(&self.item_factors, &vectors, exclude, k)
    }

    /// Cosine similarity of item factors (bias excluded).
    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        let w = self.factors + 1;
        let Some(y) = self
            .item_factors
            .get(item as usize * w..(item as usize + 1) * w)
        else {
            return Vec::new();
        };
        let mut query = y.to_vec();
        query[self.factors] = 0.0;
        let mut scores = vec![0.0; self.n_items()];
        score_rows(&self.item_factors, &query, &mut scores);
        let norm = self.item_norms[item as usize];
        let mut top = TopK::new(k);
        for (j, (&s, &n)) in scores.iter().zip(&self.item_norms).enumerate() {
            if j as ItemIdx != item && n > 0.0 && norm > 0.0 {
                top.push(j as ItemIdx, s / (n * norm));
            }
        }
        top.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::fixtures::tiny;

    fn config(blocks: usize) -> BprConfig {
        BprConfig {
            factors: 4,
            iterations: 400,
            learning_rate: 0.05,
            regularization: 0.001,
            seed: 3,
            blocks,
        }
    }

    #[test]
    fn ranks_observed_items_above_unobserved_ones() {
        let m = tiny();
        for blocks in [1, 2] {
            let model = Bpr::fit(&config(blocks), &m, &ProgressBar::hidden()).unwrap();
            // u0 = {i0, i1}: both must outrank the items only u3 touches.
            let mut scores = vec![0.0; 5];
            model.score_all(&Query::known(0, &[]), &mut scores);
            assert!(
                scores[0] > scores[4] && scores[1] > scores[4],
                "{blocks}: {scores:?}"
            );
            // u3 = {i3, i4}: both above i0.
            model.score_all(&Query::known(3, &[]), &mut scores);
            assert!(
                scores[3] > scores[0] && scores[4] > scores[0],
                "{blocks}: {scores:?}"
            );
        }
    }

    #[test]
    fn fits_are_reproducible_for_a_seed_and_block_count() {
        let m = tiny();
        let a = Bpr::fit(&config(2), &m, &ProgressBar::hidden()).unwrap();
        let b = Bpr::fit(&config(2), &m, &ProgressBar::hidden()).unwrap();
        assert_eq!(a.item_factors, b.item_factors);
    }

    #[test]
    fn unknown_users_fold_in_from_their_items() {
        let m = tiny();
        let model = Bpr::fit(&config(1), &m, &ProgressBar::hidden()).unwrap();
        let rec = model.recommend(&Query::anonymous(&[3]), 5, &[3]);
        assert_eq!(rec.len(), 4);
        assert!(rec.iter().all(|&(i, _)| i != 3));
    }
}
