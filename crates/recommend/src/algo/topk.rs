//! Top-k selection over score vectors: the last step of every `recommend` call.
//!
//! A bounded min-heap keeps the k best so far, so a full-catalog pass costs one comparison
//! per item for nearly all items. Ties go to the lower item id, which keeps rankings
//! deterministic (and hand-checkable in tests).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::ItemIdx;

/// A scored item ordered so that the *worst* candidate is the heap's maximum.
#[derive(Clone, Copy, PartialEq)]
struct Worst(f32, ItemIdx);

impl Eq for Worst {}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // Lower score is worse; on equal scores the higher id is worse.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The order of every ranked list: higher score first, ties to the lower item id (as
/// [`TopK`] breaks them).
pub fn best_first(a: &(ItemIdx, f32), b: &(ItemIdx, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Collects the k best `(item, score)` pairs pushed into it.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// An empty selection of at most `k` items.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers one candidate; NaN and -inf scores are never kept.
    #[inline]
    pub fn push(&mut self, item: ItemIdx, score: f32) {
        if self.k == 0 || score.is_nan() || score == f32::NEG_INFINITY {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(score, item));
        } else if let Some(&worst) = self.heap.peek()
            && Worst(score, item) < worst
        {
            self.heap.pop();
            self.heap.push(Worst(score, item));
        }
    }

    /// The k-th best score so far, once `k` items are kept.
    pub fn threshold(&self) -> Option<f32> {
        self.heap
            .peek()
            .filter(|_| self.heap.len() == self.k)
            .map(|worst| worst.0)
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(ItemIdx, f32)> {
        let mut v: Vec<Worst> = self.heap.into_vec();
        v.sort_unstable();
        v.into_iter().map(|Worst(s, i)| (i, s)).collect()
    }
}

/// The k best entries of a dense score vector (index = item), skipping -inf and NaN.
pub fn top_k_dense(scores: &[f32], k: usize) -> Vec<(ItemIdx, f32)> {
    let mut top = TopK::new(k);
    // Items come in increasing id order, so a score equal to the current k-th best loses the
    // tie: one float comparison rejects almost every item of a large catalog.
    let mut threshold = f32::NEG_INFINITY;
    for (i, &s) in scores.iter().enumerate() {
        if s > threshold {
            top.push(i as ItemIdx, s);
            if top.heap.len() == k
                && let Some(worst) = top.heap.peek()
            {
                threshold = worst.0;
            }
        }
    }
    top.into_sorted()
}

/// The k best among `candidates` of a dense score vector.
pub fn top_k_of(scores: &[f32], candidates: &[ItemIdx], k: usize) -> Vec<(ItemIdx, f32)> {
    let mut top = TopK::new(k);
    for &i in candidates {
        top.push(i, scores[i as usize]);
    }
    top.into_sorted()
}

thread_local! {
    /// One catalog-sized score buffer per thread, reused by every request it serves: a fresh
    /// 100 kB allocation per model per request showed up as a tenth of serving time.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The same for sparse scoring (`-inf` for items not reached).
    static SPARSE: RefCell<SparseScores> = const { RefCell::new(SparseScores::new()) };
}

/// Runs `f` on this thread's score buffer, resized to `n` (contents unspecified).
pub fn with_dense_scores<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCORES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.resize(n, 0.0);
            f(&mut buffer[..n])
        }
        // Only if `f` itself asks for a buffer: give it its own.
        Err(_) => f(&mut vec![0.0; n]),
    })
}

/// Scores accumulated for the few items a query reaches (neighbours of its history), over
/// a catalog-sized buffer that only the touched entries are read from and reset in.
pub struct SparseScores {
    scores: Vec<f32>,
    touched: Vec<ItemIdx>,
}

