//! The profile service's settings. Every value has a default; see the README's
//! configuration reference for the environment variable of each.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tailor_kit::config::{ConfigError, Validate, check_range, key};
use tailor_kit::db::DatabaseSettings;
use tailor_kit::grpc::server::ServerSettings;

/// Everything the profile service needs to know.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// gRPC listener (default 127.0.0.1:50051).
    pub server: ServerSettings,
    /// Its own database (default `sqlite://data/profile.db`).
    pub database: DatabaseSettings,
    /// Ingestion limits.
    pub ingest: IngestSettings,
    /// How profiles are computed.
    pub model: ModelSettings,
    /// Profile cache.
    pub cache: CacheSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::on(SocketAddr::from(([127, 0, 0, 1], 50051))),
            database: DatabaseSettings::sqlite("data/profile.db"),
            ingest: IngestSettings::default(),
            model: ModelSettings::default(),
            cache: CacheSettings::default(),
        }
    }
}

impl Validate for Settings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.server.validate(&key(prefix, "server"))?;
        self.database.validate(&key(prefix, "database"))?;
        self.ingest.validate(&key(prefix, "ingest"))?;
        self.model.validate(&key(prefix, "model"))?;
        Ok(())
    }
}

/// Ingestion limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Most events in one RecordEvents call or one StreamEvents chunk.
    pub max_batch_size: usize,
    /// Most events committed in one write transaction by concurrent calls together (a call
    /// larger than this still gets a transaction of its own).
    pub max_group_events: usize,
    /// Writer tasks on PostgreSQL, each committing the events of its share of the users
    /// (SQLite has one writer).
    pub writers: usize,
    /// Memory for the decoded profiles the writer keeps between groups, in MiB of their
    /// encoded size, estimated from lengths (decoded they take a few times more); 0 reads
    /// every profile it folds.
    pub kept_profiles_mib: u64,
    /// Events further in the future than this are refused (client clocks drift a little).
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// Older events are clamped to this age.
    #[serde(with = "humantime_serde")]
    pub max_event_age: Duration,
    /// Currency of monetary values (RFM, spending tier, typical prices); purchases in other
    /// currencies count for frequency but not for money, as there is no exchange rate here.
    pub reporting_currency: String,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_batch_size: 1000,
            max_group_events: 5000,
            writers: 4,
            kept_profiles_mib: 64,
            max_future_skew: Duration::from_secs(300),
            max_event_age: Duration::from_secs(400 * 86_400),
            reporting_currency: "CNY".to_owned(),
        }
    }
}

impl Validate for IngestSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(prefix, "max_batch_size", self.max_batch_size, 1..=10_000)?;
        check_range(
            prefix,
            "max_group_events",
            self.max_group_events,
            1..=100_000,
        )?;
        check_range(prefix, "writers", self.writers, 1..=64)?;
        check_range(
            prefix,
            "kept_profiles_mib",
            self.kept_profiles_mib,
            0..=1 << 20,
        )?;
        if self.reporting_currency.len() != 3 {
            return Err(ConfigError::invalid(
                key(prefix, "reporting_currency"),
                "must be an ISO-4217 code",
            ));
        }
        Ok(())
    }
}

/// How much each kind of behaviour says about interest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventWeights {
    /// Viewing an item.
    pub view: f64,
    /// Searching (no item, so no interest; kept for completeness).
    pub search: f64,
    /// Clicking an item.
    pub click: f64,
    /// Adding to cart.
    pub add_to_cart: f64,
    /// Removing from cart (negative: a change of mind).
    pub remove_from_cart: f64,
    /// Buying.
    pub purchase: f64,
    /// Reviewing (scaled by the rating: 5 stars counts fully, 1 star negatively).
    pub review: f64,
    /// Sharing.
    pub share: f64,
}

impl Default for EventWeights {
    fn default() -> Self {
        Self {
            view: 1.0,
            search: 0.0,
            click: 2.0,
            add_to_cart: 4.0,
            remove_from_cart: -2.0,
            purchase: 8.0,
            review: 3.0,
            share: 3.0,
        }
    }
}

/// Lifecycle thresholds, in days.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// First seen within this many days: new.
    pub new_days: u32,
    /// Otherwise active within this many days: active.
    pub active_days: u32,
    /// Otherwise active within this many days: at risk; beyond: churned.
    pub churn_days: u32,
    /// How often profiles are re-examined for segment changes caused by time alone.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            new_days: 7,
            active_days: 30,
            churn_days: 90,
            sweep_interval: Duration::from_secs(600),
        }
    }
}

/// Score thresholds of RFM: a value reaching the n-th threshold scores n + 1 (1..=5).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RfmSettings {
    /// Window for frequency and monetary value.
    pub window_days: u32,
    /// Days since the last purchase at or below which recency scores 5, 4, 3, 2 (else 1).
    pub recency_days: [f64; 4],
    /// Purchases in the window reaching which frequency scores 2, 3, 4, 5.
    pub frequency: [i64; 4],
    /// Spend (minor units) in the window reaching which monetary scores 2, 3, 4, 5.
    pub monetary_minor: [i64; 4],
    /// Spend (minor units) in the window reaching which the tier is medium, high, premium.
    pub spending_tiers_minor: [i64; 3],
}

