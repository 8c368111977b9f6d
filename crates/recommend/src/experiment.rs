//! Experiment assignment compatible with GrowthBook's SDKs, so an A/B test of recommendation
//! variants puts each user in the same variant whether Tailor or a GrowthBook client decides.
//!
//! The functions mirror the JavaScript SDK (`packages/sdk-js/src/util.ts`) one to one and are
//! checked against its shared test vectors (`tests/growthbook.rs`). Strings are hashed as
//! UTF-16 code units, as JavaScript's `charCodeAt` sees them.

/// GrowthBook's hashing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVersion {
    /// `fnv32a(value + seed) % 1000 / 1000`: the original, slightly biased, algorithm.
    V1,
    /// `fnv32a(str(fnv32a(seed + value))) % 10000 / 10000`: unbiased; use for new experiments.
    V2,
}

impl HashVersion {
    /// The version of a numeric `hashVersion` field; `None` for versions GrowthBook does not
    /// define (its `hash` returns `null` for them).
    pub fn from_number(v: i64) -> Option<Self> {
        match v {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

/// 32-bit FNV-1a over the UTF-16 code units of `s`.
pub fn fnv1a32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for unit in s.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// GrowthBook's `hash(seed, value, version)`: a number in `[0, 1)`.
pub fn hash(seed: &str, value: &str, version: HashVersion) -> f64 {
    match version {
        HashVersion::V1 => f64::from(fnv1a32(&format!("{value}{seed}")) % 1000) / 1000.0,
        HashVersion::V2 => {
            let inner = fnv1a32(&format!("{seed}{value}"));
            f64::from(fnv1a32(&inner.to_string()) % 10000) / 10000.0
        }
    }
}

/// GrowthBook's `getEqualWeights(n)`: `n` weights of `1/n` (none for `n <= 0`).
pub fn equal_weights(n: i64) -> Vec<f64> {
    if n <= 0 {
        return Vec::new();
    }
    vec![1.0 / n as f64; n as usize]
}

/// GrowthBook's `getBucketRanges(numVariations, coverage, weights)`: the `[start, end)` slice
/// of the hash space of each variation. Coverage is clamped to `[0, 1]`; missing weights,
/// weights of the wrong length or not summing to 1 ± 0.01 fall back to equal weights.
pub fn bucket_ranges(
    n_variations: usize,
    coverage: f64,
    weights: Option<&[f64]>,
) -> Vec<(f64, f64)> {
    let coverage = coverage.clamp(0.0, 1.0);
    let equal = equal_weights(n_variations as i64);
    let mut weights: &[f64] = match weights {
        Some(w) if w.len() == n_variations => w,
        _ => &equal,
    };
    let total: f64 = weights.iter().sum();
    if !(0.99..=1.01).contains(&total) {
        weights = &equal;
    }
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = cumulative;
            cumulative += w;
            (start, start + coverage * w)
        })
        .collect()
}

/// GrowthBook's `chooseVariation(n, ranges)`: the variation whose range holds `n`.
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> Option<usize> {
    ranges
        .iter()
        .position(|&(start, end)| n >= start && n < end)
}

/// A namespace: experiments sharing one keep their users disjoint by taking different
/// `[start, end)` slices of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Namespace id.
    pub id: String,
    /// Start of this experiment's slice.
    pub start: f64,
    /// End of this experiment's slice (exclusive).
    pub end: f64,
}

/// GrowthBook's `inNamespace(hashValue, namespace)`.
pub fn in_namespace(user_id: &str, namespace: &Namespace) -> bool {
    let n = hash(&format!("__{}", namespace.id), user_id, HashVersion::V1);
    n >= namespace.start && n < namespace.end
}

/// An experiment's assignment settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Experiment key; also the hash seed when `seed` is empty.
    pub key: String,
    /// Hash seed (GrowthBook's `seed`, defaulting to the key).
    pub seed: Option<String>,
    /// Traffic split; its length is the number of variations.
    pub weights: Vec<f64>,
    /// Fraction of users included at all.
    pub coverage: f64,
    /// Optional namespace slice.
    pub namespace: Option<Namespace>,
    /// Hash algorithm; GrowthBook's default for experiments is V1.
    pub hash_version: HashVersion,
}

impl Experiment {
    /// The variation index of `user_id`, or `None` when the user is outside the namespace
    /// slice or the coverage (and so sees the default experience).
    pub fn assign(&self, user_id: &str) -> Option<usize> {
        if self.weights.is_empty() {
            return None;
        }
        if let Some(ns) = &self.namespace
            && !in_namespace(user_id, ns)
        {
            return None;
        }
        let ranges = bucket_ranges(self.weights.len(), self.coverage, Some(&self.weights));
        let seed = self
            .seed
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.key);
        choose_variation(hash(seed, user_id, self.hash_version), &ranges)
    }
}

/// Assigns `user_id` to a variation of an experiment (see [`Experiment::assign`]), with
/// GrowthBook's V2 hash.
pub fn assign(
    experiment_key: &str,
    seed: Option<&str>,
    user_id: &str,
    weights: &[f64],
    coverage: f64,
    namespace: Option<&Namespace>,
) -> Option<usize> {
    Experiment {
        key: experiment_key.to_owned(),
        seed: seed.map(str::to_owned),
        weights: weights.to_vec(),
        coverage,
        namespace: namespace.cloned(),
        hash_version: HashVersion::V2,
    }
    .assign(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // Published FNV-1a 32-bit test vectors.
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn assignment_is_sticky_and_follows_the_weights() {
        let weights = [0.2, 0.8];
        let mut counts = [0usize; 2];
        for u in 0..10_000 {
            let id = format!("user-{u}");
            let v = assign("home-feed-ranker", None, &id, &weights, 1.0, None).unwrap();
            assert_eq!(
                assign("home-feed-ranker", None, &id, &weights, 1.0, None),
                Some(v)
            );
            counts[v] += 1;
        }
        assert!((1_800..2_200).contains(&counts[0]), "{counts:?}");
        // Zero coverage includes nobody.
        assert_eq!(assign("x", None, "u", &weights, 0.0, None), None);
    }

    #[test]
    fn namespaces_split_users_between_experiments() {
        let ns = |start, end| Namespace {
            id: "recs".into(),
            start,
            end,
        };
        for u in 0..200 {
            let id = u.to_string();
            let a = assign("a", None, &id, &[0.5, 0.5], 1.0, Some(&ns(0.0, 0.5)));
            let b = assign("b", None, &id, &[0.5, 0.5], 1.0, Some(&ns(0.5, 1.0)));
            assert!(a.is_some() != b.is_some(), "user {id} in both or neither");
        }
    }
}
