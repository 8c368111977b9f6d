//! Events in and out of the profile service: accepted behaviour and segment changes are
//! published through the outbox; consent decisions from the privacy service are consumed.

use sqlx::{Any, Transaction};
use tailor_kit::events::consumer::Handler;
use tailor_kit::events::{envelope, outbox, topics, unpack};
use tailor_kit::time::{now_micros, to_timestamp};
use tailor_proto::common::v1::Money;
use tailor_proto::events::v1 as pb;

use crate::domain::event::BehaviorEvent;
use crate::domain::profiles::Profiles;
use crate::error::Result;

/// Producer name in envelopes; also the consumer group of this service.
pub const SERVICE: &str = "profile";

/// The consent purpose this service honours.
pub const PERSONALIZATION: &str = "personalization";

/// Publishes accepted behaviour (one envelope per ingestion call) for recommendation.
pub async fn enqueue_behaviors(
    tx: &mut Transaction<'static, Any>,
    events: &[&BehaviorEvent],
) -> Result<()> {
    let payload = pb::BehaviorRecorded {
        behaviors: events.iter().map(|e| behavior(e)).collect(),
    };
    let partition = match events {
        [first, rest @ ..] if rest.iter().all(|e| e.user_id == first.user_id) => {
            first.user_id.as_str()
        }
        _ => "",
    };
    outbox::enqueue(
        tx,
        topics::PROFILE_BEHAVIOR_RECORDED,
        &envelope(SERVICE, partition, &payload),
    )
    .await?;
    Ok(())
}

/// Publishes a lifecycle segment change.
pub async fn enqueue_segment_change(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    previous: &str,
    segment: &str,
) -> Result<()> {
    let payload = pb::ProfileSegmentChanged {
        user_id: user_id.to_owned(),
        previous_segment: previous.to_owned(),
        segment: segment.to_owned(),
    };
    outbox::enqueue(
        tx,
        topics::PROFILE_SEGMENT_CHANGED,
        &envelope(SERVICE, user_id, &payload),
    )
    .await?;
    Ok(())
}

/// Publishes lifecycle segment changes `(user, previous, segment)`, in order, with a few
/// statements however many users changed (a batch of new users changes hundreds at once).
pub async fn enqueue_segment_changes(
    tx: &mut Transaction<'static, Any>,
    changes: &[(String, String, &str)],
) -> Result<()> {
    let envelopes: Vec<(&str, pb::EventEnvelope)> = changes
        .iter()
        .map(|(user_id, previous, segment)| {
            let payload = pb::ProfileSegmentChanged {
                user_id: user_id.clone(),
                previous_segment: previous.clone(),
                segment: (*segment).to_owned(),
            };
            (
                topics::PROFILE_SEGMENT_CHANGED,
                envelope(SERVICE, user_id, &payload),
            )
        })
        .collect();
    outbox::enqueue_many(tx, &envelopes).await?;
    Ok(())
}

fn behavior(e: &BehaviorEvent) -> pb::Behavior {
    pb::Behavior {
        event_id: e.event_id.clone(),
        user_id: e.user_id.clone(),
        r#type: e.kind.number(),
        occurred_at: Some(to_timestamp(e.occurred_at)),
        item_id: e.item_id.clone().unwrap_or_default(),
        category: e.category.clone().unwrap_or_default(),
        query: e.query.clone().unwrap_or_default(),
        quantity: e.quantity,
        unit_price: e.unit_price.as_ref().map(|p| Money {
            amount_minor: p.amount_minor,
            currency: p.currency.clone(),
        }),
        rating: e.rating.map_or(0, i32::from),
    }
}

/// Applies consent decisions published by the privacy service.
pub struct ConsentConsumer {
    profiles: Profiles,
}

impl ConsentConsumer {
    /// A consumer updating `profiles`.
    pub fn new(profiles: Profiles) -> Self {
        Self { profiles }
    }
}

#[async_trait::async_trait]
impl Handler for ConsentConsumer {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Any>,
        envelope: &pb::EventEnvelope,
    ) -> anyhow::Result<()> {
        let consent: pb::ConsentChanged = unpack(envelope)?;
        if consent.purpose == PERSONALIZATION {
            self.profiles
                .apply_consent(
                    tx,
                    &consent.user_id,
                    consent.granted,
                    consent.version,
                    now_micros(),
                )
                .await?;
        }
        Ok(())
    }

    async fn committed(&self, envelope: &pb::EventEnvelope) {
        // Decoded once already in `handle`; an undecodable one never gets here.
        if let Ok(consent) = unpack::<pb::ConsentChanged>(envelope) {
            self.profiles.forget_cached(&consent.user_id).await;
        }
    }
}
