//! A user's profile: the state kept per user, updated incrementally by every event
//! ([`ProfileState::apply`]), and the view computed from it at read time
//! ([`ProfileRecord::view`]) — decay and lifecycle depend on when you look.
//!
//! State is encoded with prost (derived here, no .proto file): compact, fast, and old rows
//! stay readable when fields are added; long encodings are stored compressed ([`stored`]).

use std::collections::HashMap;

use tailor_kit::time::{DAY, Micros};

use super::decay::Decayed;
use super::event::{BehaviorEvent, BehaviorKind, category_prefixes};
use crate::config::{DimensionSource, ModelSettings};

pub mod stored;

/// Half-life of the engagement counter (recent activity).
const ENGAGEMENT_HALF_LIFE: Micros = 7 * DAY;
/// Purchases remembered for RFM, at most.
const MAX_PURCHASES: usize = 2_000;

/// Kinds of interest; the key prefix in [`ProfileState::interests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InterestDimension {
    /// A category path or one of its prefixes.
    Category,
    /// A brand.
    Brand,
    /// A tag.
    Tag,
}

impl InterestDimension {
    const ALL: [Self; 3] = [Self::Category, Self::Brand, Self::Tag];

    fn prefix(self) -> &'static str {
        match self {
            Self::Category => "c:",
            Self::Brand => "b:",
            Self::Tag => "t:",
        }
    }

    fn parse(map_key: &str) -> Option<(Self, &str)> {
        Self::ALL
            .into_iter()
            .find_map(|d| map_key.strip_prefix(d.prefix()).map(|k| (d, k)))
    }
}

/// Everything kept per user to compute the profile.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProfileState {
    /// Decaying interest weights by `<dimension prefix><key>`.
    #[prost(map = "string, message", tag = "1")]
    pub interests: HashMap<String, Decayed>,
    /// Purchases within the RFM window, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub purchases: Vec<Purchase>,
    /// Recent activity.
    #[prost(message, optional, tag = "3")]
    pub engagement: Option<Decayed>,
    /// Price behaviour.
    #[prost(message, optional, tag = "4")]
    pub price: Option<PriceStats>,
    /// Review sentiment.
    #[prost(message, optional, tag = "5")]
    pub sentiment: Option<SentimentStats>,
    /// Recently touched items, newest first, one entry per item.
    #[prost(message, repeated, tag = "6")]
    pub recent: Vec<RecentItem>,
    /// Events seen.
    #[prost(int64, tag = "7")]
    pub event_count: i64,
    /// Earliest event time; 0 before any event.
    #[prost(int64, tag = "8")]
    pub first_seen_at: Micros,
    /// Latest event time; 0 before any event.
    #[prost(int64, tag = "9")]
    pub last_event_at: Micros,
}

/// One purchase line.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Purchase {
    /// When.
    #[prost(int64, tag = "1")]
    pub at: Micros,
    /// Line total in the reporting currency (0 when paid in another currency).
    #[prost(int64, tag = "2")]
    pub amount_minor: i64,
}

/// What the user pays relative to typical prices.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct PriceStats {
    /// Σ unit price / category typical price.
    #[prost(double, tag = "1")]
    pub ratio_sum: f64,
    /// Purchases with a known typical price.
    #[prost(int64, tag = "2")]
    pub ratio_count: i64,
    /// Purchases made with a discount.
    #[prost(int64, tag = "3")]
    pub discounted: i64,
    /// All purchases.
    #[prost(int64, tag = "4")]
    pub purchases: i64,
}

/// Review sentiment sums.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct SentimentStats {
    /// Reviews.
    #[prost(int64, tag = "1")]
    pub reviews: i64,
    /// Σ polarity in [-1, 1].
    #[prost(double, tag = "2")]
    pub polarity_sum: f64,
    /// Reviews judged positive.
    #[prost(int64, tag = "3")]
    pub positive: i64,
    /// Reviews judged negative.
    #[prost(int64, tag = "4")]
    pub negative: i64,
    /// Σ ratings.
    #[prost(int64, tag = "5")]
    pub rating_sum: i64,
}

