//! Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky,
//! "Collaborative Filtering for Implicit Feedback Datasets", 2008).
//!
//! Every observed pair gets preference 1 and confidence `c = 1 + alpha * weight`; every other
//! pair preference 0 and confidence 1. Each half-step solves, per user (then per item),
//! `(YᵀY + λI + Σ (c-1) y yᵀ) x = Σ c y`, touching only the row's observed entries because
//! `YᵀY` is shared (one gram per half-step, computed with `faer`).
//!
//! Two solvers: a few warm-started conjugate-gradient steps as in `implicit`'s CPU ALS (Takács
//! et al., "Applications of the conjugate gradient method for implicit feedback collaborative
//! filtering", 2011) — the default, `O(nnz·d + rows·d²)` per half-step — or an exact Cholesky
//! solve per row (`faer`), `O(nnz·d² + rows·d³)`. Rows are solved in parallel with rayon;
//! the per-row CG loop is our own code over the `kernels` module because a BLAS call
//! per 64-float vector costs more than the arithmetic.

use std::borrow::Cow;
use std::sync::OnceLock;

use faer::{Mat, MatRef, Side, linalg::solvers::Solve};
use indicatif::ProgressBar;
use pulp::{Simd, WithSimd};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Csr, Interactions, ItemIdx, Query, Recommender, Result, ensure,
    kernels::{axpy, dot, gemv, score_rows, top_k_batch},
    knn::{Weighting, weigh},
    screen::Screen,
    topk::TopK,
};

/// How each row's least-squares system is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Warm-started conjugate gradient with this many steps per row and half-step.
    ConjugateGradient {
        /// CG steps (implicit uses 3).
        steps: usize,
    },
    /// Exact Cholesky factorisation per row.
    Cholesky,
}

/// ALS hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsConfig {
    /// Latent dimensions.
    pub factors: usize,
    /// Alternations (each solves all users, then all items).
    pub iterations: usize,
    /// L2 penalty λ on every factor vector.
    pub regularization: f32,
    /// Confidence slope: `c = 1 + alpha * weight`.
    pub alpha: f32,
    /// Row solver.
    pub solver: Solver,
    /// Optional BM25 reweighting of the interactions before confidences (rows = items, as in
    /// `implicit`'s lastfm example): heavy users and very popular items count less.
    pub bm25: Option<Bm25>,
    /// Seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsConfig {
    /// 64 factors and 15 iterations like the baseline; `alpha` and `regularization` from the
    /// middle of what tuning picked on the evaluation datasets (`docs/evaluation.md`).
    fn default() -> Self {
        Self {
            factors: 64,
            iterations: 15,
            regularization: 0.1,
            alpha: 20.0,
            solver: Solver::ConjugateGradient { steps: 3 },
            bm25: None,
            seed: 42,
        }
    }
}

/// BM25 parameters (see [`knn::Weighting::Bm25`](super::knn::Weighting::Bm25)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25 {
    /// Saturation.
    pub k1: f32,
    /// Length normalisation.
    pub b: f32,
}

/// What fold-in needs to weight a new user's items as training weighted them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FoldInWeights {
    k1: f32,
    /// BM25 length normalisation of each item.
    item_norms: Vec<f32>,
    /// Number of items (BM25's N: users are the terms).
    n_items: f32,
}

impl FoldInWeights {
    fn weight(&self, item: ItemIdx, history_len: usize) -> f32 {
        let idf = self.n_items.ln() - (history_len as f32).ln_1p();
        let norm = self.item_norms[item as usize];
        (self.k1 + 1.0) / (self.k1 * norm + 1.0) * idf
    }
}

/// A fitted ALS model: user and item factors, row-major.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Als {
    factors: usize,
    regularization: f32,
    alpha: f32,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    /// `YᵀY + λI` of the final item factors: the shared part of every fold-in system.
    gram: Vec<f32>,
    /// L2 norms of the item factors, for cosine `similar_items`.
    item_norms: Vec<f32>,
    /// Set when training reweighted interactions with BM25.
    fold_in_weights: Option<FoldInWeights>,
    /// The item factors at half the bytes, for serving's full-catalog top-k; made on first
    /// use (after training or loading), never stored.
    #[serde(skip)]
    screen: OnceLock<Screen>,
}

