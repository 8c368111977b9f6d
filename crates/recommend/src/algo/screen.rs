//! A factor model's top-k over the whole catalog, read at half the bytes and still exact.
//!
//! Scoring 25,000 items × 64 factors streams 6.4 MB of `f32` per request, more than a core's
//! L2 cache holds: the scan is bound by memory, not arithmetic (a first home-feed request spent
//! three quarters of its time there). A [`Screen`] keeps the item factors rounded to bfloat16,
//! two to a `u32` word, and scores every item from them. Each item's rounding error is bounded
//! (Cauchy–Schwarz: `|x·q − x̃·q| ≤ ‖x − x̃‖·‖q‖`, plus `f32` summation error), so the k-th
//! best lower bound rules out every item whose upper bound stays below it; only the rest (a
//! few hundred of 25,000) are scored again from the `f32` factors, with the same kernel as a
//! full scan. The result is the full scan's, item for item and bit for bit.

use pulp::{Simd, WithSimd};

use super::ItemIdx;
use super::kernels::dot;
use super::topk::{TopK, with_dense_scores};

/// The bfloat16 copy of a row-major `f32` table and each row's error bound.
#[derive(Debug, Clone)]
pub(crate) struct Screen {
    /// Columns of the `f32` table.
    d: usize,
    /// Words per row: column `j` of the first half shares word `j` with column `j + half`.
    half: usize,
    /// Row-major, `half` words a row; the high 16 bits are the first half's column.
    words: Vec<u32>,
    /// Per row, the bound on `|x·q − x̃·q|` as computed in `f32`, per unit of `‖q‖`.
    slack: Vec<f32>,
}

/// bfloat16 bits of `x`, rounded to nearest even (finite `x`).
fn bf16_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16
}

fn from_bf16(bits: u32) -> f32 {
    f32::from_bits(bits << 16)
}

impl Screen {
    /// The screen of a row-major `table` with `d` columns.
    pub(crate) fn new(table: &[f32], d: usize) -> Self {
        let d = d.max(1);
        let half = d.div_ceil(2);
        let rows = table.len() / d;
        // Each f32 sum of `d` products is within `d·u·Σ|xq|` (u = 2⁻²⁴) of the real sum:
        // twice that covers the screened and the exact score, doubled again for margin.
        let unit_roundoff = f64::from(f32::EPSILON) / 2.0;
        let gamma = 4.0 * d as f64 * unit_roundoff;
        let mut words = Vec::with_capacity(rows * half);
        let mut slack = Vec::with_capacity(rows);
        for row in table.chunks_exact(d) {
            let column = |j: usize| row.get(j).copied().unwrap_or(0.0);
            let (mut err, mut norm) = (0f64, 0f64);
            for j in 0..half {
                let (hi, lo) = (bf16_bits(column(j)), bf16_bits(column(j + half)));
                words.push(hi << 16 | lo);
                for (x, bits) in [(column(j), hi), (column(j + half), lo)] {
                    err += (f64::from(x) - f64::from(from_bf16(bits))).powi(2);
                    norm += f64::from(x).powi(2);
                }
            }
            let (err, norm) = (err.sqrt(), norm.sqrt());
            // Rounded up: a bound a hair too large costs a candidate, one too small an item.
            slack.push(((err + gamma * (2.0 * norm + err)) * 1.001) as f32);
        }
        Self {
            d,
            half,
            words,
            slack,
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.words.len() + self.slack.len()) * 4
    }

    /// The `k` best rows of `table` (the `f32` table this screen was made from) for `query`,
    /// best first, never an `exclude`d one: exactly what scoring every row and keeping the
    /// `k` best would return.
    pub(crate) fn top_k(
        &self,
        table: &[f32],
        query: &[f32],
        k: usize,
        exclude: &[ItemIdx],
    ) -> Vec<(ItemIdx, f32)> {
        self.top_k_counted(table, query, k, exclude).0
    }

