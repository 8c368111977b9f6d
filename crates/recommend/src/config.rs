//! The recommend service's settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tailor_kit::config::{ConfigError, Validate, check_range, key};
use tailor_kit::db::DatabaseSettings;
use tailor_kit::grpc::server::ServerSettings;

use crate::algo::AlgoConfig;

/// Everything the recommend service needs to know.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// gRPC listener (default 127.0.0.1:50052).
    pub server: ServerSettings,
    /// Its own database (default `sqlite://data/recommend.db`).
    pub database: DatabaseSettings,
    /// How recommendations are put together.
    pub serving: ServingSettings,
    /// How and when models are trained.
    pub training: TrainingSettings,
    /// A/B tests of blends.
    pub experiments: Vec<ExperimentSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::on(SocketAddr::from(([127, 0, 0, 1], 50052))),
            database: DatabaseSettings::sqlite("data/recommend.db"),
            serving: ServingSettings::default(),
            training: TrainingSettings::default(),
            experiments: Vec::new(),
        }
    }
}

impl Validate for Settings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.server.validate(&key(prefix, "server"))?;
        self.database.validate(&key(prefix, "database"))?;
        self.serving.validate(&key(prefix, "serving"))?;
        self.training.validate(&key(prefix, "training"))?;
        for (i, experiment) in self.experiments.iter().enumerate() {
            experiment.validate(&key(prefix, &format!("experiments[{i}]")))?;
        }
        Ok(())
    }
}

/// Weight of each source (a trained model, by its name in `training.algorithms`) in a
/// placement's blend; a source not listed does not take part.
pub type Blend = BTreeMap<String, f64>;

