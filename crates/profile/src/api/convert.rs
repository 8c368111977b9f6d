//! Conversions between the wire (`tailor.profile.v1`) and the domain. Requests become
//! domain values (or field violations); domain results become responses.

use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::time::{Micros, from_timestamp, to_timestamp};
use tailor_proto::common::v1::{Money as PbMoney, TimeRange};
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::profile::v1 as pb;

use crate::domain::analytics::Funnel;
use crate::domain::event::{BehaviorKind, Money, RawEvent};
use crate::domain::profile::{
    Attributes, InterestDimension, Lifecycle, ProfileView, SensitivityLevel, SentimentSummary,
    SpendingTier,
};
use crate::domain::profiles::IngestReport;
use crate::domain::segment::{Condition, Rule};

/// Copies a wire event into a raw domain event; every check happens in the domain.
pub(crate) fn raw_event(e: pb::BehaviorEvent) -> RawEvent {
    let (occurred_at, occurred_at_malformed) = match &e.occurred_at {
        Some(ts) => match from_timestamp(ts) {
            Some(micros) => (Some(micros), false),
            None => (None, true),
        },
        None => (None, false),
    };
    let item = e.item.unwrap_or_default();
    RawEvent {
        event_id: e.event_id,
        user_id: e.user_id,
        kind: e.r#type,
        occurred_at,
        occurred_at_malformed,
        item_id: e.item_id,
        category: item.category,
        brand: item.brand,
        tags: item.tags,
        query: e.query,
        quantity: e.quantity,
        unit_price: e.unit_price.map(|p| Money {
            amount_minor: p.amount_minor,
            currency: p.currency,
        }),
        discounted: e.discounted,
        rating: e.rating,
        review_text: e.review_text,
        session_id: e.session_id,
    }
}

/// The rejections of a report, on the wire.
pub(crate) fn rejections(report: &IngestReport) -> Vec<pb::EventRejection> {
    report
        .rejected
        .iter()
        .map(|(index, event_id, r)| pb::EventRejection {
            index: i32::try_from(*index).unwrap_or(i32::MAX),
            event_id: event_id.clone(),
            field: r.field.to_owned(),
            reason: r.reason.clone(),
        })
        .collect()
}

/// Attributes from the wire; unknown enum numbers are violations.
pub(crate) fn attributes(a: pb::UserAttributes, violations: &mut FieldViolations) -> Attributes {
    if pb::Gender::try_from(a.gender).is_err() {
        violations.add("attributes.gender", format!("unknown gender {}", a.gender));
    }
    if pb::AgeBand::try_from(a.age_band).is_err() {
        violations.add(
            "attributes.age_band",
            format!("unknown age band {}", a.age_band),
        );
    }
    if a.region.len() > 64 {
        violations.add("attributes.region", "must be at most 64 bytes");
    }
    if a.occupation.len() > 128 {
        violations.add("attributes.occupation", "must be at most 128 bytes");
    }
    Attributes {
        gender: a.gender,
        age_band: a.age_band,
        region: a.region.trim().to_owned(),
        occupation: a.occupation.trim().to_owned(),
    }
}

/// Attributes on the wire.
pub(crate) fn attributes_out(a: Attributes) -> pb::UserAttributes {
    pb::UserAttributes {
        gender: a.gender,
        age_band: a.age_band,
        region: a.region,
        occupation: a.occupation,
    }
}

/// A user id argument: present and sane.
pub(crate) fn user_id(field: &str, value: &str, violations: &mut FieldViolations) {
    if value.trim().is_empty() {
        violations.add(field, "must be set");
    } else if value.len() > 128 || value.chars().any(char::is_control) {
        violations.add(
            field,
            "must be at most 128 bytes without control characters",
        );
    }
}

/// [start, end) in microseconds; both ends required.
pub(crate) fn time_range(
    field: &str,
    range: Option<&TimeRange>,
    violations: &mut FieldViolations,
) -> (Micros, Micros) {
    let Some(range) = range else {
        violations.add(field, "must be set");
        return (0, 0);
    };
    let mut end_of = |name: &str, ts: Option<&prost_types::Timestamp>| match ts.map(from_timestamp)
    {
        Some(Some(micros)) => micros,
        Some(None) => {
            violations.add(format!("{field}.{name}"), "is not a valid timestamp");
            0
        }
        None => {
            violations.add(format!("{field}.{name}"), "must be set");
            0
        }
    };
    let start = end_of("start_time", range.start_time.as_ref());
    let end = end_of("end_time", range.end_time.as_ref());
    (start, end)
}

