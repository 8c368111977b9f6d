//! The simulated shoppers and catalogue. Users and items are drawn with Zipf skew — a few
//! very active users and best-selling items, then a long tail — as in real shop traffic, so
//! caches, hot rows and lock contention behave as they would in production. Item attributes
//! (category path, brand, price) are derived from the item's rank by hashing, so every run
//! and every generator thread sees the same catalogue without sharing any state.

use rand::Rng;
use rand_distr::{Distribution as _, Zipf};
use serde::{Deserialize, Serialize};

/// Top-level categories of the simulated catalogue.
const TOP_CATEGORIES: [&str; 12] = [
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "toys",
    "books",
    "grocery",
    "baby",
    "pets",
    "auto",
    "garden",
];

/// The size and skew of the simulated population (the scenario's `[population]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopulationSpec {
    /// Number of distinct users.
    pub users: u64,
    /// Zipf exponent over users: 0 is uniform, 1 is the classic web-traffic skew.
    pub user_skew: f64,
    /// Number of distinct items.
    pub items: u64,
    /// Zipf exponent over items.
    pub item_skew: f64,
    /// Number of leaf categories items fall into.
    pub categories: u32,
    /// Prefix of generated user and item ids, so generated data is recognisable.
    pub id_prefix: String,
}

impl Default for PopulationSpec {
    fn default() -> Self {
        Self {
            users: 100_000,
            user_skew: 1.0,
            items: 50_000,
            item_skew: 1.1,
            categories: 240,
            id_prefix: "lg-".to_owned(),
        }
    }
}

impl PopulationSpec {
    /// Checks the values; returns the offending field and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.users == 0 {
            return Err(("users", "must be at least 1".to_owned()));
        }
        if self.items == 0 {
            return Err(("items", "must be at least 1".to_owned()));
        }
        if self.categories == 0 {
            return Err(("categories", "must be at least 1".to_owned()));
        }
        for (field, skew) in [("user_skew", self.user_skew), ("item_skew", self.item_skew)] {
            if !(skew.is_finite() && (0.0..=10.0).contains(&skew)) {
                return Err((field, "must be between 0 and 10".to_owned()));
            }
        }
        Ok(())
    }
}

/// An item of the simulated catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Item id, e.g. `lg-i0000042`.
    pub id: String,
    /// Category path, e.g. `electronics/electronics-17`.
    pub category: String,
    /// Brand name.
    pub brand: String,
    /// Unit price in minor units of CNY.
    pub price_minor: i64,
    /// One free-form tag (style, season, …).
    pub tag: String,
}

/// Users and items with their Zipf samplers.
#[derive(Debug, Clone)]
pub struct Population {
    spec: PopulationSpec,
    users: Zipf<f64>,
    items: Zipf<f64>,
}

impl Population {
    /// A population as specified.
    pub fn new(spec: &PopulationSpec) -> anyhow::Result<Self> {
        if let Err((field, reason)) = spec.check() {
            anyhow::bail!("population.{field}: {reason}");
        }
        Ok(Self {
            users: Zipf::new(spec.users as f64, spec.user_skew)?,
            items: Zipf::new(spec.items as f64, spec.item_skew)?,
            spec: spec.clone(),
        })
    }

    /// The specification.
    pub fn spec(&self) -> &PopulationSpec {
        &self.spec
    }

    /// A user rank in `1..=users`, rank 1 the most active.
    pub fn sample_user(&self, rng: &mut impl Rng) -> u64 {
        (self.users.sample(rng) as u64).clamp(1, self.spec.users)
    }

    /// An item rank in `1..=items`, rank 1 the most popular.
    pub fn sample_item(&self, rng: &mut impl Rng) -> u64 {
        (self.items.sample(rng) as u64).clamp(1, self.spec.items)
    }

    /// The user of rank `rank`, wrapping around past the last one (sequential picking).
    pub fn user_id(&self, rank: u64) -> String {
        let rank = (rank.max(1) - 1) % self.spec.users + 1;
        format!("{}u{rank:07}", self.spec.id_prefix)
    }

