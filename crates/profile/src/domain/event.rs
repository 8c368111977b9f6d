//! Behaviour events: what a raw event must satisfy to be accepted, and the clean form the
//! rest of the service works with. Each event is judged on its own, so one bad event in a
//! batch never costs the good ones.

use tailor_kit::time::Micros;

use crate::config::IngestSettings;

/// What a user did. Numbers match `tailor.events.v1.BehaviorType` and are stored as-is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BehaviorKind {
    /// Viewed an item's page.
    View = 1,
    /// Searched.
    Search = 2,
    /// Clicked an item in a list.
    Click = 3,
    /// Added to cart.
    AddToCart = 4,
    /// Removed from cart.
    RemoveFromCart = 5,
    /// Bought.
    Purchase = 6,
    /// Reviewed.
    Review = 7,
    /// Shared.
    Share = 8,
}

impl BehaviorKind {
    /// Every kind, in number order.
    pub const ALL: [Self; 8] = [
        Self::View,
        Self::Search,
        Self::Click,
        Self::AddToCart,
        Self::RemoveFromCart,
        Self::Purchase,
        Self::Review,
        Self::Share,
    ];

    /// The kind with protocol number `n`.
    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as i64 == n)
    }

    /// The protocol number.
    pub fn number(self) -> i32 {
        self as i32
    }
}

/// A monetary amount in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// Minor units (cents, fen).
    pub amount_minor: i64,
    /// ISO-4217 code.
    pub currency: String,
}

/// An event as received, before any check (the API copies fields over, nothing more).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEvent {
    /// Client event id.
    pub event_id: String,
    /// Acting user.
    pub user_id: String,
    /// Protocol number of the behaviour type (0 when unset).
    pub kind: i32,
    /// Client time, if given.
    pub occurred_at: Option<Micros>,
    /// Whether a timestamp was given but could not be represented.
    pub occurred_at_malformed: bool,
    /// Item id, empty when absent.
    pub item_id: String,
    /// Category path.
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Search text.
    pub query: String,
    /// Quantity (0 = 1).
    pub quantity: i32,
    /// Unit price, if given.
    pub unit_price: Option<Money>,
    /// Bought on discount.
    pub discounted: bool,
    /// Rating 1..5 (0 = none).
    pub rating: i32,
    /// Review text.
    pub review_text: String,
    /// Session id.
    pub session_id: String,
}

/// An accepted, normalised behaviour event.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviorEvent {
    /// Client event id.
    pub event_id: String,
    /// Acting user.
    pub user_id: String,
    /// What happened.
    pub kind: BehaviorKind,
    /// When (clamped to the retention horizon).
    pub occurred_at: Micros,
    /// Item acted upon (absent only for searches).
    pub item_id: Option<String>,
    /// Normalised category path: lower case, no empty segments, e.g. `electronics/phones`.
    pub category: Option<String>,
    /// Normalised brand (lower case).
    pub brand: Option<String>,
    /// Normalised tags (lower case, deduplicated).
    pub tags: Vec<String>,
    /// Search text.
    pub query: Option<String>,
    /// Quantity, at least 1.
    pub quantity: i32,
    /// Unit price.
    pub unit_price: Option<Money>,
    /// Bought on discount.
    pub discounted: bool,
    /// Rating 1..5 (reviews only).
    pub rating: Option<u8>,
    /// Review text.
    pub review_text: Option<String>,
    /// Session id.
    pub session_id: Option<String>,
}

/// Why one event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The offending field.
    pub field: &'static str,
    /// Human-readable reason.
    pub reason: String,
}

