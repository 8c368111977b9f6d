//! Simulated shoppers and what they do: who they are (favourite categories, price
//! sensitivity, how often they come, region, age band) and their sessions over the window
//! (search, views, clicks, cart, purchases of items and of what goes with them, reviews a
//! few days later, shares).
//!
//! Every shopper draws from its own random stream derived from the seed and its number, so
//! shopper 12 is the same with `--users 20` and `--users 300`, and a run is reproducible.
//! Event ids are derived from the seed, the window and the shopper, so seeding the same
//! system twice stores nothing twice.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tailor_kit::time::{DAY, Micros, SECOND};

use super::catalog::Catalog;

/// What a shopper did; the numbers are `tailor.events.v1.BehaviorType`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Viewed an item.
    View = 1,
    /// Searched.
    Search = 2,
    /// Clicked an item.
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

impl Kind {
    /// Every kind, in number order.
    pub const ALL: [Kind; 8] = [
        Kind::View,
        Kind::Search,
        Kind::Click,
        Kind::AddToCart,
        Kind::RemoveFromCart,
        Kind::Purchase,
        Kind::Review,
        Kind::Share,
    ];

    /// Name for summaries.
    pub fn name(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Search => "search",
            Kind::Click => "click",
            Kind::AddToCart => "add_to_cart",
            Kind::RemoveFromCart => "remove_from_cart",
            Kind::Purchase => "purchase",
            Kind::Review => "review",
            Kind::Share => "share",
        }
    }
}

/// Declared age band (the `tailor.profile.v1.AgeBand` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeBand {
    /// Under 18.
    Under18 = 1,
    /// 18 to 24.
    From18To24 = 2,
    /// 25 to 34.
    From25To34 = 3,
    /// 35 to 44.
    From35To44 = 4,
    /// 45 to 54.
    From45To54 = 5,
    /// 55 or older.
    From55 = 6,
}

/// Declared gender (the `tailor.profile.v1.Gender` numbers; 0 = not declared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    /// Not declared.
    Undeclared = 0,
    /// Female.
    Female = 1,
    /// Male.
    Male = 2,
    /// Another gender.
    Other = 3,
}

/// Language a shopper writes reviews and searches in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// English.
    English,
    /// Chinese.
    Chinese,
}

/// One simulated shopper.
#[derive(Debug, Clone, PartialEq)]
pub struct Shopper {
    /// e.g. `shopper-0012`.
    pub user_id: String,
    /// One or two favourite categories (indexes into the catalog's categories).
    pub favourites: Vec<usize>,
    /// 0 (buys regardless of price) to 1 (buys cheap and discounted).
    pub price_sensitivity: f64,
    /// Region code (ISO 3166-2:CN).
    pub region: &'static str,
    /// Age band.
    pub age_band: AgeBand,
    /// Gender.
    pub gender: Gender,
    /// Occupation, when declared.
    pub occupation: Option<&'static str>,
    /// Language of searches and reviews.
    pub language: Language,
}

/// One behaviour event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique per shopper and stable across runs with the same seed and window.
    pub event_id: String,
    /// The shopper.
    pub user_id: String,
    /// What happened.
    pub kind: Kind,
    /// When (within the window, never in the future).
    pub at: Micros,
    /// The product (index into the catalog); None for searches.
    pub item: Option<usize>,
    /// Search text.
    pub query: Option<String>,
    /// Units (cart and purchases).
    pub quantity: i32,
    /// Unit price paid (purchases) or shown (cart), in fen.
    pub unit_price: Option<i64>,
    /// A coupon or promotion applied.
    pub discounted: bool,
    /// Rating 1..5 (reviews).
    pub rating: i32,
    /// Review text.
    pub review_text: Option<String>,
    /// The app session.
    pub session_id: String,
}