/// An item the user touched.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RecentItem {
    /// The item.
    #[prost(string, tag = "1")]
    pub item_id: String,
    /// Latest behaviour number.
    #[prost(int32, tag = "2")]
    pub kind: i32,
    /// When.
    #[prost(int64, tag = "3")]
    pub at: Micros,
    /// Category path, may be empty.
    #[prost(string, tag = "4")]
    pub category: String,
}

/// Declared attributes. Enum fields hold protocol numbers (0 = not declared), checked at
/// the API edge.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Attributes {
    /// `tailor.profile.v1.Gender` number.
    #[prost(int32, tag = "1")]
    pub gender: i32,
    /// `tailor.profile.v1.AgeBand` number.
    #[prost(int32, tag = "2")]
    pub age_band: i32,
    /// Region code.
    #[prost(string, tag = "3")]
    pub region: String,
    /// Occupation.
    #[prost(string, tag = "4")]
    pub occupation: String,
}

/// A user's stored profile: state plus attributes and consent (also the cached form).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProfileRecord {
    /// The user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// Derived state.
    #[prost(message, optional, tag = "2")]
    pub state: Option<ProfileState>,
    /// Declared attributes.
    #[prost(message, optional, tag = "3")]
    pub attributes: Option<Attributes>,
    /// Segment at the last update (`Lifecycle::as_str`), empty before the first.
    #[prost(string, tag = "4")]
    pub lifecycle: String,
    /// Whether behavioural personalization is allowed (consent).
    #[prost(bool, tag = "5")]
    pub personalization_allowed: bool,
    /// Version of the consent decision applied.
    #[prost(int64, tag = "6")]
    pub consent_version: i64,
    /// How many times the stored row was written (0: not stored yet). Every write adds one,
    /// so a copy kept in memory is known current when its revision is the row's.
    #[prost(int64, tag = "7")]
    pub revision: i64,
}

impl ProfileRecord {
    /// An empty profile for a user never seen.
    pub fn new(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            state: Some(ProfileState::default()),
            attributes: Some(Attributes::default()),
            lifecycle: String::new(),
            personalization_allowed: true,
            consent_version: 0,
            revision: 0,
        }
    }

    /// The state as stored ([`stored`]), an empty state when there is none.
    pub fn encoded_state(&self) -> Vec<u8> {
        self.state
            .as_ref()
            .map_or_else(|| stored::encode(&ProfileState::default()), stored::encode)
    }
}

/// Per-event inputs that come from outside the user's own state.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventContext {
    /// Typical unit price of the event's category, in the reporting currency.
    pub typical_price: Option<f64>,
    /// Polarity of the review text (or rating), for reviews.
    pub polarity: Option<f32>,
}

impl ProfileState {
    /// Folds one event into the state. Behavioural personalization data (interests, recent
    /// items) is only kept when `personalization_allowed`.
    pub fn apply(
        &mut self,
        event: &BehaviorEvent,
        context: EventContext,
        settings: &ModelSettings,
        reporting_currency: &str,
        personalization_allowed: bool,
    ) {
        let t = event.occurred_at;
        self.event_count += 1;
        self.first_seen_at = if self.first_seen_at == 0 {
            t
        } else {
            self.first_seen_at.min(t)
        };
        self.last_event_at = self.last_event_at.max(t);
        self.engagement
            .get_or_insert_with(Decayed::default)
            .add(1.0, t, ENGAGEMENT_HALF_LIFE);

        if personalization_allowed {
            let weight = interest_weight(event, settings);
            if weight != 0.0 {
                self.add_interests(event, weight, settings);
            }
            self.remember_item(event, settings.recent_items);
        }

        match event.kind {
            BehaviorKind::Purchase => {
                self.record_purchase(event, context, settings, reporting_currency)
            }
            BehaviorKind::Review => {
                if let Some(polarity) = context.polarity {
                    let stats = self.sentiment.get_or_insert_with(SentimentStats::default);
                    stats.reviews += 1;
                    stats.polarity_sum += f64::from(polarity);
                    stats.rating_sum += i64::from(event.rating.unwrap_or(0));
                    if polarity >= POSITIVE {
                        stats.positive += 1;
                    } else if polarity <= -POSITIVE {
                        stats.negative += 1;
                    }
                }
            }
            _ => {}
        }
    }