impl Rejection {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

const MAX_ID_LEN: usize = 128;
const MAX_TEXT_LEN: usize = 5_000;
const MAX_TAGS: usize = 32;
const MAX_QUANTITY: i32 = 100_000;

/// Checks one raw event at time `now`. `acting_for` is the end user the caller acts for,
/// if any: such a caller may only record that user's events.
pub fn validate(
    raw: RawEvent,
    now: Micros,
    acting_for: Option<&str>,
    settings: &IngestSettings,
) -> Result<BehaviorEvent, Rejection> {
    check_id("event_id", &raw.event_id)?;
    check_id("user_id", &raw.user_id)?;
    if let Some(user) = acting_for
        && user != raw.user_id
    {
        return Err(Rejection::new(
            "user_id",
            "a caller acting for a user may only record that user's events",
        ));
    }
    let kind = match raw.kind {
        0 => return Err(Rejection::new("type", "must be set")),
        n => BehaviorKind::from_number(i64::from(n))
            .ok_or_else(|| Rejection::new("type", format!("unknown behaviour type {n}")))?,
    };
    if raw.occurred_at_malformed {
        return Err(Rejection::new("occurred_at", "is not a valid timestamp"));
    }
    let occurred_at = raw
        .occurred_at
        .ok_or_else(|| Rejection::new("occurred_at", "must be set"))?;
    let skew = micros(settings.max_future_skew);
    if occurred_at > now.saturating_add(skew) {
        return Err(Rejection::new(
            "occurred_at",
            format!(
                "is more than {} in the future",
                humantime::format_duration(settings.max_future_skew)
            ),
        ));
    }
    // Old events are kept but clamped, so decay and retention stay bounded.
    let occurred_at = occurred_at.max(now.saturating_sub(micros(settings.max_event_age)));

    let item_id = optional_text(&raw.item_id);
    if let Some(item) = &item_id {
        check_id("item_id", item)?;
    } else if kind != BehaviorKind::Search {
        return Err(Rejection::new(
            "item_id",
            "must be set for this behaviour type",
        ));
    }
    let query = optional_text(&raw.query);
    if kind == BehaviorKind::Search && query.is_none() {
        return Err(Rejection::new("query", "must be set for a search"));
    }
    if query.as_ref().is_some_and(|q| q.chars().count() > 1_000) {
        return Err(Rejection::new("query", "must be at most 1000 characters"));
    }
    if !(0..=MAX_QUANTITY).contains(&raw.quantity) {
        return Err(Rejection::new(
            "quantity",
            format!("must be between 0 and {MAX_QUANTITY}"),
        ));
    }
    if let Some(price) = &raw.unit_price {
        if price.amount_minor < 0 {
            return Err(Rejection::new(
                "unit_price.amount_minor",
                "must not be negative",
            ));
        }
        if !(price.currency.len() == 3 && price.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(Rejection::new(
                "unit_price.currency",
                "must be an ISO-4217 code such as CNY",
            ));
        }
    }
    let rating = match kind {
        BehaviorKind::Review => match u8::try_from(raw.rating) {
            Ok(r @ 1..=5) => Some(r),
            _ => {
                return Err(Rejection::new(
                    "rating",
                    "must be between 1 and 5 for a review",
                ));
            }
        },
        _ => None,
    };
    if raw.review_text.chars().count() > MAX_TEXT_LEN {
        return Err(Rejection::new(
            "review_text",
            format!("must be at most {MAX_TEXT_LEN} characters"),
        ));
    }
    if raw.tags.len() > MAX_TAGS {
        return Err(Rejection::new(
            "item.tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let category = normalise_category(&raw.category);
    if category.as_ref().is_some_and(|c| c.len() > 256) {
        return Err(Rejection::new("item.category", "must be at most 256 bytes"));
    }
    let mut tags: Vec<String> = raw
        .tags
        .iter()
        .filter_map(|t| optional_text(t).map(|t| t.to_lowercase()))
        .filter(|t| t.len() <= 64)
        .collect();
    tags.sort();
    tags.dedup();

    Ok(BehaviorEvent {
        event_id: raw.event_id,
        user_id: raw.user_id,
        kind,
        occurred_at,
        item_id,
        category,
        brand: optional_text(&raw.brand)
            .map(|b| b.to_lowercase())
            .filter(|b| b.len() <= 128),
        tags,
        query,
        quantity: raw.quantity.max(1),
        unit_price: raw.unit_price,
        discounted: raw.discounted,
        rating,
        review_text: optional_text(&raw.review_text),
        session_id: optional_text(&raw.session_id).filter(|s| s.len() <= MAX_ID_LEN),
    })
}

fn micros(d: std::time::Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn check_id(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(Rejection::new(field, "must be set"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Rejection::new(
            field,
            format!("must be at most {MAX_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Rejection::new(field, "must not contain control characters"));
    }
    Ok(())
}

fn optional_text(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// `" Electronics//Phones/ "` → `electronics/phones`.
pub fn normalise_category(raw: &str) -> Option<String> {
    let path: Vec<String> = raw
        .split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect();
    (!path.is_empty()).then(|| path.join("/"))
}

/// `electronics/phones/android` → `electronics`, `electronics/phones`, `electronics/phones/android`.
pub fn category_prefixes(category: &str) -> impl Iterator<Item = &str> {
    category
        .match_indices('/')
        .map(|(i, _)| &category[..i])
        .chain(std::iter::once(category))
}

/// The top-level category of a path.
pub fn top_level(category: &str) -> &str {
    category.split('/').next().unwrap_or(category)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: Micros = 1_800_000_000_000_000;

    fn raw() -> RawEvent {
        RawEvent {
            event_id: "e1".into(),
            user_id: "u1".into(),
            kind: BehaviorKind::View.number(),
            occurred_at: Some(NOW - 1_000_000),
            item_id: "i1".into(),
            ..RawEvent::default()
        }
    }

    fn check(raw: RawEvent) -> Result<BehaviorEvent, Rejection> {
        validate(raw, NOW, None, &IngestSettings::default())
    }

    fn field_of(raw: RawEvent) -> &'static str {
        check(raw).unwrap_err().field
    }

    #[test]
    fn a_plain_view_is_accepted_and_normalised() {
        let event = check(RawEvent {
            category: " Electronics//Phones/ ".into(),
            brand: " Apple ".into(),
            tags: vec!["5G".into(), "5g".into(), " ".into()],
            ..raw()
        })
        .unwrap();
        assert_eq!(event.kind, BehaviorKind::View);
        assert_eq!(event.category.as_deref(), Some("electronics/phones"));
        assert_eq!(event.brand.as_deref(), Some("apple"));
        assert_eq!(event.tags, vec!["5g"]);
        assert_eq!(event.quantity, 1);
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(
            field_of(RawEvent {
                event_id: String::new(),
                ..raw()
            }),
            "event_id"
        );
        assert_eq!(
            field_of(RawEvent {
                user_id: " ".into(),
                ..raw()
            }),
            "user_id"
        );
        assert_eq!(field_of(RawEvent { kind: 0, ..raw() }), "type");
        assert_eq!(field_of(RawEvent { kind: 42, ..raw() }), "type");
        assert_eq!(
            field_of(RawEvent {
                occurred_at: None,
                ..raw()
            }),
            "occurred_at"
        );
        assert_eq!(
            field_of(RawEvent {
                item_id: String::new(),
                ..raw()
            }),
            "item_id"
        );
        assert_eq!(
            field_of(RawEvent {
                kind: BehaviorKind::Search.number(),
                item_id: String::new(),
                ..raw()
            }),
            "query"
        );
        assert_eq!(
            field_of(RawEvent {
                kind: BehaviorKind::Review.number(),
                rating: 6,
                ..raw()
            }),
            "rating"
        );
        assert_eq!(
            field_of(RawEvent {
                unit_price: Some(Money {
                    amount_minor: -1,
                    currency: "CNY".into()
                }),
                ..raw()
            }),
            "unit_price.amount_minor"
        );
        assert_eq!(
            field_of(RawEvent {
                unit_price: Some(Money {
                    amount_minor: 1,
                    currency: "yuan".into()
                }),
                ..raw()
            }),
            "unit_price.currency"
        );
        assert_eq!(
            field_of(RawEvent {
                quantity: -2,
                ..raw()
            }),
            "quantity"
        );
    }

    #[test]
    fn future_events_are_refused_and_old_ones_clamped() {
        let settings = IngestSettings::default();
        let skew = micros(settings.max_future_skew);
        assert_eq!(
            field_of(RawEvent {
                occurred_at: Some(NOW + skew + 1),
                ..raw()
            }),
            "occurred_at"
        );
        assert!(
            check(RawEvent {
                occurred_at: Some(NOW + skew),
                ..raw()
            })
            .is_ok()
        );
        let old = check(RawEvent {
            occurred_at: Some(0),
            ..raw()
        })
        .unwrap();
        assert_eq!(old.occurred_at, NOW - micros(settings.max_event_age));
    }

    #[test]
    fn a_caller_acting_for_a_user_cannot_write_for_another() {
        let err =
            validate(raw(), NOW, Some("someone-else"), &IngestSettings::default()).unwrap_err();
        assert_eq!(err.field, "user_id");
        assert!(validate(raw(), NOW, Some("u1"), &IngestSettings::default()).is_ok());
    }

    #[test]
    fn category_prefixes_walk_down_the_path() {
        let prefixes: Vec<&str> = category_prefixes("a/b/c").collect();
        assert_eq!(prefixes, vec!["a", "a/b", "a/b/c"]);
        assert_eq!(top_level("a/b"), "a");
    }

    proptest! {
        #[test]
        fn validation_never_panics(
            event_id in ".{0,200}", user_id in ".{0,200}", kind in -5i32..20,
            at in proptest::option::of(any::<i64>()), item in ".{0,300}", rating in -10i32..10,
            quantity in any::<i32>(), price in proptest::option::of(any::<i64>()),
        ) {
            let raw = RawEvent {
                event_id, user_id, kind, occurred_at: at, item_id: item, rating, quantity,
                unit_price: price.map(|amount_minor| Money { amount_minor, currency: "CNY".into() }),
                ..RawEvent::default()
            };
            let _ = validate(raw, NOW, None, &IngestSettings::default());
        }
    }
}