    /// The item of rank `rank`.
    pub fn item(&self, rank: u64) -> Item {
        let rank = (rank.max(1) - 1) % self.spec.items + 1;
        let h = mix(rank);
        let leaf = (h % u64::from(self.spec.categories)) as usize;
        let top = TOP_CATEGORIES[leaf % TOP_CATEGORIES.len()];
        Item {
            id: format!("{}i{rank:07}", self.spec.id_prefix),
            category: format!("{top}/{top}-{leaf}"),
            brand: format!("brand-{}", (h >> 20) % 400),
            // 9.90 to 999.90 CNY, log-uniform-ish: cheap items are the common ones.
            price_minor: 990 + ((h >> 32) % 1000).pow(2) as i64 / 10,
            tag: format!("style-{}", (h >> 44) % 60),
        }
    }
}

/// splitmix64: a fixed, well-mixed hash of a rank.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    use super::*;

    fn population(users: u64, skew: f64) -> Population {
        Population::new(&PopulationSpec {
            users,
            user_skew: skew,
            ..PopulationSpec::default()
        })
        .unwrap()
    }

    #[test]
    fn zipf_users_follow_the_rank_law() {
        let pop = population(1000, 1.0);
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 200_000;
        let mut counts = vec![0u64; 1001];
        for _ in 0..n {
            let rank = pop.sample_user(&mut rng);
            assert!((1..=1000).contains(&rank));
            counts[rank as usize] += 1;
        }
        // P(k) ∝ 1/k: rank 1 is drawn about twice as often as rank 2 and ten times as
        // often as rank 10. Generous bounds: this is a sanity check, not a fit.
        let ratio2 = counts[1] as f64 / counts[2] as f64;
        let ratio10 = counts[1] as f64 / counts[10] as f64;
        assert!((1.7..2.3).contains(&ratio2), "rank1/rank2 = {ratio2}");
        assert!((8.0..12.5).contains(&ratio10), "rank1/rank10 = {ratio10}");
        // H(1000) ≈ 7.49, so rank 1 takes about 13 % of all draws.
        let share1 = counts[1] as f64 / n as f64;
        assert!((0.11..0.16).contains(&share1), "share of rank 1 = {share1}");
        // The head is hot, but the tail is still reached.
        let tail = counts[501..].iter().filter(|&&c| c > 0).count();
        assert!(tail > 400, "only {tail} of the 500 tail users were drawn");
    }

    #[test]
    fn zero_skew_is_uniform() {
        let pop = population(10, 0.0);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = [0u64; 11];
        for _ in 0..100_000 {
            counts[pop.sample_user(&mut rng) as usize] += 1;
        }
        for (rank, &count) in counts.iter().enumerate().skip(1) {
            assert!((9_000..11_000).contains(&count), "rank {rank}: {count}");
        }
    }

    #[test]
    fn catalogue_is_deterministic_and_well_formed() {
        let pop = population(10, 1.0);
        let a = pop.item(42);
        assert_eq!(a, pop.item(42));
        assert_eq!(a.id, "lg-i0000042");
        let (top, leaf) = a.category.split_once('/').unwrap();
        assert!(TOP_CATEGORIES.contains(&top) && leaf.starts_with(top));
        assert!((990..=100_000).contains(&a.price_minor));
        assert_eq!(pop.user_id(1), "lg-u0000001");
        assert_eq!(
            pop.user_id(11),
            "lg-u0000001",
            "sequential picking wraps around"
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let spec = PopulationSpec {
            user_skew: -1.0,
            ..PopulationSpec::default()
        };
        assert_eq!(spec.check().unwrap_err().0, "user_skew");
        let spec = PopulationSpec {
            users: 0,
            ..PopulationSpec::default()
        };
        assert_eq!(spec.check().unwrap_err().0, "users");
    }
}