    /// [`Screen::top_k`] and how many rows were scored exactly.
    fn top_k_counted(
        &self,
        table: &[f32],
        query: &[f32],
        k: usize,
        exclude: &[ItemIdx],
    ) -> (Vec<(ItemIdx, f32)>, usize) {
        let rows = self.slack.len();
        if k == 0 || rows == 0 || query.len() != self.d || table.len() != rows * self.d {
            return (Vec::new(), 0);
        }
        with_dense_scores(rows, |approx| {
            pulp::Arch::new().dispatch(Scan {
                screen: self,
                table,
                query,
                k,
                exclude,
                approx,
            })
        })
    }
}

/// One top-k query, dispatched once to the widest SIMD the CPU has.
struct Scan<'a> {
    screen: &'a Screen,
    table: &'a [f32],
    query: &'a [f32],
    k: usize,
    exclude: &'a [ItemIdx],
    approx: &'a mut [f32],
}

impl WithSimd for Scan<'_> {
    type Output = (Vec<(ItemIdx, f32)>, usize);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> Self::Output {
        let Self {
            screen,
            table,
            query,
            k,
            exclude,
            approx,
        } = self;
        let half = screen.half;
        // The query split as the words are: first half, then second half (zero-padded).
        let (first, second) = query.split_at(half);
        let high = first.to_vec();
        let mut low = second.to_vec();
        low.resize(half, 0.0);
        for (a, row) in approx.iter_mut().zip(screen.words.chunks_exact(half)) {
            *a = screened_dot(simd, row, &high, &low);
        }
        for &i in exclude {
            if let Some(a) = approx.get_mut(i as usize) {
                *a = f32::NEG_INFINITY;
            }
        }
        let q_norm = query.iter().map(|q| q * q).sum::<f32>().sqrt() * (1.0 + 1e-4);
        // Plus a relative hair for the rounding of `approx ± bound` itself.
        let bound = |i: usize, a: f32| screen.slack[i] * q_norm + a.abs() * 1e-6;
        // The k-th best lower bound: at least k items score that much or more, exactly.
        let mut lower = TopK::new(k);
        let mut floor = f32::NEG_INFINITY;
        for (i, &a) in approx.iter().enumerate() {
            let low = a - bound(i, a);
            if low > floor {
                lower.push(i as ItemIdx, low);
                if let Some(threshold) = lower.threshold() {
                    floor = threshold;
                }
            }
        }
        let mut top = TopK::new(k);
        let mut scored = 0;
        for (i, &a) in approx.iter().enumerate() {
            if a > f32::NEG_INFINITY && a + bound(i, a) >= floor {
                let row = &table[i * screen.d..(i + 1) * screen.d];
                top.push(i as ItemIdx, dot(simd, row, query));
                scored += 1;
            }
        }
        (top.into_sorted(), scored)
    }
}