impl Default for RfmSettings {
    fn default() -> Self {
        Self {
            window_days: 365,
            recency_days: [7.0, 30.0, 90.0, 180.0],
            frequency: [2, 4, 8, 16],
            monetary_minor: [20_000, 100_000, 300_000, 1_000_000],
            spending_tiers_minor: [20_000, 100_000, 500_000],
        }
    }
}

/// What a profile dimension measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionSource {
    /// RFM recency score / 5.
    Recency,
    /// RFM frequency score / 5.
    Frequency,
    /// RFM monetary score / 5.
    Monetary,
    /// Recent activity (decayed event count), saturating.
    Engagement,
    /// Mean review polarity mapped to 0..1.
    Sentiment,
    /// 1 − price sensitivity.
    PriceTolerance,
    /// How many categories interest the user, saturating.
    InterestBreadth,
}

/// One weighted dimension of the overall profile vector (DESIGN: "dimensions with weights").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionSetting {
    /// Name shown in profiles.
    pub name: String,
    /// What it measures.
    pub source: DimensionSource,
    /// Relative weight (normalised so all weights sum to 1).
    pub weight: f64,
}

/// How profiles are computed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// Half-life of interest weights.
    #[serde(with = "humantime_serde")]
    pub interest_half_life: Duration,
    /// Weight of each behaviour.
    pub weights: EventWeights,
    /// Interests kept per dimension (the weakest are forgotten beyond it).
    pub max_interests_per_dimension: usize,
    /// Recent items remembered per user.
    pub recent_items: usize,
    /// Lifecycle thresholds.
    pub lifecycle: LifecycleSettings,
    /// RFM and spending tiers.
    pub rfm: RfmSettings,
    /// The overall profile vector.
    pub dimensions: Vec<DimensionSetting>,
}

impl Default for ModelSettings {
    fn default() -> Self {
        let dim = |name: &str, source, weight| DimensionSetting {
            name: name.to_owned(),
            source,
            weight,
        };
        Self {
            interest_half_life: Duration::from_secs(14 * 86_400),
            weights: EventWeights::default(),
            max_interests_per_dimension: 100,
            recent_items: 100,
            lifecycle: LifecycleSettings::default(),
            rfm: RfmSettings::default(),
            dimensions: vec![
                dim("engagement", DimensionSource::Engagement, 0.25),
                dim("recency", DimensionSource::Recency, 0.15),
                dim("frequency", DimensionSource::Frequency, 0.15),
                dim("monetary", DimensionSource::Monetary, 0.2),
                dim("sentiment", DimensionSource::Sentiment, 0.1),
                dim("price_tolerance", DimensionSource::PriceTolerance, 0.1),
                dim("interest_breadth", DimensionSource::InterestBreadth, 0.05),
            ],
        }
    }
}

impl Validate for ModelSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.interest_half_life < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                key(prefix, "interest_half_life"),
                "must be at least 1m",
            ));
        }
        check_range(
            prefix,
            "max_interests_per_dimension",
            self.max_interests_per_dimension,
            1..=10_000,
        )?;
        check_range(prefix, "recent_items", self.recent_items, 1..=1_000)?;
        let lc = &self.lifecycle;
        if !(lc.new_days <= lc.active_days && lc.active_days < lc.churn_days) {
            return Err(ConfigError::invalid(
                key(prefix, "lifecycle"),
                "need new_days <= active_days < churn_days",
            ));
        }
        let ascending = |v: &[f64]| v.windows(2).all(|w| w[0] <= w[1]);
        let rfm = &self.rfm;
        let rfm_prefix = key(prefix, "rfm");
        if !ascending(&rfm.recency_days) {
            return Err(ConfigError::invalid(
                key(&rfm_prefix, "recency_days"),
                "must ascend",
            ));
        }
        if !rfm.frequency.windows(2).all(|w| w[0] <= w[1]) {
            return Err(ConfigError::invalid(
                key(&rfm_prefix, "frequency"),
                "must ascend",
            ));
        }
        if !rfm.monetary_minor.windows(2).all(|w| w[0] <= w[1]) {
            return Err(ConfigError::invalid(
                key(&rfm_prefix, "monetary_minor"),
                "must ascend",
            ));
        }
        if !rfm.spending_tiers_minor.windows(2).all(|w| w[0] <= w[1]) {
            return Err(ConfigError::invalid(
                key(&rfm_prefix, "spending_tiers_minor"),
                "must ascend",
            ));
        }
        for (i, d) in self.dimensions.iter().enumerate() {
            if !(d.weight.is_finite() && d.weight >= 0.0) {
                return Err(ConfigError::invalid(
                    key(prefix, &format!("dimensions[{i}].weight")),
                    "must be a non-negative number",
                ));
            }
        }
        if !self.dimensions.is_empty()
            && self.dimensions.iter().map(|d| d.weight).sum::<f64>() <= 0.0
        {
            return Err(ConfigError::invalid(
                key(prefix, "dimensions"),
                "weights must not all be 0",
            ));
        }
        Ok(())
    }
}

/// The profile cache (Redis when configured, else in-process).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// How long a cached profile may be served (it is also invalidated on every update).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// In-process cache capacity, in profiles.
    pub capacity: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            capacity: 200_000,
        }
    }
}