/// Behaviour kinds from the wire (funnel steps).
pub(crate) fn kinds(
    field: &str,
    numbers: &[i32],
    violations: &mut FieldViolations,
) -> Vec<BehaviorKind> {
    numbers
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let kind = BehaviorKind::from_number(i64::from(*n));
            if kind.is_none() {
                violations.add(
                    format!("{field}[{i}]"),
                    format!("unknown behaviour type {n}"),
                );
            }
            kind
        })
        .collect()
}

fn interest_dimension(n: i32) -> Option<InterestDimension> {
    match pb::InterestDimension::try_from(n).ok()? {
        pb::InterestDimension::Category => Some(InterestDimension::Category),
        pb::InterestDimension::Brand => Some(InterestDimension::Brand),
        pb::InterestDimension::Tag => Some(InterestDimension::Tag),
        pb::InterestDimension::Unspecified => None,
    }
}

fn lifecycle(n: i32) -> Option<Lifecycle> {
    match pb::LifecycleSegment::try_from(n).ok()? {
        pb::LifecycleSegment::New => Some(Lifecycle::New),
        pb::LifecycleSegment::Active => Some(Lifecycle::Active),
        pb::LifecycleSegment::AtRisk => Some(Lifecycle::AtRisk),
        pb::LifecycleSegment::Churned => Some(Lifecycle::Churned),
        pb::LifecycleSegment::Unspecified => None,
    }
}

fn spending_tier(n: i32) -> Option<SpendingTier> {
    match pb::SpendingTier::try_from(n).ok()? {
        pb::SpendingTier::Low => Some(SpendingTier::Low),
        pb::SpendingTier::Medium => Some(SpendingTier::Medium),
        pb::SpendingTier::High => Some(SpendingTier::High),
        pb::SpendingTier::Premium => Some(SpendingTier::Premium),
        pb::SpendingTier::Unspecified => None,
    }
}

/// A segment rule from the wire, every condition checked.
pub(crate) fn rule(rule: Option<pb::SegmentRule>, violations: &mut FieldViolations) -> Rule {
    use pb::segment_condition::Condition as C;
    let mut out = Rule::default();
    for (i, condition) in rule.unwrap_or_default().conditions.into_iter().enumerate() {
        let at = |name: &str| format!("rule.conditions[{i}].{name}");
        match condition.condition {
            None => violations.add(format!("rule.conditions[{i}]"), "must set one condition"),
            Some(C::Interest(c)) => {
                let dimension = interest_dimension(c.dimension);
                if dimension.is_none() {
                    violations.add(at("interest.dimension"), "must be CATEGORY, BRAND or TAG");
                }
                if c.key.trim().is_empty() {
                    violations.add(at("interest.key"), "must be set");
                }
                if !(c.min_weight.is_finite() && c.min_weight > 0.0) {
                    violations.add(at("interest.min_weight"), "must be a positive number");
                }
                if let Some(dimension) = dimension {
                    let key = match dimension {
                        InterestDimension::Category => {
                            crate::domain::event::normalise_category(&c.key).unwrap_or_default()
                        }
                        _ => c.key.trim().to_lowercase(),
                    };
                    out.conditions.push(Condition::Interest {
                        dimension,
                        key,
                        min_weight: c.min_weight,
                    });
                }
            }
            Some(C::Lifecycle(c)) => {
                let any_of: Vec<Lifecycle> =
                    c.any_of.iter().filter_map(|n| lifecycle(*n)).collect();
                if any_of.is_empty() || any_of.len() != c.any_of.len() {
                    violations.add(at("lifecycle.any_of"), "must list known segments");
                }
                out.conditions.push(Condition::Lifecycle(any_of));
            }
            Some(C::SpendingTier(c)) => {
                let any_of: Vec<SpendingTier> =
                    c.any_of.iter().filter_map(|n| spending_tier(*n)).collect();
                if any_of.is_empty() || any_of.len() != c.any_of.len() {
                    violations.add(at("spending_tier.any_of"), "must list known tiers");
                }
                out.conditions.push(Condition::SpendingTier(any_of));
            }
            Some(C::Region(c)) => {
                if c.any_of.is_empty() {
                    violations.add(at("region.any_of"), "must list at least one region");
                }
                out.conditions.push(Condition::Region(c.any_of));
            }
            Some(C::Rfm(c)) => {
                if c.max_recency_days
                    .is_some_and(|d| !(d.is_finite() && d >= 0.0))
                {
                    violations.add(at("rfm.max_recency_days"), "must be a non-negative number");
                }
                out.conditions.push(Condition::Rfm {
                    min_frequency: c.min_frequency,
                    min_monetary_minor: c.min_monetary_minor,
                    max_recency_days: c.max_recency_days,
                });
            }
        }
    }
    out
}

