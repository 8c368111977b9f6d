//! Dense `f32` kernels for the factor models' inner loops (CG steps, scoring, SGD updates).
//!
//! These are our own instead of BLAS calls through `faer`: the vectors are short (tens of
//! factors) and the calls number in the millions, so per-call overhead dominates any library
//! routine. `pulp` gives safe runtime dispatch to AVX2/FMA (or AVX-512): callers wrap a whole
//! batch of work in [`Arch::dispatch`](pulp::Arch::dispatch) once and call these
//! `#[inline(always)]` kernels inside, so they compile with the wide instructions.

use pulp::Simd;

use super::{ItemIdx, topk::top_k_dense};

/// `a · b`.
#[inline(always)]
pub(crate) fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (ah, at) = S::as_simd_f32s(a);
    let (bh, bt) = S::as_simd_f32s(b);
    // Two accumulators halve the FMA latency chain.
    let mut acc0 = simd.splat_f32s(0.0);
    let mut acc1 = simd.splat_f32s(0.0);
    let mut pairs_a = ah.chunks_exact(2);
    let mut pairs_b = bh.chunks_exact(2);
    for (pa, pb) in (&mut pairs_a).zip(&mut pairs_b) {
        acc0 = simd.mul_add_e_f32s(pa[0], pb[0], acc0);
        acc1 = simd.mul_add_e_f32s(pa[1], pb[1], acc1);
    }
    for (&x, &y) in pairs_a.remainder().iter().zip(pairs_b.remainder()) {
        acc0 = simd.mul_add_e_f32s(x, y, acc0);
    }
    let mut sum = simd.reduce_sum_f32s(simd.add_f32s(acc0, acc1));
    for (&x, &y) in at.iter().zip(bt) {
        sum += x * y;
    }
    sum
}

/// `y += alpha * x`.
#[inline(always)]
pub(crate) fn axpy<S: Simd>(simd: S, alpha: f32, x: &[f32], y: &mut [f32]) {
    let (xh, xt) = S::as_simd_f32s(x);
    let (yh, yt) = S::as_mut_simd_f32s(y);
    let a = simd.splat_f32s(alpha);
    for (yv, &xv) in yh.iter_mut().zip(xh) {
        *yv = simd.mul_add_e_f32s(a, xv, *yv);
    }
    for (yv, &xv) in yt.iter_mut().zip(xt) {
        *yv += alpha * xv;
    }
}

/// `out = m · v` for a row-major `rows × v.len()` matrix.
#[inline(always)]
pub(crate) fn gemv<S: Simd>(simd: S, m: &[f32], v: &[f32], out: &mut [f32]) {
    let d = v.len();
    for (o, row) in out.iter_mut().zip(m.chunks_exact(d)) {
        *o = dot(simd, row, v);
    }
}

/// Dot of `query` with every row of `table` (row-major, `query.len()` columns), dispatched
/// once for the whole table: the full-catalog scoring of the factor models.
pub(crate) fn score_rows(table: &[f32], query: &[f32], out: &mut [f32]) {
    struct ScoreRows<'a> {
        table: &'a [f32],
        query: &'a [f32],
        out: &'a mut [f32],
    }
    impl pulp::WithSimd for ScoreRows<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            gemv(simd, self.table, self.query, self.out);
        }
    }
    pulp::Arch::new().dispatch(ScoreRows { table, query, out });
}

/// Queries scored per matrix product in [`top_k_batch`]: the score block (rows × items) stays
/// a few MiB per thread.
const BATCH_ROWS: usize = 64;

/// Top-k of many queries against one row-major `table`: each block of queries is scored with
/// one `faer` matrix product, which reuses every table row across the block instead of
/// streaming the whole table from memory once per query.
pub(crate) fn top_k_batch(
    table: &[f32],
    queries: &[Vec<f32>],
    exclude: &[&[ItemIdx]],
    k: usize,
) -> Vec<Vec<(ItemIdx, f32)>> {
    use faer::{Accum, MatMut, MatRef, Par, linalg::matmul::matmul};
    use rayon::prelude::*;

    let Some(d) = queries.first().map(Vec::len) else {
        return Vec::new();
    };
    let n = table.len() / d.max(1);
    let items = MatRef::from_row_major_slice(table, n, d);
    queries
        .par_chunks(BATCH_ROWS)
        .zip(exclude.par_chunks(BATCH_ROWS))
        .flat_map_iter(|(qs, ex)| {
            let b = qs.len();
            let flat: Vec<f32> = qs.iter().flatten().copied().collect();
            let lhs = MatRef::from_row_major_slice(&flat, b, d);
            let mut scores = vec![0f32; b * n];
            let dst = MatMut::from_row_major_slice_mut(&mut scores, b, n);
            matmul(dst, Accum::Replace, lhs, items.transpose(), 1.0, Par::Seq);
            scores
                .chunks_exact_mut(n.max(1))
                .zip(ex)
                .map(|(row, e)| {
                    for &i in *e {
                        if let Some(s) = row.get_mut(i as usize) {
                            *s = f32::NEG_INFINITY;
                        }
                    }
                    top_k_dense(row, k)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_scalar_arithmetic() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let simd = pulp::Scalar::new();
        assert!((dot(simd, &a, &b) - expected).abs() < 1e-3);
        let mut y = b.clone();
        axpy(simd, 2.0, &a, &mut y);
        assert_eq!(y[3], b[3] + 2.0 * a[3]);
        let table: Vec<f32> = a.iter().chain(&b).copied().collect();
        let mut out = [0.0; 2];
        score_rows(&table, &a, &mut out);
        let aa: f32 = a.iter().map(|x| x * x).sum();
        assert!((out[0] - aa).abs() < 1e-2 && (out[1] - expected).abs() < 1e-2);
        let excluded: &[ItemIdx] = &[0];
        let batch = top_k_batch(&table, &[a.clone(), a.clone()], &[&[], excluded], 2);
        assert_eq!(batch[0].iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(batch[1].iter().map(|x| x.0).collect::<Vec<_>>(), vec![1]);
    }
}