    fn add_interests(&mut self, event: &BehaviorEvent, weight: f64, settings: &ModelSettings) {
        let half_life = micros(settings.interest_half_life);
        let t = event.occurred_at;
        // One key buffer for the event: most keys are already in the map, and looking them
        // up by a fresh `String` each would allocate once per interest per event.
        let mut map_key = String::new();
        let mut added_keys = false;
        let mut add = |dimension: InterestDimension, key: &str| {
            map_key.clear();
            map_key.push_str(dimension.prefix());
            map_key.push_str(key);
            match self.interests.get_mut(map_key.as_str()) {
                Some(decayed) => decayed.add(weight, t, half_life),
                None => {
                    let mut decayed = Decayed::default();
                    decayed.add(weight, t, half_life);
                    self.interests.insert(map_key.clone(), decayed);
                    added_keys = true;
                }
            }
        };
        if let Some(category) = &event.category {
            for prefix in category_prefixes(category) {
                add(InterestDimension::Category, prefix);
            }
        }
        if let Some(brand) = &event.brand {
            add(InterestDimension::Brand, brand);
        }
        for tag in &event.tags {
            add(InterestDimension::Tag, tag);
        }
        // Forget the weakest interests once a dimension holds a quarter more than allowed,
        // so pruning is amortised rather than run on every event.
        // Only a new key can take a dimension over (each was at most `most` after the last
        // event), and counting them walks every key of a full-grown profile.
        let limit = settings.max_interests_per_dimension;
        let most = limit + limit / 4;
        if !added_keys || self.interests.len() <= most {
            return;
        }
        let mut counts = [0; InterestDimension::ALL.len()];
        for (dimension, _) in self
            .interests
            .keys()
            .filter_map(|k| InterestDimension::parse(k))
        {
            counts[dimension as usize] += 1;
        }
        for (dimension, count) in InterestDimension::ALL.into_iter().zip(counts) {
            if count > most {
                let mut entries: Vec<(String, f64)> = self
                    .interests
                    .iter()
                    .filter(|(k, _)| k.starts_with(dimension.prefix()))
                    .map(|(k, d)| (k.clone(), d.value_at(t, half_life)))
                    .collect();
                entries.sort_by(|a, b| b.1.total_cmp(&a.1));
                for (key, _) in entries.into_iter().skip(limit) {
                    self.interests.remove(&key);
                }
            }
        }
    }

    fn remember_item(&mut self, event: &BehaviorEvent, capacity: usize) {
        let Some(item_id) = &event.item_id else {
            return;
        };
        if let Some(pos) = self.recent.iter().position(|r| &r.item_id == item_id) {
            if self.recent[pos].at > event.occurred_at {
                return; // a late event about an item touched since
            }
            self.recent.remove(pos);
        }
        let entry = RecentItem {
            item_id: item_id.clone(),
            kind: event.kind.number(),
            at: event.occurred_at,
            category: event.category.clone().unwrap_or_default(),
        };
        let pos = self.recent.partition_point(|r| r.at >= entry.at);
        self.recent.insert(pos, entry);
        self.recent.truncate(capacity);
    }

    fn record_purchase(
        &mut self,
        event: &BehaviorEvent,
        context: EventContext,
        settings: &ModelSettings,
        reporting_currency: &str,
    ) {
        let unit_price = event
            .unit_price
            .as_ref()
            .filter(|p| p.currency == reporting_currency)
            .map(|p| p.amount_minor);
        let amount = unit_price.map_or(0, |p| p.saturating_mul(i64::from(event.quantity)));
        let pos = self
            .purchases
            .partition_point(|p| p.at <= event.occurred_at);
        self.purchases.insert(
            pos,
            Purchase {
                at: event.occurred_at,
                amount_minor: amount,
            },
        );
        let horizon = self.last_event_at - i64::from(settings.rfm.window_days) * DAY;
        let stale = self.purchases.partition_point(|p| p.at < horizon);
        let excess = self.purchases.len().saturating_sub(MAX_PURCHASES);
        self.purchases.drain(..stale.max(excess));

        let stats = self.price.get_or_insert_with(PriceStats::default);
        stats.purchases += 1;
        if event.discounted {
            stats.discounted += 1;
        }
        if let (Some(price), Some(typical)) = (unit_price, context.typical_price)
            && typical > 0.0
        {
            stats.ratio_sum += price as f64 / typical;
            stats.ratio_count += 1;
        }
    }

