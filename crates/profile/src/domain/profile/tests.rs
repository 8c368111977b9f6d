use super::*;
use crate::config::IngestSettings;
use crate::domain::event::{Money, RawEvent, validate};

const DAY_US: Micros = DAY;
const T0: Micros = 1_800_000_000_000_000;

fn event(kind: BehaviorKind, at_day: i64, item: &str, category: &str) -> BehaviorEvent {
    let raw = RawEvent {
        event_id: format!("{item}-{at_day}-{}", kind.number()),
        user_id: "u".into(),
        kind: kind.number(),
        occurred_at: Some(T0 + at_day * DAY_US),
        item_id: item.into(),
        category: category.into(),
        rating: if kind == BehaviorKind::Review { 5 } else { 0 },
        ..RawEvent::default()
    };
    // Validated as of day 395: nothing in the tests is old enough to be clamped.
    validate(raw, T0 + 395 * DAY_US, None, &IngestSettings::default()).unwrap()
}

fn purchase(at_day: i64, price_minor: i64, quantity: i32, discounted: bool) -> BehaviorEvent {
    let mut e = event(BehaviorKind::Purchase, at_day, "p", "home/kitchen");
    e.event_id = format!("purchase-{at_day}-{price_minor}");
    e.unit_price = Some(Money {
        amount_minor: price_minor,
        currency: "CNY".into(),
    });
    e.quantity = quantity;
    e.discounted = discounted;
    e
}

fn record(events: &[BehaviorEvent], settings: &ModelSettings, ctx: EventContext) -> ProfileRecord {
    let mut record = ProfileRecord::new("u");
    let state = record.state.as_mut().unwrap();
    for e in events {
        state.apply(e, ctx, settings, "CNY", true);
    }
    record
}

fn weight(view: &ProfileView, dimension: InterestDimension, key: &str) -> f64 {
    view.interests
        .iter()
        .find(|i| i.dimension == dimension && i.key == key)
        .map_or(0.0, |i| i.weight)
}

#[test]
fn interest_weights_match_hand_computed_values() {
    // Half-life 14 days; view (1) at day 0, cart (4) at day 14, read at day 28:
    // 1·2^-2 + 4·2^-1 = 2.25 for "electronics/phones" and its parent "electronics".
    let settings = ModelSettings::default();
    let events = [
        event(BehaviorKind::View, 0, "i1", "Electronics/Phones"),
        event(BehaviorKind::AddToCart, 14, "i1", "electronics/phones"),
        event(BehaviorKind::Click, 14, "i2", "books"),
    ];
    let view =
        record(&events, &settings, EventContext::default()).view(T0 + 28 * DAY_US, &settings);
    assert!((weight(&view, InterestDimension::Category, "electronics/phones") - 2.25).abs() < 1e-9);
    assert!((weight(&view, InterestDimension::Category, "electronics") - 2.25).abs() < 1e-9);
    // click (2) at day 14 read at day 28: 2·2^-1 = 1
    assert!((weight(&view, InterestDimension::Category, "books") - 1.0).abs() < 1e-9);
    assert_eq!(
        view.interests[0].key, "electronics",
        "strongest first, ties by key"
    );
}

#[test]
fn rfm_and_spending_tier_match_hand_computed_values() {
    let settings = ModelSettings::default();
    // Three purchases: 100.00 × 2 at day 0, 50.00 at day 300, 1000.00 at day 390;
    // read at day 400 with a 365-day window: the first falls out.
    let events = [
        purchase(0, 10_000, 2, false),
        purchase(300, 5_000, 1, true),
        purchase(390, 100_000, 1, false),
    ];
    let view =
        record(&events, &settings, EventContext::default()).view(T0 + 400 * DAY_US, &settings);
    assert_eq!(view.rfm.frequency, 2);
    assert_eq!(view.rfm.monetary_minor, 105_000);
    assert_eq!(view.rfm.recency_days, Some(10.0));
    // recency 10 days: exceeds the 7-day threshold only → 4
    assert_eq!(view.rfm.recency_score, 4);
    // frequency 2 reaches the first threshold (2) → 2
    assert_eq!(view.rfm.frequency_score, 2);
    // 105 000 reaches 20 000 and 100 000 → 3
    assert_eq!(view.rfm.monetary_score, 3);
    assert_eq!(view.spending_tier, SpendingTier::High);
}