impl SparseScores {
    const fn new() -> Self {
        Self {
            scores: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Adds `value` to `item`'s score (items never added are not candidates).
    #[inline]
    pub fn add(&mut self, item: ItemIdx, value: f32) {
        let Some(slot) = self.scores.get_mut(item as usize) else {
            return;
        };
        if *slot == f32::NEG_INFINITY {
            *slot = value;
            self.touched.push(item);
        } else {
            *slot += value;
        }
    }

    /// The k best items added, best first, never one of `exclude`.
    fn top_k(&mut self, k: usize, exclude: &[ItemIdx]) -> Vec<(ItemIdx, f32)> {
        for &i in exclude {
            if let Some(s) = self.scores.get_mut(i as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        let mut top = TopK::new(k);
        for &i in &self.touched {
            top.push(i, self.scores[i as usize]);
        }
        top.into_sorted()
    }

    fn reset(&mut self) {
        for &i in &self.touched {
            self.scores[i as usize] = f32::NEG_INFINITY;
        }
        self.touched.clear();
    }
}

/// Adds `value` to `out[item]`, where `-inf` marks an item not reached yet: the dense
/// counterpart of [`SparseScores::add`].
#[inline]
pub fn add_dense(out: &mut [f32], item: ItemIdx, value: f32) {
    let slot = &mut out[item as usize];
    *slot = if *slot == f32::NEG_INFINITY {
        value
    } else {
        *slot + value
    };
}

/// The k best of the scores `fill` adds for an `n`-item catalog, never one of `exclude`:
/// the same list as `top_k_dense` over a dense vector with `-inf` for items never added.
pub fn sparse_top_k(
    n: usize,
    k: usize,
    exclude: &[ItemIdx],
    fill: impl FnOnce(&mut SparseScores),
) -> Vec<(ItemIdx, f32)> {
    let run = |acc: &mut SparseScores| {
        // Reset first, so a use that panicked half-way leaves nothing behind.
        acc.reset();
        if acc.scores.len() != n {
            acc.scores.clear();
            acc.scores.resize(n, f32::NEG_INFINITY);
        }
        fill(acc);
        acc.top_k(k, exclude)
    };
    SPARSE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut acc) => run(&mut acc),
        Err(_) => run(&mut SparseScores::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_to_lower_ids() {
        let scores = [0.5, 2.0, f32::NEG_INFINITY, 2.0, 1.0, f32::NAN];
        assert_eq!(top_k_dense(&scores, 3), vec![(1, 2.0), (3, 2.0), (4, 1.0)]);
        assert_eq!(top_k_dense(&scores, 10).len(), 4);
        assert!(top_k_dense(&scores, 0).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn matches_a_full_sort(scores in proptest::collection::vec(-5i8..5, 0..60), k in 0usize..12) {
            // Small integers force many ties, the case the threshold shortcut must get right.
            let scores: Vec<f32> = scores.into_iter().map(f32::from).collect();
            let mut all: Vec<(ItemIdx, f32)> =
                scores.iter().enumerate().map(|(i, &s)| (i as ItemIdx, s)).collect();
            all.sort_by(best_first);
            all.truncate(k);
            proptest::prop_assert_eq!(top_k_dense(&scores, k), all);
        }
    }

    proptest::proptest! {
        #[test]
        fn sparse_matches_dense(
            adds in proptest::collection::vec((0u32..40, -5i8..5), 0..80),
            exclude in proptest::collection::vec(0u32..40, 0..5),
            k in 0usize..12,
        ) {
            let mut dense = vec![f32::NEG_INFINITY; 40];
            for &(i, v) in &adds {
                let slot = &mut dense[i as usize];
                *slot = if *slot == f32::NEG_INFINITY { f32::from(v) } else { *slot + f32::from(v) };
            }
            for &i in &exclude {
                dense[i as usize] = f32::NEG_INFINITY;
            }
            let sparse = sparse_top_k(40, k, &exclude, |acc| {
                for &(i, v) in &adds {
                    acc.add(i, f32::from(v));
                }
            });
            proptest::prop_assert_eq!(sparse, top_k_dense(&dense, k));
            // The buffer is clean for the next query.
            let next = sparse_top_k(40, 3, &[], |_| {});
            proptest::prop_assert!(next.is_empty());
        }
    }

    #[test]
    fn candidates_restrict_the_selection() {
        let scores = [3.0, 2.0, 1.0];
        assert_eq!(top_k_of(&scores, &[2, 1], 1), vec![(1, 2.0)]);
    }
}
