//! Conversions between the public API (`tailor.mobile.v1`) and the gateway's domain.

use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::time::{from_timestamp, to_timestamp};
use tailor_proto::common::v1::Money as PbMoney;
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::mobile::v1 as pb;

use crate::domain::feed::{Feed, Module, ModuleState};
use crate::domain::layout::ImageSize;
use crate::domain::screens::{Ingested, ProductPage, TrackedEvent};
use crate::domain::{Card, DeviceClass, ModuleKind, Money, Product};

/// The device class a request names.
pub(crate) fn device(n: i32) -> DeviceClass {
    match pb::DeviceClass::try_from(n) {
        Ok(pb::DeviceClass::Tablet) => DeviceClass::Tablet,
        Ok(pb::DeviceClass::LowEnd) => DeviceClass::LowEnd,
        _ => DeviceClass::Phone,
    }
}

fn money(m: Option<Money>) -> Option<PbMoney> {
    m.map(|m| PbMoney {
        amount_minor: m.amount_minor,
        currency: m.currency,
    })
}

fn card(c: Card) -> pb::ProductCard {
    pb::ProductCard {
        item_id: c.item_id,
        title: c.title,
        price: money(c.price),
        image_url: c.image_url,
        category: c.category,
        brand: c.brand,
        reason: c.reason,
    }
}

fn module(m: Module) -> pb::FeedModule {
    pb::FeedModule {
        module_id: m.kind.id().to_owned(),
        kind: match m.kind {
            ModuleKind::ForYou => pb::ModuleKind::ForYou,
            ModuleKind::BecauseYouViewed => pb::ModuleKind::BecauseYouViewed,
            ModuleKind::TrendingInYourCategories => pb::ModuleKind::TrendingInYourCategories,
            ModuleKind::RecentlyViewed => pb::ModuleKind::RecentlyViewed,
            ModuleKind::Popular => pb::ModuleKind::Popular,
        } as i32,
        title: m.title,
        items: m.items.into_iter().map(card).collect(),
        state: match m.state {
            ModuleState::Ready => pb::ModuleState::Ready,
            ModuleState::Unavailable => pb::ModuleState::Unavailable,
            ModuleState::Empty => pb::ModuleState::Empty,
        } as i32,
    }
}

/// A feed on the wire.
pub(crate) fn feed(f: Feed) -> pb::HomeFeed {
    pb::HomeFeed {
        layout: Some(pb::Layout {
            theme: f.theme,
            image_size: match f.image_size {
                ImageSize::Small => pb::ImageSize::Small,
                ImageSize::Medium => pb::ImageSize::Medium,
                ImageSize::Large => pb::ImageSize::Large,
            } as i32,
            columns: i32::try_from(f.columns).unwrap_or(2),
        }),
        modules: f.modules.into_iter().map(module).collect(),
        generate_time: Some(to_timestamp(tailor_kit::time::now_micros())),
        variant: f.variant,
    }
}

fn product(p: Product) -> pb::Product {
    pb::Product {
        item_id: p.card.item_id,
        title: p.card.title,
        description: p.description,
        category: p.card.category,
        brand: p.card.brand,
        tags: p.tags,
        price: money(p.card.price),
        image_url: p.card.image_url,
        available: p.available,
    }
}

/// A product page on the wire.
pub(crate) fn product_page(page: ProductPage) -> pb::GetProductPageResponse {
    pb::GetProductPageResponse {
        product: Some(product(page.product)),
        similar: Some(module(page.similar)),
        bought_together: Some(module(page.bought_together)),
    }
}

fn kind(k: i32) -> i32 {
    let behavior = match pb::EventKind::try_from(k) {
        Ok(pb::EventKind::View) => BehaviorType::View,
        Ok(pb::EventKind::Search) => BehaviorType::Search,
        Ok(pb::EventKind::Click) => BehaviorType::Click,
        Ok(pb::EventKind::AddToCart) => BehaviorType::AddToCart,
        Ok(pb::EventKind::RemoveFromCart) => BehaviorType::RemoveFromCart,
        Ok(pb::EventKind::Purchase) => BehaviorType::Purchase,
        Ok(pb::EventKind::Review) => BehaviorType::Review,
        Ok(pb::EventKind::Share) => BehaviorType::Share,
        // Passed on as unknown, so the profile service refuses it with a per-event reason.
        Ok(pb::EventKind::Unspecified) | Err(_) => return if k == 0 { 0 } else { -1 },
    };
    behavior as i32
}

/// App events into tracked events; a malformed timestamp is refused per event downstream
/// (sent as absent).
pub(crate) fn tracked(
    events: Vec<pb::TrackEvent>,
    violations: &mut FieldViolations,
) -> Vec<TrackedEvent> {
    if events.len() > crate::domain::screens::MAX_TRACKED {
        violations.add(
            "events",
            format!(
                "at most {} events per call",
                crate::domain::screens::MAX_TRACKED
            ),
        );
    }
    events
        .into_iter()
        .map(|e| TrackedEvent {
            event_id: e.event_id,
            kind: kind(e.kind),
            occurred_at: e.occurred_at.as_ref().and_then(from_timestamp),
            item_id: e.item_id,
            query: e.query,
            quantity: e.quantity,
            unit_price: e.unit_price.map(|m| Money {
                amount_minor: m.amount_minor,
                currency: m.currency,
            }),
            rating: e.rating,
            review_text: e.review_text,
            session_id: e.session_id,
        })
        .collect()
}

/// What tracking did, on the wire.
pub(crate) fn ingested(i: Ingested) -> pb::TrackEventsResponse {
    pb::TrackEventsResponse {
        accepted_count: i.accepted,
        duplicate_count: i.duplicates,
        rejected: i
            .rejected
            .into_iter()
            .map(|(index, field, reason)| pb::TrackRejection {
                index,
                field,
                reason,
            })
            .collect(),
    }
}