/// `x̃ · q` of one screened row: high halves against the query's first half, low halves
/// (shifted up into an `f32`'s top bits) against its second.
#[inline(always)]
fn screened_dot<S: Simd>(simd: S, row: &[u32], high: &[f32], low: &[f32]) -> f32 {
    let (wh, wt) = S::as_simd_u32s(row);
    let (hh, ht) = S::as_simd_f32s(high);
    let (lh, lt) = S::as_simd_f32s(low);
    let top_half = simd.splat_u32s(0xffff_0000);
    let sixteen = simd.splat_u32s(16);
    let mut acc0 = simd.splat_f32s(0.0);
    let mut acc1 = simd.splat_f32s(0.0);
    for ((&w, &h), &l) in wh.iter().zip(hh).zip(lh) {
        let x_high = simd.transmute_f32s_u32s(simd.and_u32s(w, top_half));
        let x_low = simd.transmute_f32s_u32s(simd.wrapping_dyn_shl_u32s(w, sixteen));
        acc0 = simd.mul_add_e_f32s(x_high, h, acc0);
        acc1 = simd.mul_add_e_f32s(x_low, l, acc1);
    }
    let mut sum = simd.reduce_sum_f32s(simd.add_f32s(acc0, acc1));
    for ((&w, &h), &l) in wt.iter().zip(ht).zip(lt) {
        sum += from_bf16(w >> 16) * h + from_bf16(w & 0xffff) * l;
    }
    sum
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::algo::kernels::score_rows;
    use crate::algo::topk::top_k_dense;

    /// What the screen must equal: every row scored in `f32`, the k best kept.
    fn full_scan(
        table: &[f32],
        d: usize,
        q: &[f32],
        k: usize,
        exclude: &[ItemIdx],
    ) -> Vec<(ItemIdx, f32)> {
        let mut scores = vec![0f32; table.len() / d];
        score_rows(table, q, &mut scores);
        for &i in exclude {
            if let Some(s) = scores.get_mut(i as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        top_k_dense(&scores, k)
    }

    fn table(rng: &mut StdRng, rows: usize, d: usize, duplicates: bool) -> Vec<f32> {
        let mut t: Vec<f32> = (0..rows * d).map(|_| rng.random_range(-1.0..1.0)).collect();
        if duplicates {
            // Equal rows tie exactly: the lower id must win, as in the full scan.
            for r in (1..rows).step_by(3) {
                let (first, rest) = t.split_at_mut(r * d);
                rest[..d].copy_from_slice(&first[(r - 1) * d..r * d]);
            }
        }
        t
    }

    #[test]
    fn bfloat16_rounds_to_nearest_even() {
        assert_eq!(from_bf16(bf16_bits(1.0)), 1.0);
        assert_eq!(from_bf16(bf16_bits(-0.5)), -0.5);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        assert_eq!(from_bf16(bf16_bits(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(from_bf16(bf16_bits(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(from_bf16(bf16_bits(0.0)), 0.0);
    }

    #[test]
    fn a_catalog_sized_scan_scores_few_items_exactly_and_returns_the_full_scans_list() {
        let mut rng = StdRng::seed_from_u64(7);
        let (rows, d, k) = (25_000, 64, 132);
        // Factors of a trained model are mostly small with a few strong directions.
        let table: Vec<f32> = (0..rows * d)
            .map(|_| rng.random_range(-0.3f32..0.3).powi(3))
            .collect();
        let screen = Screen::new(&table, d);
        let q: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let exclude = [0, 17, 4_000];
        let (top, scored) = screen.top_k_counted(&table, &q, k, &exclude);
        assert_eq!(top, full_scan(&table, d, &q, k, &exclude));
        assert!(scored < rows / 10, "{scored} of {rows} rows scored exactly");
        assert_eq!(screen.heap_bytes(), rows * (d / 2 + 1) * 4);
    }

    #[test]
    fn degenerate_queries_and_tables() {
        let table = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let screen = Screen::new(&table, 3);
        assert!(screen.top_k(&table, &[1.0, 1.0, 1.0], 0, &[]).is_empty());
        // A query of the wrong length, or another table, gets nothing rather than a panic.
        assert!(screen.top_k(&table, &[1.0, 1.0], 2, &[]).is_empty());
        assert!(
            screen
                .top_k(&table[..3], &[1.0, 1.0, 1.0], 2, &[])
                .is_empty()
        );
        // A zero query ties every row: ids decide, as in the full scan.
        assert_eq!(
            screen.top_k(&table, &[0.0; 3], 5, &[]),
            vec![(0, 0.0), (1, 0.0)]
        );
        assert_eq!(screen.top_k(&table, &[0.0; 3], 5, &[0, 1]), vec![]);
        let empty = Screen::new(&[], 4);
        assert!(empty.top_k(&[], &[1.0; 4], 3, &[]).is_empty());
    }

    proptest! {
        #[test]
        fn the_screen_returns_exactly_the_full_scans_top_k(
            seed in any::<u64>(),
            rows in 1usize..400,
            d in 1usize..70,
            k in 1usize..60,
            scale in prop::sample::select(vec![1e-3f32, 1.0, 1e3]),
            duplicates in any::<bool>(),
            excluded in prop::collection::vec(0u32..400, 0..20),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let table: Vec<f32> = table(&mut rng, rows, d, duplicates)
                .into_iter()
                .map(|x| x * scale)
                .collect();
            let q: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
            let screen = Screen::new(&table, d);
            prop_assert_eq!(
                screen.top_k(&table, &q, k, &excluded),
                full_scan(&table, d, &q, k, &excluded)
            );
        }
    }
}
