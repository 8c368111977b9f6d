//! Events the recommend service consumes: behaviour from the profile service becomes
//! interactions (fresh recommendations within the second, no retraining needed), and
//! consent decisions from the privacy service switch personalization off or on.

use sqlx::{Any, Transaction};
use tailor_kit::events::consumer::Handler;
use tailor_kit::events::unpack;
use tailor_kit::time::from_timestamp;
use tailor_proto::events::v1 as pb;

use crate::domain::recommender::{Recommender, behavior_weight};
use crate::store::NewInteraction;

/// Consumer group of this service.
pub const SERVICE: &str = "recommend";

/// The consent purpose this service honours.
pub const PERSONALIZATION: &str = "personalization";

/// Turns `BehaviorRecorded` into interactions.
pub struct BehaviorConsumer {
    recommender: Recommender,
}

impl BehaviorConsumer {
    /// A consumer feeding `recommender`.
    pub fn new(recommender: Recommender) -> Self {
        Self { recommender }
    }
}

impl BehaviorConsumer {
    /// The interactions a `BehaviorRecorded` event stands for (behaviour without an item or
    /// user, or of a type that carries no interest, is none).
    fn interactions(&self, envelope: &pb::EventEnvelope) -> anyhow::Result<Vec<NewInteraction>> {
        let recorded: pb::BehaviorRecorded = unpack(envelope)?;
        let weights = &self.recommender.settings().training.weights;
        Ok(recorded
            .behaviors
            .into_iter()
            .filter(|b| !b.item_id.is_empty() && !b.user_id.is_empty())
            .filter_map(|b| {
                let weight = behavior_weight(b.r#type, b.rating, weights)?;
                let occurred_at = b.occurred_at.as_ref().and_then(from_timestamp)?;
                Some(NewInteraction {
                    user_id: b.user_id,
                    event_id: b.event_id,
                    item_id: b.item_id,
                    kind: b.r#type,
                    weight,
                    occurred_at,
                })
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Handler for BehaviorConsumer {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Any>,
        envelope: &pb::EventEnvelope,
    ) -> anyhow::Result<()> {
        let rows = self.interactions(envelope)?;
        self.recommender.record_interactions(tx, rows).await?;
        Ok(())
    }

    async fn committed(&self, envelope: &pb::EventEnvelope) {
        // Decoded again: handlers keep no per-message state (`handle` already succeeded).
        if let Ok(rows) = self.interactions(envelope) {
            self.recommender.remember_interactions(rows).await;
        }
    }
}

/// Applies consent decisions.
pub struct ConsentConsumer {
    recommender: Recommender,
}

impl ConsentConsumer {
    /// A consumer updating `recommender`.
    pub fn new(recommender: Recommender) -> Self {
        Self { recommender }
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
            self.recommender
                .apply_consent(tx, &consent.user_id, consent.granted, consent.version)
                .await?;
        }
        Ok(())
    }

    async fn committed(&self, envelope: &pb::EventEnvelope) {
        if let Ok(consent) = unpack::<pb::ConsentChanged>(envelope) {
            self.recommender
                .forget_users([consent.user_id.as_str()])
                .await;
        }
    }
}