fn blend(entries: &[(&str, f64)]) -> Blend {
    entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Blends per placement and the rules applied to every list.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServingSettings {
    /// The home feed.
    pub home: Blend,
    /// A product page (context: the product).
    pub product_page: Blend,
    /// The cart (context: its items).
    pub cart: Blend,
    /// After a purchase (context: the purchased items).
    pub post_purchase: Blend,
    /// Candidates taken from each source before blending.
    pub candidates_per_source: usize,
    /// Most of a page one top-level category may take (0..1), so no page is one category.
    pub max_category_share: f64,
    /// Recent interactions used as the user's history.
    pub history_length: usize,
    /// How long a user's history is reused between requests, counted from when it was read
    /// from the database, when the bus is shared (Redis): bounds how stale it can be on a
    /// replica that did not consume the user's latest event (the events a replica consumes
    /// are added to its cached copy at once).
    #[serde(with = "humantime_serde")]
    pub history_ttl: Duration,
    /// The same with the in-process bus, where this one process consumes every event and
    /// adds it to the user's cached history at once: only changes made behind its back
    /// (`tailor import` into the same database) wait for it.
    #[serde(with = "humantime_serde")]
    pub history_ttl_in_process: Duration,
    /// Memory for the rankings kept between requests (a user's or a history's best items per
    /// source, until the history changes or the next model set), in MiB.
    pub kept_rankings_mib: u64,
}

/// Default of [`ServingSettings::kept_rankings_mib`], also the budget of a model set built
/// outside a service (training, tests, benches).
pub const KEPT_RANKINGS_MIB: u64 = 64;

impl Default for ServingSettings {
    fn default() -> Self {
        Self {
            home: blend(&[
                ("als", 1.0),
                ("itemknn", 1.0),
                ("sequence", 0.6),
                ("content", 0.3),
                ("popular", 0.15),
            ]),
            product_page: blend(&[
                ("itemknn", 1.0),
                ("content", 0.6),
                ("embedding", 0.4),
                ("rules", 0.5),
            ]),
            cart: blend(&[("rules", 1.0), ("itemknn", 0.6), ("sequence", 0.4)]),
            post_purchase: blend(&[("rules", 1.0), ("itemknn", 0.5), ("content", 0.3)]),
            candidates_per_source: 100,
            max_category_share: 0.5,
            history_length: 50,
            history_ttl: Duration::from_millis(300),
            history_ttl_in_process: Duration::from_secs(60),
            kept_rankings_mib: KEPT_RANKINGS_MIB,
        }
    }
}

impl Validate for ServingSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            prefix,
            "candidates_per_source",
            self.candidates_per_source,
            10..=10_000,
        )?;
        check_range(
            prefix,
            "max_category_share",
            self.max_category_share,
            0.05..=1.0,
        )?;
        check_range(prefix, "history_length", self.history_length, 1..=1_000)?;
        check_range(
            prefix,
            "kept_rankings_mib",
            self.kept_rankings_mib,
            1..=65_536,
        )?;
        for (name, ttl) in [
            ("history_ttl", self.history_ttl),
            ("history_ttl_in_process", self.history_ttl_in_process),
        ] {
            // A day is far past any use; the cache cannot take lifetimes of centuries.
            if ttl > Duration::from_secs(86_400) {
                return Err(ConfigError::invalid(
                    key(prefix, name),
                    "must be at most 1d",
                ));
            }
        }
        for (name, blend) in [
            ("home", &self.home),
            ("product_page", &self.product_page),
            ("cart", &self.cart),
            ("post_purchase", &self.post_purchase),
        ] {
            for (source, weight) in blend {
                if !(weight.is_finite() && *weight >= 0.0) {
                    return Err(ConfigError::invalid(
                        key(prefix, &format!("{name}.{source}")),
                        "must be a non-negative number",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Interest weight of each behaviour in the training data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviorWeights {
    /// View.
    pub view: f32,
    /// Click.
    pub click: f32,
    /// Add to cart.
    pub add_to_cart: f32,
    /// Purchase.
    pub purchase: f32,
    /// A review with 4 or 5 stars (worse ones are left out: not a signal to recommend).
    pub good_review: f32,
    /// Share.
    pub share: f32,
}

impl Default for BehaviorWeights {
    fn default() -> Self {
        Self {
            view: 1.0,
            click: 2.0,
            add_to_cart: 4.0,
            purchase: 8.0,
            good_review: 4.0,
            share: 3.0,
        }
    }
}

/// Model training.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSettings {
    /// Retrain this often (`0s`: only on demand).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// After catalog changes, train again this soon (so new items are recommendable by
    /// content before anyone touches them).
    #[serde(with = "humantime_serde")]
    pub catalog_debounce: Duration,
    /// Sources to train: name → algorithm (any name `tailor eval` knows, with defaults).
    pub algorithms: BTreeMap<String, String>,
    /// Evaluate each model on a holdout at train time (costs a second fit).
    pub holdout: bool,
    /// Behaviour weights.
    pub weights: BehaviorWeights,
    /// How often each replica checks for a newer active model trained elsewhere.
    #[serde(with = "humantime_serde")]
    pub model_poll: Duration,
    /// Model versions kept in the database.
    pub keep_versions: usize,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        let algorithms = [
            ("popular", "popular"),
            ("trending", "trending"),
            ("itemknn", "itemknn_bm25"),
            ("als", "als"),
            ("content", "content_tfidf"),
            ("embedding", "embedding"),
            ("rules", "rules"),
            ("sequence", "sequence"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            interval: Duration::from_secs(3600),
            catalog_debounce: Duration::from_secs(30),
            algorithms,
            holdout: true,
            weights: BehaviorWeights::default(),
            model_poll: Duration::from_secs(30),
            keep_versions: 5,
        }
    }
}

impl Validate for TrainingSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for (name, algorithm) in &self.algorithms {
            AlgoConfig::by_name(algorithm).map_err(|_| {
                ConfigError::invalid(
                    key(prefix, &format!("algorithms.{name}")),
                    format!(
                        "unknown algorithm `{algorithm}`; known: {}",
                        AlgoConfig::NAMES.join(", ")
                    ),
                )
            })?;
        }
        if !self.algorithms.contains_key("popular") {
            return Err(ConfigError::invalid(
                key(prefix, "algorithms"),
                "must include `popular`: it is the cold-start fallback",
            ));
        }
        check_range(prefix, "keep_versions", self.keep_versions, 1..=100)?;
        Ok(())
    }
}

/// One A/B test: users are split between variants by a GrowthBook-compatible hash.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSettings {
    /// Experiment key (hashed with the user id).
    pub key: String,
    /// Hash seed; defaults to the key.
    #[serde(default)]
    pub seed: Option<String>,
    /// Placement it applies to: home, product_page, cart or post_purchase.
    pub placement: String,
    /// Share of users in the experiment (0..1); the rest get the default blend.
    #[serde(default = "one")]
    pub coverage: f64,
    /// Variants; their weights are normalised.
    pub variants: Vec<VariantSettings>,
}

fn one() -> f64 {
    1.0
}

/// One variant: a name and a blend (empty means the placement's default blend).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSettings {
    /// Reported in responses and exposures.
    pub name: String,
    /// Share of the experiment's users.
    #[serde(default = "one")]
    pub weight: f64,
    /// The blend; empty: the default.
    #[serde(default)]
    pub blend: Blend,
}

impl Validate for ExperimentSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !["home", "product_page", "cart", "post_purchase"].contains(&self.placement.as_str()) {
            return Err(ConfigError::invalid(
                key(prefix, "placement"),
                "must be home, product_page, cart or post_purchase",
            ));
        }
        check_range(prefix, "coverage", self.coverage, 0.0..=1.0)?;
        if self.variants.len() < 2 {
            return Err(ConfigError::invalid(
                key(prefix, "variants"),
                "need at least two variants",
            ));
        }
        if self
            .variants
            .iter()
            .any(|v| !(v.weight.is_finite() && v.weight > 0.0))
        {
            return Err(ConfigError::invalid(
                key(prefix, "variants"),
                "weights must be positive",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lifetimes_are_bounded() {
        let mut settings = Settings::default();
        assert!(settings.validate("recommend").is_ok());
        settings.serving.history_ttl_in_process = Duration::from_secs(86_401);
        let err = settings.validate("recommend").unwrap_err().to_string();
        assert!(
            err.contains("recommend.serving.history_ttl_in_process"),
            "{err}"
        );
    }
}