    /// Drops behavioural personalization data (after consent is withdrawn).
    pub fn forget_behavioural(&mut self) {
        self.interests.clear();
        self.recent.clear();
    }
}

/// Polarity at or above which a review counts as positive (and at or below its negative,
/// negative).
const POSITIVE: f32 = 0.2;

fn interest_weight(event: &BehaviorEvent, settings: &ModelSettings) -> f64 {
    let w = &settings.weights;
    match event.kind {
        BehaviorKind::View => w.view,
        BehaviorKind::Search => w.search,
        BehaviorKind::Click => w.click,
        BehaviorKind::AddToCart => w.add_to_cart,
        BehaviorKind::RemoveFromCart => w.remove_from_cart,
        BehaviorKind::Purchase => w.purchase * f64::from(event.quantity.min(10)),
        // 5 stars counts fully, 3 neutral, 1 against.
        BehaviorKind::Review => w.review * (f64::from(event.rating.unwrap_or(3)) - 3.0) / 2.0,
        BehaviorKind::Share => w.share,
    }
}

fn micros(d: std::time::Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Lifecycle segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// First seen recently (or never seen).
    New,
    /// Active recently.
    Active,
    /// Inactive for a while.
    AtRisk,
    /// Inactive for long.
    Churned,
}

impl Lifecycle {
    /// Stable name, stored and published.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Active => "active",
            Self::AtRisk => "at_risk",
            Self::Churned => "churned",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "new" => Some(Self::New),
            "active" => Some(Self::Active),
            "at_risk" => Some(Self::AtRisk),
            "churned" => Some(Self::Churned),
            _ => None,
        }
    }

    /// The segment at `now` of a user first seen at `first_seen` and last active at `last`
    /// (both 0 when never seen).
    pub fn at(first_seen: Micros, last: Micros, now: Micros, settings: &ModelSettings) -> Self {
        let lc = &settings.lifecycle;
        let days = |d: u32| i64::from(d) * DAY;
        if first_seen == 0 || now - first_seen <= days(lc.new_days) {
            Self::New
        } else if now - last <= days(lc.active_days) {
            Self::Active
        } else if now - last <= days(lc.churn_days) {
            Self::AtRisk
        } else {
            Self::Churned
        }
    }
}

/// Spending power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpendingTier {
    /// No purchases.
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Premium.
    Premium,
}

/// Price sensitivity summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensitivityLevel {
    /// No purchases.
    Unknown,
    /// Buys regardless of price.
    Low,
    /// In between.
    Medium,
    /// Buys cheap or discounted.
    High,
}

/// One interest, decayed to the view's time.
#[derive(Debug, Clone, PartialEq)]
pub struct Interest {
    /// Kind.
    pub dimension: InterestDimension,
    /// Category path, brand or tag.
    pub key: String,
    /// Decayed weight.
    pub weight: f64,
}

/// Recency, frequency, monetary.
#[derive(Debug, Clone, PartialEq)]
pub struct Rfm {
    /// Days since the latest purchase.
    pub recency_days: Option<f64>,
    /// Purchases in the window.
    pub frequency: i64,
    /// Spend in the window (minor units).
    pub monetary_minor: i64,
    /// Scores 1..=5, 0 without purchases.
    pub recency_score: i32,
    /// Frequency score.
    pub frequency_score: i32,
    /// Monetary score.
    pub monetary_score: i32,
}

/// Price sensitivity.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceSensitivity {
    /// Mean price paid / typical price.
    pub price_ratio: Option<f64>,
    /// Share of discounted purchases.
    pub discount_share: f64,
    /// Summary.
    pub level: SensitivityLevel,
}

/// Sentiment summary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SentimentSummary {
    /// Reviews.
    pub review_count: i64,
    /// Mean polarity.
    pub mean_polarity: f64,
    /// Positive reviews.
    pub positive_count: i64,
    /// Negative reviews.
    pub negative_count: i64,
    /// Mean rating, 0 without reviews.
    pub mean_rating: f64,
}