#[test]
fn price_sensitivity_compares_with_the_typical_price() {
    let settings = ModelSettings::default();
    let ctx = EventContext {
        typical_price: Some(10_000.0),
        polarity: None,
    };
    let events = [purchase(0, 5_000, 1, false), purchase(1, 7_000, 1, true)];
    let view = record(&events, &settings, ctx).view(T0 + 2 * DAY_US, &settings);
    assert!((view.price_sensitivity.price_ratio.unwrap() - 0.6).abs() < 1e-12);
    assert!((view.price_sensitivity.discount_share - 0.5).abs() < 1e-12);
    assert_eq!(view.price_sensitivity.level, SensitivityLevel::High);
}

#[test]
fn lifecycle_moves_with_time() {
    let settings = ModelSettings::default();
    let first = T0;
    assert_eq!(Lifecycle::at(0, 0, T0, &settings), Lifecycle::New);
    assert_eq!(
        Lifecycle::at(first, first, first + 3 * DAY_US, &settings),
        Lifecycle::New
    );
    assert_eq!(
        Lifecycle::at(first, first + 10 * DAY_US, first + 20 * DAY_US, &settings),
        Lifecycle::Active
    );
    assert_eq!(
        Lifecycle::at(first, first + 10 * DAY_US, first + 60 * DAY_US, &settings),
        Lifecycle::AtRisk
    );
    assert_eq!(
        Lifecycle::at(first, first + 10 * DAY_US, first + 200 * DAY_US, &settings),
        Lifecycle::Churned
    );
}

#[test]
fn recent_items_are_distinct_newest_first_and_bounded() {
    let settings = ModelSettings {
        recent_items: 2,
        ..ModelSettings::default()
    };
    let events = [
        event(BehaviorKind::View, 0, "a", "x"),
        event(BehaviorKind::View, 1, "b", "x"),
        event(BehaviorKind::View, 3, "a", "x"),
        event(BehaviorKind::View, 2, "c", "x"),
    ];
    let record = record(&events, &settings, EventContext::default());
    let items: Vec<&str> = record
        .state
        .as_ref()
        .unwrap()
        .recent
        .iter()
        .map(|r| r.item_id.as_str())
        .collect();
    assert_eq!(items, vec!["a", "c"]);
}

#[test]
fn opted_out_users_get_no_behavioural_personalization() {
    let settings = ModelSettings::default();
    let mut record = ProfileRecord::new("u");
    record.personalization_allowed = false;
    record.state.as_mut().unwrap().apply(
        &event(BehaviorKind::View, 0, "i", "books"),
        EventContext::default(),
        &settings,
        "CNY",
        false,
    );
    let view = record.view(T0 + DAY_US, &settings);
    assert!(view.interests.is_empty());
    assert!(record.state.unwrap().recent.is_empty());
    assert_eq!(view.event_count, 1);
}

#[test]
fn dimensions_are_weighted_and_normalised() {
    let settings = ModelSettings::default();
    let view = record(
        &[event(BehaviorKind::View, 0, "i", "a")],
        &settings,
        EventContext::default(),
    )
    .view(T0, &settings);
    let total: f64 = view.dimensions.iter().map(|d| d.weight).sum();
    assert!((total - 1.0).abs() < 1e-12);
    assert!(
        view.dimensions
            .iter()
            .all(|d| (0.0..=1.0).contains(&d.value))
    );
    assert!((0.0..=1.0).contains(&view.overall_score));
}

#[test]
fn the_weakest_interests_are_forgotten_beyond_the_limit() {
    let settings = ModelSettings {
        max_interests_per_dimension: 4,
        ..ModelSettings::default()
    };
    let events: Vec<BehaviorEvent> = (0..6)
        .map(|i| event(BehaviorKind::View, i, &format!("i{i}"), &format!("cat{i}")))
        .collect();
    let record = record(&events, &settings, EventContext::default());
    let categories = record
        .state
        .unwrap()
        .interests
        .keys()
        .filter(|k| k.starts_with("c:"))
        .count();
    assert_eq!(
        categories, 4,
        "pruned down to the limit once it exceeded it by a quarter"
    );
}