/// What shopper `index` (0-based) of a run with `seed` did in the `days` before `now`,
/// in time order.
pub fn simulate(
    catalog: &Catalog,
    seed: u64,
    index: usize,
    days: u32,
    now: Micros,
) -> (Shopper, Vec<Event>) {
    let mut rng = StdRng::seed_from_u64(mix(seed, index as u64));
    let shopper = shopper(catalog, index, &mut rng);
    let window_start = now - i64::from(days) * DAY;
    // Most shoppers come once or twice a week; a few come every day.
    let per_day = 0.08 + 0.9 * rng.random::<f64>().powi(3);
    let sessions = ((per_day * f64::from(days)).round() as usize).max(1);
    // Some shoppers joined during the window; some drifted away before its end.
    let joined =
        window_start + (rng.random::<f64>().powi(2) * 0.6 * f64::from(days) * DAY as f64) as i64;
    let left = if rng.random_bool(0.15) {
        joined + ((now - joined) as f64 * rng.random_range(0.3..0.7)) as i64
    } else {
        now
    };
    let mut starts: Vec<Micros> = (0..sessions)
        .map(|_| session_start(joined, left, &mut rng))
        .collect();
    starts.sort_unstable();

    let mut sim = Simulation {
        catalog,
        shopper: &shopper,
        rng,
        events: Vec::new(),
        now,
        prefix: format!("demo-{:08x}-{}", run_key(catalog, seed, days), index + 1),
    };
    for (s, start) in starts.into_iter().enumerate() {
        sim.session(s, start);
    }
    let mut events = sim.events;
    // Reviews come days after their purchase; keep the whole history in time order.
    events.sort_by_key(|e| e.at);
    events.retain(|e| e.at >= window_start && e.at <= now);
    (shopper, events)
}

/// Regions, roughly by online shoppers (ISO 3166-2:CN).
const REGIONS: &[(&str, u32)] = &[
    ("CN-GD", 14),
    ("CN-ZJ", 10),
    ("CN-JS", 10),
    ("CN-SH", 9),
    ("CN-BJ", 8),
    ("CN-SD", 7),
    ("CN-SC", 6),
    ("CN-FJ", 5),
    ("CN-HB", 5),
    ("CN-HN", 4),
    ("CN-HK", 2),
];

const AGE_BANDS: &[(AgeBand, u32)] = &[
    (AgeBand::Under18, 3),
    (AgeBand::From18To24, 25),
    (AgeBand::From25To34, 35),
    (AgeBand::From35To44, 20),
    (AgeBand::From45To54, 12),
    (AgeBand::From55, 5),
];

const GENDERS: &[(Gender, u32)] = &[
    (Gender::Female, 55),
    (Gender::Male, 40),
    (Gender::Other, 1),
    (Gender::Undeclared, 4),
];

const OCCUPATIONS: &[&str] = &[
    "student",
    "engineer",
    "teacher",
    "designer",
    "nurse",
    "office worker",
    "self-employed",
    "retired",
];

/// Share of each local hour (UTC+8) among session starts: lunch and evening peaks.
const HOURS: [u32; 24] = [
    2, 1, 1, 1, 1, 1, 2, 4, 6, 6, 6, 7, 10, 9, 6, 6, 6, 7, 8, 11, 14, 15, 12, 6,
];

fn shopper(catalog: &Catalog, index: usize, rng: &mut StdRng) -> Shopper {
    let categories = catalog.categories.len();
    let mut favourites = vec![rng.random_range(0..categories)];
    if categories > 1 && rng.random_bool(0.4) {
        let second = (favourites[0] + rng.random_range(1..categories)) % categories;
        favourites.push(second);
    }
    Shopper {
        user_id: format!("shopper-{:04}", index + 1),
        favourites,
        // Skewed towards thrift: most shoppers care about price, a few do not at all.
        price_sensitivity: rng.random::<f64>().powf(0.7),
        region: weighted(REGIONS, rng),
        age_band: weighted(AGE_BANDS, rng),
        gender: weighted(GENDERS, rng),
        occupation: rng
            .random_bool(0.7)
            .then(|| OCCUPATIONS[rng.random_range(0..OCCUPATIONS.len())]),
        language: if rng.random_bool(0.55) {
            Language::Chinese
        } else {
            Language::English
        },
    }
}

/// A session start in [from, to), at a plausible local hour.
fn session_start(from: Micros, to: Micros, rng: &mut StdRng) -> Micros {
    let at = rng.random_range(from..to.max(from + 1));
    let day = at.div_euclid(DAY) * DAY;
    let local_hour = weighted_index(&HOURS, rng) as i64;
    let minute = rng.random_range(0..3600) * SECOND;
    // UTC+8: local hour h is UTC hour h - 8.
    let start = day + (local_hour - 8) * 3600 * SECOND + minute;
    start.clamp(from, to)
}

struct Simulation<'a> {
    catalog: &'a Catalog,
    shopper: &'a Shopper,
    rng: StdRng,
    events: Vec<Event>,
    now: Micros,
    prefix: String,
}

