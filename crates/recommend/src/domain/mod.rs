//! The recommend service's rules and use-cases, over the algorithms in [`crate::algo`].
//!
//! - [`catalog`]: items, their validation, and the in-memory catalog every request reads.
//! - [`models`]: the set of trained models that serves together, its training (with a
//!   holdout evaluation) and its file format.
//! - [`serving`]: blending candidates from several models for a placement, filtering,
//!   boosting, diversifying and explaining — pure functions.
//! - [`recommender`]: the use-cases, tying these to the store, the events and hot-swaps.
//! - [`user_states`]: users' consent and recent history as last read, cached until their
//!   next event.

pub mod catalog;
pub mod models;
pub mod recommender;
pub mod serving;
pub mod user_states;

use tailor_kit::time::Micros;

/// Where recommendations are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The home feed.
    Home,
    /// A product page.
    ProductPage,
    /// The cart.
    Cart,
    /// After a purchase.
    PostPurchase,
}

impl Placement {
    /// Config and exposure name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::ProductPage => "product_page",
            Self::Cart => "cart",
            Self::PostPurchase => "post_purchase",
        }
    }
}

/// One past interaction of a user, newest first in histories.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    /// The item.
    pub item_id: String,
    /// `tailor.events.v1.BehaviorType` number.
    pub kind: i32,
    /// Interest weight of the behaviour.
    pub weight: f32,
    /// When.
    pub at: Micros,
}

/// `tailor.events.v1.BehaviorType` number of a purchase.
pub const PURCHASE: i32 = 6;