/// Rows solved per rayon task: enough to amortise SIMD dispatch and scratch allocation, few
/// enough that work stealing balances rows of very different lengths.
const ROWS_PER_TASK: usize = 64;

impl Als {
    /// Fits user and item factors; advances `progress` once per iteration.
    pub fn fit(config: &AlsConfig, data: &Interactions, progress: &ProgressBar) -> Result<Self> {
        ensure(config.factors > 0, "factors", "must be at least 1")?;
        ensure(
            config.regularization >= 0.0,
            "regularization",
            "must not be negative",
        )?;
        ensure(config.alpha >= 0.0, "alpha", "must not be negative")?;
        if let Solver::ConjugateGradient { steps } = config.solver {
            ensure(steps > 0, "solver.steps", "must be at least 1")?;
        }
        let d = config.factors;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut init =
            |n: usize| -> Vec<f32> { (0..n * d).map(|_| rng.random::<f32>() * 0.01).collect() };
        let mut user_factors = init(data.n_users());
        let mut item_factors = init(data.n_items());
        let (weights, fold_in_weights) = match config.bm25 {
            None => (data.item_users().clone(), None),
            Some(Bm25 { k1, b }) => {
                let (w, _) = weigh(data.item_users(), Weighting::Bm25 { k1, b });
                let lens: Vec<f32> = (0..data.n_items() as u32)
                    .map(|i| data.item_users().row_data(i).iter().sum())
                    .collect();
                let avg = lens.iter().sum::<f32>() / lens.len().max(1) as f32;
                let item_norms = lens.iter().map(|l| (1.0 - b) + b * l / avg).collect();
                let f = FoldInWeights {
                    k1,
                    item_norms,
                    n_items: data.n_items() as f32,
                };
                (w, Some(f))
            }
        };
        // Confidence minus one is what the solvers need per entry.
        let ci = weights.map_values(|_, _, w| config.alpha * w);
        let (cu, _) = ci.transpose();
        progress.set_length(config.iterations as u64);
        progress.set_position(0);
        for _ in 0..config.iterations {
            solve_half(&cu, &mut user_factors, &item_factors, d, config);
            solve_half(&ci, &mut item_factors, &user_factors, d, config);
            progress.inc(1);
        }
        // Rows nobody interacted with keep their random start; zero them so an item never
        // seen scores nothing (and folding it in says nothing) instead of noise.
        super::zero_cold_rows(&mut item_factors, d, |i| data.item_users().row_len(i) == 0);
        super::zero_cold_rows(&mut user_factors, d, |u| data.user_items().row_len(u) == 0);
        let gram = gram(&item_factors, d, config.regularization);
        let item_norms = item_factors
            .chunks_exact(d)
            .map(|y| y.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        Ok(Self {
            factors: d,
            regularization: config.regularization,
            alpha: config.alpha,
            user_factors,
            item_factors,
            gram,
            item_norms,
            fold_in_weights,
            screen: OnceLock::new(),
        })
    }

    /// Number of latent factors.
    pub fn factors(&self) -> usize {
        self.factors
    }

    /// A trained user's factor vector.
    pub fn user_factor(&self, user: u32) -> Option<&[f32]> {
        self.user_factors
            .chunks_exact(self.factors)
            .nth(user as usize)
    }

    /// An item's factor vector.
    pub fn item_factor(&self, item: ItemIdx) -> Option<&[f32]> {
        self.item_factors
            .chunks_exact(self.factors)
            .nth(item as usize)
    }

    /// The least-squares user vector for a history of items (weight 1 each), solved exactly
    /// with Cholesky against the trained item factors: how users unknown to the model (or
    /// whose history changed since training) are served.
    pub fn fold_in(&self, history: &[ItemIdx]) -> Vec<f32> {
        self.fold_in_query(&Query::anonymous(history))
    }

    /// [`Als::fold_in`] with the query's item weights as interaction strengths (repeated
    /// items add up, as duplicate events do in training).
    pub fn fold_in_query(&self, query: &Query<'_>) -> Vec<f32> {
        let d = self.factors;
        let n_items = self.item_norms.len();
        let mut entries: Vec<(ItemIdx, f32)> = query
            .weighted_history()
            .filter(|&(i, _)| (i as usize) < n_items)
            .collect();
        entries.sort_unstable_by_key(|e| e.0);
        entries.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 += next.1;
            }
            same
        });
        if entries.is_empty() {
            return vec![0.0; d];
        }
        let mut a = Mat::<f32>::from_fn(d, d, |r, col| self.gram[r * d + col]);
        let mut b = Mat::<f32>::zeros(d, 1);
        for &(i, strength) in &entries {
            let w = self
                .fold_in_weights
                .as_ref()
                .map_or(strength, |f| strength * f.weight(i, entries.len()));
            let c = 1.0 + self.alpha * w;
            let y = &self.item_factors[i as usize * d..(i as usize + 1) * d];
            for r in 0..d {
                b[(r, 0)] += c * y[r];
                for col in 0..d {
                    a[(r, col)] += (c - 1.0) * y[r] * y[col];
                }
            }
        }
        match a.llt(Side::Lower) {
            Ok(llt) => {
                llt.solve_in_place(b.as_mut());
                (0..d).map(|r| b[(r, 0)]).collect()
            }
            // Only with λ = 0 and fewer items than factors; no preference is better than NaN.
            Err(_) => vec![0.0; d],
        }
    }

    /// A trained user's factors, or the history folded in.
    fn user_vector(&self, query: &Query<'_>) -> Cow<'_, [f32]> {
        match query.user.and_then(|u| self.user_factor(u)) {
            Some(x) => Cow::Borrowed(x),
            None => Cow::Owned(self.fold_in_query(query)),
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        (self.user_factors.len() + self.item_factors.len() + self.gram.len()) * 4
            + self.item_norms.len() * 4
            + self.screen.get().map_or(0, Screen::heap_bytes)
    }
}

impl Recommender for Als {
    fn n_items(&self) -> usize {
        self.item_norms.len()
    }

    fn score_all(&self, query: &Query<'_>, out: &mut [f32]) {
        score_rows(&self.item_factors, &self.user_vector(query), out);
    }

    /// The same list as scoring every item, from the half-size screen (see `screen`).
    fn recommend(&self, query: &Query<'_>, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        let screen = self
            .screen
            .get_or_init(|| Screen::new(&self.item_factors, self.factors));
        screen.top_k(&self.item_factors, &self.user_vector(query), k, exclude)
    }

    fn recommend_many(
        &self,
        queries: &[Query<'_>],
        k: usize,
        exclude: &[&[ItemIdx]],
    ) -> Vec<Vec<(ItemIdx, f32)>> {
        let vectors: Vec<Vec<f32>> = queries
            .par_iter()
            .map(|q| self.user_vector(q).into_owned())
            .collect();
        top_k_batch(&self.item_factors, &vectors, exclude, k)
    }

    /// Cosine similarity of item factors.
    fn similar_items(&self, item: ItemIdx, k: usize) -> Vec<(ItemIdx, f32)> {
        let Some(y) = self.item_factor(item) else {
            return Vec::new();
        };
        let mut scores = vec![0.0; self.n_items()];
        score_rows(&self.item_factors, y, &mut scores);
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

/// `YᵀY + λI` as a row-major `d × d` matrix.
fn gram(y: &[f32], d: usize, regularization: f32) -> Vec<f32> {
    let n = y.len() / d.max(1);
    let m = MatRef::from_row_major_slice(y, n, d);
    let g: Mat<f32> = m.transpose() * m;
    let mut out = vec![0f32; d * d];
    for r in 0..d {
        for c in 0..d {
            out[r * d + c] = g[(r, c)];
        }
        out[r * d + r] += regularization;
    }
    out
}

/// Solves every row of `x` against the fixed `y`, in parallel.
fn solve_half(c: &Csr, x: &mut [f32], y: &[f32], d: usize, config: &AlsConfig) {
    let g = gram(y, d, config.regularization);
    x.par_chunks_mut(d * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(block, rows)| {
            let first = (block * ROWS_PER_TASK) as u32;
            match config.solver {
                Solver::ConjugateGradient { steps } => {
                    pulp::Arch::new().dispatch(CgBlock {
                        c,
                        x: rows,
                        y,
                        gram: &g,
                        d,
                        first,
                        steps,
                    });
                }
                Solver::Cholesky => cholesky_block(c, rows, y, &g, d, first),
            }
        });
}

/// A block of consecutive rows for the CG solver, run under one SIMD dispatch.
struct CgBlock<'a> {
    c: &'a Csr,
    x: &'a mut [f32],
    y: &'a [f32],
    gram: &'a [f32],
    d: usize,
    first: u32,
    steps: usize,
}

impl WithSimd for CgBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let d = self.d;
        let mut r = vec![0f32; d];
        let mut p = vec![0f32; d];
        let mut ap = vec![0f32; d];
        for (offset, x) in self.x.chunks_exact_mut(d).enumerate() {
            let row = self.first + offset as u32;
            let items = self.c.row_indices(row);
            let confs = self.c.row_data(row);
            // r = b - A x, with b = Σ c y and A = G + Σ (c-1) y yᵀ; `confs` holds c - 1.
            gemv(simd, self.gram, x, &mut r);
            r.iter_mut().for_each(|v| *v = -*v);
            for (&i, &cm1) in items.iter().zip(confs) {
                let yi = &self.y[i as usize * d..(i as usize + 1) * d];
                let coef = (1.0 + cm1) - cm1 * dot(simd, yi, x);
                axpy(simd, coef, yi, &mut r);
            }
            p.copy_from_slice(&r);
            let mut rs_old = dot(simd, &r, &r);
            if rs_old < 1e-20 {
                continue;
            }
            for _ in 0..self.steps {
                gemv(simd, self.gram, &p, &mut ap);
                for (&i, &cm1) in items.iter().zip(confs) {
                    let yi = &self.y[i as usize * d..(i as usize + 1) * d];
                    axpy(simd, cm1 * dot(simd, yi, &p), yi, &mut ap);
                }
                let step = rs_old / dot(simd, &p, &ap);
                axpy(simd, step, &p, x);
                axpy(simd, -step, &ap, &mut r);
                let rs_new = dot(simd, &r, &r);
                if rs_new < 1e-20 {
                    break;
                }
                let beta = rs_new / rs_old;
                for (pv, &rv) in p.iter_mut().zip(&r) {
                    *pv = rv + beta * *pv;
                }
                rs_old = rs_new;
            }
        }
    }
}

/// Exact per-row solves of a block with `faer`'s Cholesky.
fn cholesky_block(c: &Csr, x: &mut [f32], y: &[f32], gram: &[f32], d: usize, first: u32) {
    for (offset, xr) in x.chunks_exact_mut(d).enumerate() {
        let row = first + offset as u32;
        let mut a = Mat::<f32>::from_fn(d, d, |r, col| gram[r * d + col]);
        let mut b = Mat::<f32>::zeros(d, 1);
        for (i, cm1) in c.row(row) {
            let yi = &y[i as usize * d..(i as usize + 1) * d];
            for r in 0..d {
                b[(r, 0)] += (1.0 + cm1) * yi[r];
                let s = cm1 * yi[r];
                for col in 0..d {
                    a[(r, col)] += s * yi[col];
                }
            }
        }
        if let Ok(llt) = a.llt(Side::Lower) {
            llt.solve_in_place(b.as_mut());
            for (r, v) in xr.iter_mut().enumerate() {
                *v = b[(r, 0)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::fixtures::tiny;

    fn config(solver: Solver) -> AlsConfig {
        AlsConfig {
            factors: 4,
            iterations: 30,
            regularization: 0.01,
            alpha: 10.0,
            solver,
            bm25: None,
            seed: 7,
        }
    }

    #[test]
    fn cholesky_and_cg_reconstruct_the_observed_pairs() {
        let m = tiny();
        for solver in [Solver::Cholesky, Solver::ConjugateGradient { steps: 4 }] {
            let model = Als::fit(&config(solver), &m, &ProgressBar::hidden()).unwrap();
            for u in 0..4u32 {
                let mut scores = vec![0.0; 5];
                model.score_all(&Query::known(u, &[]), &mut scores);
                let seen = m.user_items().row_indices(u);
                let min_seen = seen
                    .iter()
                    .map(|&i| scores[i as usize])
                    .fold(f32::MAX, f32::min);
                assert!(min_seen > 0.5, "{solver:?} user {u}: {scores:?}");
            }
        }
    }

    #[test]
    fn served_lists_are_the_full_scans_for_trained_folded_and_stored_models() {
        use rand::{Rng, SeedableRng, rngs::StdRng};

        use crate::algo::matrix::{InteractionsBuilder, Merge};
        use crate::algo::top_k_by_full_scan;

        let mut rng = StdRng::seed_from_u64(11);
        let mut b = InteractionsBuilder::new();
        for t in 0..6_000 {
            let (u, i) = (
                rng.random_range(0..300),
                rng.random_range(0..900u32).pow(2) / 900,
            );
            b.push(&format!("u{u}"), &format!("i{i}"), 1.0, t);
        }
        let m = b.build(Merge::Binary);
        let config = AlsConfig {
            factors: 24,
            iterations: 5,
            ..AlsConfig::default()
        };
        let model = Als::fit(&config, &m, &ProgressBar::hidden()).unwrap();
        let stored: Als = postcard::from_bytes(&postcard::to_stdvec(&model).unwrap()).unwrap();
        for u in 0..m.user_items().n_rows() as u32 {
            let seen = m.user_items().row_indices(u);
            let known = Query::known(u, seen);
            let folded = Query::anonymous(seen);
            for (query, k) in [(&known, 10), (&known, 132), (&folded, 50)] {
                let expected = top_k_by_full_scan(&model, query, k, seen);
                assert_eq!(model.recommend(query, k, seen), expected, "user {u}, k {k}");
                assert_eq!(
                    stored.recommend(query, k, seen),
                    expected,
                    "stored, user {u}"
                );
            }
        }
        // The stored model was read without its screen and made it on first use.
        assert!(stored.screen.get().is_some());
    }

    #[test]
    fn u0_gets_i2_first_like_its_neighbour_u1() {
        // u0 = {i0, i1} is a subset of u1 = {i0, i1, i2}: i2 must be u0's best unseen item.
        let m = tiny();
        let model = Als::fit(&config(Solver::Cholesky), &m, &ProgressBar::hidden()).unwrap();
        let rec = model.recommend(&Query::known(0, &[0, 1]), 3, &[0, 1]);
        assert_eq!(rec[0].0, 2);
    }

    #[test]
    fn fold_in_reproduces_a_trained_user() {
        // With item factors fixed, the trained user vector is the exact least-squares solution
        // of the user's own history, which is what fold-in computes.
        let m = tiny();
        let model = Als::fit(&config(Solver::Cholesky), &m, &ProgressBar::hidden()).unwrap();
        let folded = model.fold_in(&[3, 4]);
        // The last half-step updated items after users, so allow a small drift.
        let trained = model.user_factor(3).unwrap();
        let mut a = vec![0.0; 5];
        let mut b = vec![0.0; 5];
        score_rows(&model.item_factors, &folded, &mut a);
        score_rows(&model.item_factors, trained, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 0.1, "{a:?} vs {b:?}");
        }
        let ids = |r: Vec<(ItemIdx, f32)>| {
            let mut v: Vec<_> = r.into_iter().map(|x| x.0).collect();
            v.sort_unstable();
            v
        };
        let anon = model.recommend(&Query::anonymous(&[3, 4]), 3, &[3, 4]);
        let known = model.recommend(&Query::known(3, &[3, 4]), 3, &[3, 4]);
        assert_eq!(ids(anon), vec![0, 1, 2]);
        assert_eq!(ids(known), vec![0, 1, 2]);
    }

    #[test]
    fn bm25_weighted_fold_in_matches_the_trained_user() {
        let m = tiny();
        let config = AlsConfig {
            bm25: Some(Bm25 { k1: 1.2, b: 0.75 }),
            ..config(Solver::Cholesky)
        };
        let model = Als::fit(&config, &m, &ProgressBar::hidden()).unwrap();
        let folded = model.fold_in(&[0, 1, 2]);
        let trained = model.user_factor(1).unwrap();
        let mut a = vec![0.0; 5];
        let mut b = vec![0.0; 5];
        score_rows(&model.item_factors, &folded, &mut a);
        score_rows(&model.item_factors, trained, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 0.1, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn similar_items_use_cosine_of_item_factors() {
        let m = tiny();
        let model = Als::fit(&config(Solver::Cholesky), &m, &ProgressBar::hidden()).unwrap();
        let sim = model.similar_items(0, 4);
        assert_eq!(sim[0].0, 1);
        assert!(sim.iter().all(|&(j, s)| j != 0 && s <= 1.0001));
    }
}