impl Simulation<'_> {
    fn push(&mut self, kind: Kind, at: Micros, item: Option<usize>, session: &str) -> &mut Event {
        let n = self.events.len();
        self.events.push(Event {
            event_id: format!("{}-{n}", self.prefix),
            user_id: self.shopper.user_id.clone(),
            kind,
            at,
            item,
            query: None,
            quantity: 0,
            unit_price: None,
            discounted: false,
            rating: 0,
            review_text: None,
            session_id: session.to_owned(),
        });
        let last = self.events.len() - 1;
        &mut self.events[last]
    }

    fn gap(&mut self, low: i64, high: i64) -> Micros {
        self.rng.random_range(low..high) * SECOND
    }

    /// Browsing one category: maybe a search, views, clicks, cart, purchases.
    fn session(&mut self, number: usize, start: Micros) {
        let session = format!("{}-s{number}", self.prefix);
        let catalog = self.catalog;
        let category = if self.rng.random_bool(0.75) {
            let favourites = &self.shopper.favourites;
            favourites[self.rng.random_range(0..favourites.len())]
        } else {
            self.rng.random_range(0..catalog.categories.len())
        };
        let mut at = start;
        let mut seen: Vec<usize> = Vec::new();
        let views = 1 + (self.rng.random::<f64>().powi(2) * 9.0) as usize;
        for _ in 0..views * 2 {
            if seen.len() == views {
                break;
            }
            if let Some(item) = catalog.pick(category, &mut self.rng)
                && !seen.contains(&item)
            {
                seen.push(item);
            }
        }
        if let Some(&first) = seen.first()
            && self.rng.random_bool(0.3)
        {
            let query = self.query(first);
            self.push(Kind::Search, at, None, &session).query = Some(query);
            at += self.gap(3, 20);
        }
        let mut cart = Vec::new();
        for item in seen {
            at = self.browse(item, at, &session, &mut cart);
        }
        for item in cart {
            at = self.checkout(item, at, &session);
        }
    }

    /// View, maybe click, share, add to cart.
    fn browse(
        &mut self,
        item: usize,
        mut at: Micros,
        session: &str,
        cart: &mut Vec<usize>,
    ) -> Micros {
        self.push(Kind::View, at, Some(item), session);
        at += self.gap(5, 90);
        if self.rng.random_bool(0.02) {
            self.push(Kind::Share, at, Some(item), session);
            at += self.gap(5, 30);
        }
        if !self.rng.random_bool(0.35) {
            return at;
        }
        self.push(Kind::Click, at, Some(item), session);
        at += self.gap(10, 120);
        let product = &self.catalog.products[item];
        // Price-sensitive shoppers put expensive items in the cart less often.
        let appeal = self.price_appeal(item);
        if product.available && self.rng.random_bool((0.3 * appeal).clamp(0.0, 0.9)) {
            let price = product.price_minor;
            let event = self.push(Kind::AddToCart, at, Some(item), session);
            event.quantity = 1;
            event.unit_price = Some(price);
            cart.push(item);
            at += self.gap(5, 60);
        }
        at
    }

    /// Buy or abandon a cart item; a bought item often brings what goes with it.
    fn checkout(&mut self, item: usize, mut at: Micros, session: &str) -> Micros {
        let appeal = self.price_appeal(item);
        if !self.rng.random_bool((0.5 * appeal).clamp(0.05, 0.9)) {
            if self.rng.random_bool(0.4) {
                self.push(Kind::RemoveFromCart, at, Some(item), session)
                    .quantity = 1;
                at += self.gap(5, 30);
            }
            return at;
        }
        let product = &self.catalog.products[item];
        let sensitivity = self.shopper.price_sensitivity;
        let discounted = self.rng.random_bool(0.1 + 0.45 * sensitivity);
        let paid = if discounted {
            // 5 to 25 % off, rounded to whole fen.
            let off = self.rng.random_range(5..=25);
            product.price_minor * (100 - off) / 100
        } else {
            product.price_minor
        };
        let quantity = if product.price_minor < 10_000 && self.rng.random_bool(0.15) {
            2
        } else {
            1
        };
        let event = self.push(Kind::Purchase, at, Some(item), session);
        event.quantity = quantity;
        event.unit_price = Some(paid);
        event.discounted = discounted;
        let bought_at = at;
        at += self.gap(20, 120);
        if self.rng.random_bool(0.3) {
            self.review(item, bought_at, session);
        }
        let with: Vec<usize> = self.catalog.companions[item].clone();
        {
            for companion in with {
                if self.catalog.products[companion].available && self.rng.random_bool(0.55) {
                    // Through the same funnel, so views ≥ clicks ≥ carts ≥ purchases holds.
                    self.push(Kind::View, at, Some(companion), session);
                    at += self.gap(5, 40);
                    self.push(Kind::Click, at, Some(companion), session);
                    at += self.gap(5, 40);
                    let price = self.catalog.products[companion].price_minor;
                    let event = self.push(Kind::AddToCart, at, Some(companion), session);
                    event.quantity = 1;
                    event.unit_price = Some(price);
                    at += self.gap(5, 40);
                    // Companions are cheap add-ons: nearly always bought once in the cart.
                    if self.rng.random_bool(0.85) {
                        let event = self.push(Kind::Purchase, at, Some(companion), session);
                        event.quantity = 1;
                        event.unit_price = Some(price);
                        at += self.gap(10, 60);
                    }
                }
            }
        }
        at
    }

    /// A review one to five days after the purchase (dropped later if that is in the future).
    fn review(&mut self, item: usize, bought_at: Micros, session: &str) {
        let at = bought_at + self.gap(86_400, 5 * 86_400);
        if at > self.now {
            return;
        }
        let rating = weighted(&[(5, 45), (4, 30), (3, 12), (2, 7), (1, 6)], &mut self.rng);
        let text = self
            .rng
            .random_bool(0.8)
            .then(|| review_text(rating, self.shopper.language, &mut self.rng).to_owned());
        let event = self.push(Kind::Review, at, Some(item), session);
        event.rating = rating;
        event.review_text = text;
    }

    /// How much the price pulls (above 1) or pushes (below 1), given the shopper's sensitivity.
    fn price_appeal(&self, item: usize) -> f64 {
        let relative = self.catalog.relative_price(item).max(0.05);
        relative
            .powf(-self.shopper.price_sensitivity)
            .clamp(0.2, 1.8)
    }

    /// What the shopper types to find `item`.
    fn query(&mut self, item: usize) -> String {
        let keywords = &self.catalog.products[item].keywords;
        let chinese = keywords.iter().find(|k| !k.is_ascii());
        match (self.shopper.language, chinese) {
            (Language::Chinese, Some(zh)) => zh.clone(),
            _ => keywords.first().cloned().unwrap_or_default(),
        }
    }
}