impl SentimentSummary {
    /// Summarises sums.
    pub fn of(stats: &SentimentStats) -> Self {
        let n = stats.reviews.max(1) as f64;
        Self {
            review_count: stats.reviews,
            mean_polarity: if stats.reviews == 0 {
                0.0
            } else {
                stats.polarity_sum / n
            },
            positive_count: stats.positive,
            negative_count: stats.negative,
            mean_rating: if stats.reviews == 0 {
                0.0
            } else {
                stats.rating_sum as f64 / n
            },
        }
    }
}

/// One dimension of the overall profile vector.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionScore {
    /// Configured name.
    pub name: String,
    /// 0..=1.
    pub value: f64,
    /// Normalised weight.
    pub weight: f64,
}

/// A profile as served.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileView {
    /// The user.
    pub user_id: String,
    /// Declared attributes.
    pub attributes: Attributes,
    /// Interests, strongest first, at most 50 per dimension.
    pub interests: Vec<Interest>,
    /// RFM.
    pub rfm: Rfm,
    /// Spending tier.
    pub spending_tier: SpendingTier,
    /// Price sensitivity.
    pub price_sensitivity: PriceSensitivity,
    /// Review sentiment.
    pub sentiment: SentimentSummary,
    /// Lifecycle at `compute_time`.
    pub lifecycle: Lifecycle,
    /// Weighted dimensions.
    pub dimensions: Vec<DimensionScore>,
    /// Σ value × weight.
    pub overall_score: f64,
    /// Events seen.
    pub event_count: i64,
    /// First event.
    pub first_seen_at: Option<Micros>,
    /// Latest event.
    pub last_event_at: Option<Micros>,
    /// When computed.
    pub compute_time: Micros,
    /// Consent.
    pub personalization_allowed: bool,
}

/// Interests listed per dimension in a view.
const VIEW_INTERESTS: usize = 50;

