//! Conversions between `tailor.recommend.v1` and the domain.

use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::time::to_timestamp;
use tailor_proto::common::v1::Money as PbMoney;
use tailor_proto::recommend::v1 as pb;

use crate::domain::Placement;
use crate::domain::catalog::{Item, Money};
use crate::domain::serving::{Boost, BoostTarget, ReasonKind, Recommendation};

/// A wire item into the domain (checked by the domain).
pub(crate) fn item_in(i: pb::Item) -> Item {
    Item {
        item_id: i.item_id,
        kind: i.kind,
        title: i.title,
        description: i.description,
        category: i.category,
        brand: i.brand,
        tags: i.tags,
        price: i.price.map(|p| Money {
            amount_minor: p.amount_minor,
            currency: p.currency,
        }),
        available: i.available,
        stock: i.stock,
        embedding: i.image_embedding,
        image_url: i.image_url,
        updated_at: 0,
    }
}

/// A domain item on the wire. Embeddings stay inside: callers never need them back.
pub(crate) fn item_out(i: &Item) -> pb::Item {
    pb::Item {
        item_id: i.item_id.clone(),
        kind: i.kind,
        title: i.title.clone(),
        description: i.description.clone(),
        category: i.category.clone(),
        brand: i.brand.clone(),
        tags: i.tags.clone(),
        price: i.price.as_ref().map(|p| PbMoney {
            amount_minor: p.amount_minor,
            currency: p.currency.clone(),
        }),
        available: i.available,
        stock: i.stock,
        image_embedding: Vec::new(),
        image_url: i.image_url.clone(),
        update_time: Some(to_timestamp(i.updated_at)),
    }
}

/// A recommendation on the wire.
pub(crate) fn recommended(r: Recommendation) -> pb::RecommendedItem {
    pb::RecommendedItem {
        item: Some(item_out(&r.item)),
        score: r.score,
        reason_kind: match r.reason_kind {
            ReasonKind::SimilarToHistory => pb::ReasonKind::SimilarToHistory,
            ReasonKind::SimilarUsers => pb::ReasonKind::SimilarUsers,
            ReasonKind::Popular => pb::ReasonKind::Popular,
            ReasonKind::BoughtTogether => pb::ReasonKind::BoughtTogether,
            ReasonKind::MatchesInterests => pb::ReasonKind::MatchesInterests,
            ReasonKind::Trending => pb::ReasonKind::Trending,
            ReasonKind::SimilarToContext => pb::ReasonKind::SimilarToContext,
        } as i32,
        reason: r.reason,
        reason_item_id: r.reason_item.unwrap_or_default(),
        source: r.source,
    }
}

/// The placement a request names; unspecified or unknown is a violation.
pub(crate) fn placement(n: i32, violations: &mut FieldViolations) -> Option<Placement> {
    let placement = match pb::Placement::try_from(n) {
        Ok(pb::Placement::Home) => Some(Placement::Home),
        Ok(pb::Placement::ProductPage) => Some(Placement::ProductPage),
        Ok(pb::Placement::Cart) => Some(Placement::Cart),
        Ok(pb::Placement::PostPurchase) => Some(Placement::PostPurchase),
        Ok(pb::Placement::Unspecified) | Err(_) => None,
    };
    if placement.is_none() {
        violations.add(
            "placement",
            format!("must be HOME, PRODUCT_PAGE, CART or POST_PURCHASE (got {n})"),
        );
    }
    placement
}

/// Boosts from marketing.
pub(crate) fn boosts(boosts: Vec<pb::Boost>, violations: &mut FieldViolations) -> Vec<Boost> {
    use pb::boost::Target;
    boosts
        .into_iter()
        .enumerate()
        .filter_map(|(i, b)| {
            if !(b.factor.is_finite() && b.factor > 0.0 && b.factor <= 100.0) {
                violations.add(format!("boosts[{i}].factor"), "must be in (0, 100]");
            }
            let target = match b.target {
                Some(Target::ItemId(id)) => BoostTarget::Item(id),
                Some(Target::Category(c)) => BoostTarget::Category(c.trim().to_lowercase()),
                Some(Target::Brand(b)) => BoostTarget::Brand(b),
                None => {
                    violations.add(
                        format!("boosts[{i}]"),
                        "must set item_id, category or brand",
                    );
                    return None;
                }
            };
            Some(Boost {
                target,
                factor: b.factor,
            })
        })
        .collect()
}