/// Short review texts whose tone matches the rating.
fn review_text(rating: i32, language: Language, rng: &mut StdRng) -> &'static str {
    let texts: &[&str] = match (language, rating) {
        (Language::English, 5) => &[
            "Excellent quality, exactly as described. Highly recommend!",
            "Love it! Works perfectly and arrived fast.",
            "Fantastic, best purchase this year.",
        ],
        (Language::English, 4) => &[
            "Good value for the price, happy with it.",
            "Very nice, just a little smaller than I expected.",
        ],
        (Language::English, 3) => &[
            "It's okay. Does the job but nothing special.",
            "Average quality, shipping was slow.",
        ],
        (Language::English, 2) => &[
            "Disappointed, the quality is worse than expected.",
            "Not great, it stopped working properly after a week.",
        ],
        (Language::English, _) => &[
            "Terrible, broke after two days. Do not buy.",
            "Awful quality and the seller never replied.",
        ],
        (Language::Chinese, 5) => &[
            "质量非常好，和描述一致，强烈推荐！",
            "物流很快，包装完好，非常满意。",
            "太喜欢了，性价比超高，会回购。",
        ],
        (Language::Chinese, 4) => &[
            "性价比不错，用着挺好的。",
            "整体满意，就是颜色和图片有点差别。",
        ],
        (Language::Chinese, 3) => &["一般般，能用，但没有惊喜。", "质量还行，发货有点慢。"],
        (Language::Chinese, 2) => &["有点失望，质量不如预期。", "不太好用，用了一周就有问题。"],
        (Language::Chinese, _) => &[
            "太差了，用了两天就坏了，不推荐。",
            "质量很差，客服也不理人。",
        ],
    };
    texts[rng.random_range(0..texts.len())]
}

fn weighted<T: Copy>(choices: &[(T, u32)], rng: &mut StdRng) -> T {
    let weights: Vec<u32> = choices.iter().map(|(_, w)| *w).collect();
    choices[weighted_index(&weights, rng)].0
}

fn weighted_index(weights: &[u32], rng: &mut StdRng) -> usize {
    let total: u32 = weights.iter().sum();
    let mut at = rng.random_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if at < *w {
            return i;
        }
        at -= w;
    }
    weights.len().saturating_sub(1)
}