impl ProfileRecord {
    /// The profile as of `now`.
    pub fn view(&self, now: Micros, settings: &ModelSettings) -> ProfileView {
        let default_state = ProfileState::default();
        let state = self.state.as_ref().unwrap_or(&default_state);
        let half_life = micros(settings.interest_half_life);

        let mut interests: Vec<Interest> = if self.personalization_allowed {
            state
                .interests
                .iter()
                .filter_map(|(k, d)| {
                    let (dimension, key) = InterestDimension::parse(k)?;
                    let weight = d.value_at(now, half_life);
                    (weight > 1e-6).then(|| Interest {
                        dimension,
                        key: key.to_owned(),
                        weight,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        interests.sort_by(|a, b| {
            a.dimension
                .cmp(&b.dimension)
                .then(b.weight.total_cmp(&a.weight))
                .then_with(|| a.key.cmp(&b.key))
        });
        let mut per_dimension: HashMap<InterestDimension, usize> = HashMap::new();
        interests.retain(|i| {
            let n = per_dimension.entry(i.dimension).or_default();
            *n += 1;
            *n <= VIEW_INTERESTS
        });

        let rfm = rfm(state, now, settings);
        let spending_tier = if rfm.frequency == 0 {
            SpendingTier::Unknown
        } else {
            let t = &settings.rfm.spending_tiers_minor;
            match rfm.monetary_minor {
                m if m >= t[2] => SpendingTier::Premium,
                m if m >= t[1] => SpendingTier::High,
                m if m >= t[0] => SpendingTier::Medium,
                _ => SpendingTier::Low,
            }
        };
        let price_sensitivity = price_sensitivity(state.price.as_ref());
        let sentiment = state
            .sentiment
            .as_ref()
            .map(SentimentSummary::of)
            .unwrap_or_default();
        let lifecycle = Lifecycle::at(state.first_seen_at, state.last_event_at, now, settings);
        let engagement = state
            .engagement
            .map_or(0.0, |e| e.value_at(now, ENGAGEMENT_HALF_LIFE));
        let category_breadth = interests
            .iter()
            .filter(|i| i.dimension == InterestDimension::Category && i.weight >= 1.0)
            .count();

        let total_weight: f64 = settings.dimensions.iter().map(|d| d.weight).sum();
        let dimensions: Vec<DimensionScore> = settings
            .dimensions
            .iter()
            .map(|d| {
                let value = match d.source {
                    DimensionSource::Recency => f64::from(rfm.recency_score) / 5.0,
                    DimensionSource::Frequency => f64::from(rfm.frequency_score) / 5.0,
                    DimensionSource::Monetary => f64::from(rfm.monetary_score) / 5.0,
                    // 1 − e^(−x/10): ten recent events is about two thirds engaged.
                    DimensionSource::Engagement => 1.0 - (-engagement / 10.0).exp(),
                    DimensionSource::Sentiment => {
                        if sentiment.review_count == 0 {
                            0.5
                        } else {
                            f64::midpoint(sentiment.mean_polarity, 1.0)
                        }
                    }
                    DimensionSource::PriceTolerance => match price_sensitivity.level {
                        SensitivityLevel::Low => 1.0,
                        SensitivityLevel::Medium | SensitivityLevel::Unknown => 0.5,
                        SensitivityLevel::High => 0.0,
                    },
                    DimensionSource::InterestBreadth => (category_breadth as f64 / 10.0).min(1.0),
                };
                DimensionScore {
                    name: d.name.clone(),
                    value: value.clamp(0.0, 1.0),
                    weight: if total_weight > 0.0 {
                        d.weight / total_weight
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        let overall_score = dimensions.iter().map(|d| d.value * d.weight).sum();

        ProfileView {
            user_id: self.user_id.clone(),
            attributes: self.attributes.clone().unwrap_or_default(),
            interests,
            rfm,
            spending_tier,
            price_sensitivity,
            sentiment,
            lifecycle,
            dimensions,
            overall_score,
            event_count: state.event_count,
            first_seen_at: (state.first_seen_at != 0).then_some(state.first_seen_at),
            last_event_at: (state.last_event_at != 0).then_some(state.last_event_at),
            compute_time: now,
            personalization_allowed: self.personalization_allowed,
        }
    }
}

fn rfm(state: &ProfileState, now: Micros, settings: &ModelSettings) -> Rfm {
    let horizon = now - i64::from(settings.rfm.window_days) * DAY;
    let in_window = state
        .purchases
        .iter()
        .filter(|p| p.at >= horizon && p.at <= now);
    let (frequency, monetary_minor) = in_window.fold((0i64, 0i64), |(n, m), p| {
        (n + 1, m.saturating_add(p.amount_minor))
    });
    let recency_days = state
        .purchases
        .iter()
        .map(|p| p.at)
        .filter(|at| *at <= now)
        .max()
        .map(|at| (now - at) as f64 / DAY as f64);
    let r = &settings.rfm;
    // A value reaching n of the four ascending thresholds scores n + 1.
    let ladder = |reached: usize| 1 + i32::try_from(reached).unwrap_or(4);
    // Recency runs the other way: each threshold exceeded costs a point.
    let recency_score = recency_days.map_or(0, |days| {
        6 - ladder(r.recency_days.iter().filter(|t| days > **t).count())
    });
    let (frequency_score, monetary_score) = if frequency == 0 {
        (0, 0)
    } else {
        (
            ladder(r.frequency.iter().filter(|t| frequency >= **t).count()),
            ladder(
                r.monetary_minor
                    .iter()
                    .filter(|t| monetary_minor >= **t)
                    .count(),
            ),
        )
    };
    Rfm {
        recency_days,
        frequency,
        monetary_minor,
        recency_score,
        frequency_score,
        monetary_score,
    }
}

fn price_sensitivity(stats: Option<&PriceStats>) -> PriceSensitivity {
    let Some(stats) = stats.filter(|s| s.purchases > 0) else {
        return PriceSensitivity {
            price_ratio: None,
            discount_share: 0.0,
            level: SensitivityLevel::Unknown,
        };
    };
    let price_ratio = (stats.ratio_count > 0).then(|| stats.ratio_sum / stats.ratio_count as f64);
    let discount_share = stats.discounted as f64 / stats.purchases as f64;
    let cheap = price_ratio.is_some_and(|r| r < 0.8);
    let pricey = price_ratio.is_none_or(|r| r >= 1.1);
    let level = if discount_share >= 0.5 || cheap {
        SensitivityLevel::High
    } else if discount_share < 0.2 && pricey && price_ratio.is_some() {
        SensitivityLevel::Low
    } else {
        SensitivityLevel::Medium
    };
    PriceSensitivity {
        price_ratio,
        discount_share,
        level,
    }
}

#[cfg(test)]
mod tests;
