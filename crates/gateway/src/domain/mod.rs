//! The gateway's own rules, free of gRPC: who may do what, which modules a user sees in
//! which layout, how a screen is assembled from module results, and how app events become
//! behaviour events.
//!
//! - [`layout`]: config-driven layout rules per user segment and device class.
//! - [`feed`]: assembling a home feed from module results, each allowed to fail alone.
//! - [`screens`]: the use-cases (home feed, product page, tracking) over the upstreams.

pub mod feed;
pub mod layout;
pub mod screens;

/// An amount of money in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// Minor units.
    pub amount_minor: i64,
    /// ISO-4217 code.
    pub currency: String,
}

/// A product as lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The item.
    pub item_id: String,
    /// Title.
    pub title: String,
    /// Price, when for sale.
    pub price: Option<Money>,
    /// Image URL.
    pub image_url: String,
    /// Category path.
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Why it is shown.
    pub reason: String,
}

/// A product with everything the product page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// List fields.
    pub card: Card,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether it can be bought now.
    pub available: bool,
}

/// Who is looking: a signed-in user or an anonymous device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// A user authenticated by a JWT.
    User(String),
    /// An anonymous device.
    Device(String),
}

impl Viewer {
    /// The id the services know this viewer by (devices get their own namespace, so they can
    /// never collide with a user).
    pub fn backend_id(&self) -> String {
        match self {
            Self::User(id) => id.clone(),
            Self::Device(id) => format!("device:{id}"),
        }
    }

    /// Whether a user signed in.
    pub fn is_signed_in(&self) -> bool {
        matches!(self, Self::User(_))
    }
}

/// The kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// A phone (also the default).
    #[default]
    Phone,
    /// A tablet.
    Tablet,
    /// A low-end phone or slow network.
    LowEnd,
}

/// What the profile service says about the viewer, as far as the feed cares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewerProfile {
    /// "new", "active", "at_risk" or "churned".
    pub lifecycle: String,
    /// "low", "medium", "high", "premium" or "" when unknown.
    pub spending_tier: String,
    /// Top-level categories of strongest interest, strongest first.
    pub top_categories: Vec<String>,
}

/// Kinds of home feed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// Personalized picks.
    ForYou,
    /// Similar to the most recently viewed item.
    BecauseYouViewed,
    /// Trending in the viewer's favourite categories.
    TrendingInYourCategories,
    /// Recently viewed items.
    RecentlyViewed,
    /// Popular overall.
    Popular,
}

impl ModuleKind {
    /// Stable module id in feeds.
    pub fn id(self) -> &'static str {
        match self {
            Self::ForYou => "for_you",
            Self::BecauseYouViewed => "because_you_viewed",
            Self::TrendingInYourCategories => "trending_in_your_categories",
            Self::RecentlyViewed => "recently_viewed",
            Self::Popular => "popular",
        }
    }
}