/// Identifies the run's parameters in event ids: the same seed, window and catalog give the
/// same ids (a re-run is recognised as duplicates), any change gives new ones.
fn run_key(catalog: &Catalog, seed: u64, days: u32) -> u32 {
    (mix(mix(seed, u64::from(days)), catalog.fingerprint()) >> 32) as u32
}

/// A well-spread stream seed from the run's seed and a shopper's number (SplitMix64 finaliser).
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::super::catalog::builtin;
    use super::*;

    const NOW: Micros = 1_780_000_000 * SECOND;

    fn run(seed: u64, users: usize, days: u32) -> Vec<(Shopper, Vec<Event>)> {
        let catalog = builtin();
        (0..users)
            .map(|i| simulate(&catalog, seed, i, days, NOW))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_shoppers() {
        assert_eq!(run(7, 20, 30), run(7, 20, 30));
        assert_ne!(run(7, 20, 30), run(8, 20, 30));
        // A shopper does not depend on how many others there are.
        assert_eq!(run(7, 5, 30)[..], run(7, 20, 30)[..5]);
    }

    #[test]
    fn funnels_narrow_and_every_kind_occurs() {
        let mut counts: HashMap<Kind, usize> = HashMap::new();
        for (_, events) in run(7, 200, 30) {
            for e in events {
                *counts.entry(e.kind).or_default() += 1;
            }
        }
        let n = |k| counts.get(&k).copied().unwrap_or(0);
        assert!(n(Kind::View) > 2 * n(Kind::Click), "{counts:?}");
        assert!(n(Kind::Click) > n(Kind::AddToCart), "{counts:?}");
        assert!(n(Kind::AddToCart) > n(Kind::Purchase), "{counts:?}");
        assert!(n(Kind::Purchase) > n(Kind::Review), "{counts:?}");
        for kind in Kind::ALL {
            assert!(n(kind) > 0, "no {kind:?} in {counts:?}");
        }
    }

    #[test]
    fn every_purchase_went_through_the_cart_of_its_session() {
        for (_, events) in run(3, 50, 30) {
            let mut carted = HashSet::new();
            for e in &events {
                match e.kind {
                    Kind::AddToCart => {
                        carted.insert((e.session_id.clone(), e.item));
                    }
                    Kind::Purchase => {
                        assert!(carted.contains(&(e.session_id.clone(), e.item)), "{e:?}");
                        assert!(e.unit_price.is_some_and(|p| p > 0));
                    }
                    Kind::Review => {
                        assert!((1..=5).contains(&e.rating));
                    }
                    Kind::Search => assert!(e.query.is_some() && e.item.is_none()),
                    _ => assert!(e.item.is_some()),
                }
            }
        }
    }

    #[test]
    fn timestamps_stay_in_the_window_in_order_with_unique_ids() {
        for days in [1, 3, 30] {
            let mut ids = HashSet::new();
            for (shopper, events) in run(11, 60, days) {
                assert!(!events.is_empty(), "{} did nothing", shopper.user_id);
                assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
                for e in &events {
                    assert!(e.at <= NOW, "future event {e:?}");
                    assert!(e.at >= NOW - i64::from(days) * DAY, "too old {e:?}");
                    assert!(ids.insert(e.event_id.clone()), "repeated id {}", e.event_id);
                }
            }
        }
    }

    #[test]
    fn phones_are_bought_with_their_accessories() {
        let catalog = builtin();
        let kind = |i: usize| catalog.products[i].keywords[0].as_str();
        let (mut phones, mut with_accessory) = (0, 0);
        for i in 0..400 {
            let (_, events) = simulate(&catalog, 7, i, 30, NOW);
            let bought: Vec<usize> = events
                .iter()
                .filter(|e| e.kind == Kind::Purchase)
                .filter_map(|e| e.item)
                .collect();
            if bought.iter().any(|&b| kind(b) == "smartphone") {
                phones += 1;
                if bought
                    .iter()
                    .any(|&b| ["phone case", "fast charger", "screen protector"].contains(&kind(b)))
                {
                    with_accessory += 1;
                }
            }
        }
        assert!(phones > 5, "{phones} phone buyers");
        assert!(with_accessory * 2 > phones, "{with_accessory} of {phones}");
    }

    #[test]
    fn reviews_read_like_their_rating() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(review_text(5, Language::English, &mut rng).len() > 10);
        assert!(!review_text(1, Language::Chinese, &mut rng).is_ascii());
    }
}