fn sentiment(s: SentimentSummary) -> pb::SentimentSummary {
    pb::SentimentSummary {
        review_count: s.review_count,
        mean_polarity: s.mean_polarity,
        positive_count: s.positive_count,
        negative_count: s.negative_count,
        mean_rating: s.mean_rating,
    }
}

/// Item sentiment on the wire.
pub(crate) fn item_sentiment(item_id: String, s: SentimentSummary) -> pb::GetItemSentimentResponse {
    pb::GetItemSentimentResponse {
        item_id,
        sentiment: Some(sentiment(s)),
    }
}

/// A profile on the wire.
pub(crate) fn profile(v: ProfileView, currency: &str) -> pb::Profile {
    pb::Profile {
        user_id: v.user_id,
        attributes: Some(attributes_out(v.attributes)),
        interests: v
            .interests
            .into_iter()
            .map(|i| pb::Interest {
                dimension: match i.dimension {
                    InterestDimension::Category => pb::InterestDimension::Category,
                    InterestDimension::Brand => pb::InterestDimension::Brand,
                    InterestDimension::Tag => pb::InterestDimension::Tag,
                } as i32,
                key: i.key,
                weight: i.weight,
            })
            .collect(),
        rfm: Some(pb::Rfm {
            recency_days: v.rfm.recency_days,
            frequency: v.rfm.frequency,
            monetary: Some(PbMoney {
                amount_minor: v.rfm.monetary_minor,
                currency: currency.to_owned(),
            }),
            recency_score: v.rfm.recency_score,
            frequency_score: v.rfm.frequency_score,
            monetary_score: v.rfm.monetary_score,
        }),
        spending_tier: match v.spending_tier {
            SpendingTier::Unknown => pb::SpendingTier::Unspecified,
            SpendingTier::Low => pb::SpendingTier::Low,
            SpendingTier::Medium => pb::SpendingTier::Medium,
            SpendingTier::High => pb::SpendingTier::High,
            SpendingTier::Premium => pb::SpendingTier::Premium,
        } as i32,
        price_sensitivity: Some(pb::PriceSensitivity {
            price_ratio: v.price_sensitivity.price_ratio,
            discount_share: v.price_sensitivity.discount_share,
            level: match v.price_sensitivity.level {
                SensitivityLevel::Unknown => pb::PriceSensitivityLevel::Unspecified,
                SensitivityLevel::Low => pb::PriceSensitivityLevel::Low,
                SensitivityLevel::Medium => pb::PriceSensitivityLevel::Medium,
                SensitivityLevel::High => pb::PriceSensitivityLevel::High,
            } as i32,
        }),
        sentiment: Some(sentiment(v.sentiment)),
        lifecycle_segment: match v.lifecycle {
            Lifecycle::New => pb::LifecycleSegment::New,
            Lifecycle::Active => pb::LifecycleSegment::Active,
            Lifecycle::AtRisk => pb::LifecycleSegment::AtRisk,
            Lifecycle::Churned => pb::LifecycleSegment::Churned,
        } as i32,
        dimensions: v
            .dimensions
            .into_iter()
            .map(|d| pb::DimensionScore {
                name: d.name,
                value: d.value,
                weight: d.weight,
            })
            .collect(),
        overall_score: v.overall_score,
        event_count: v.event_count,
        first_seen_time: v.first_seen_at.map(to_timestamp),
        last_event_time: v.last_event_at.map(to_timestamp),
        compute_time: Some(to_timestamp(v.compute_time)),
        personalization_allowed: v.personalization_allowed,
    }
}

/// A funnel on the wire.
pub(crate) fn funnel(f: &Funnel) -> pb::Funnel {
    pb::Funnel {
        steps: f
            .steps
            .iter()
            .enumerate()
            .map(|(i, (kind, users))| pb::FunnelStep {
                r#type: kind.number(),
                users: *users,
                conversion_from_previous: f.conversion_from_previous(i),
                conversion_from_first: f.conversion_from_first(i),
            })
            .collect(),
    }
}

/// The default funnel.
pub(crate) const DEFAULT_FUNNEL: [BehaviorKind; 3] = [
    BehaviorKind::View,
    BehaviorKind::AddToCart,
    BehaviorKind::Purchase,
];

/// The wire enum number of a kind (for recent items).
pub(crate) fn behavior_type(kind: i32) -> i32 {
    BehaviorType::try_from(kind).map_or(0, |k| k as i32)
}
