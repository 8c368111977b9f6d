//! The privacy participant contract (`tailor.privacy.v1.PrivacyParticipantService`):
//! export everything stored about a user, erase it.

use tailor_kit::auth::caller;
use tailor_kit::grpc::page::{decode_token, encode_token, page_size};
use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::privacy::{RecordBuilder, SCOPE};
use tailor_kit::time::{now_micros, to_timestamp};
use tailor_proto::privacy::v1 as pb;
use tonic::{Request, Response, Status};

use crate::domain::profile::ProfileView;
use crate::domain::profiles::Profiles;
use crate::events::SERVICE;
use crate::store::StoredEvent;

/// The profile service as a privacy participant.
#[derive(Clone)]
pub struct PrivacyApi {
    profiles: Profiles,
}

impl PrivacyApi {
    /// Exports and erases through `profiles`.
    pub fn new(profiles: Profiles) -> Self {
        Self { profiles }
    }
}

fn profile_record(v: &ProfileView) -> pb::DataRecord {
    let interests = v
        .interests
        .iter()
        .map(|i| format!("{:?}:{}={:.3}", i.dimension, i.key, i.weight))
        .collect::<Vec<_>>();
    RecordBuilder::new()
        .nested(
            "attributes",
            RecordBuilder::new()
                .int("gender", i64::from(v.attributes.gender))
                .int("age_band", i64::from(v.attributes.age_band))
                .text("region", &v.attributes.region)
                .text("occupation", &v.attributes.occupation),
        )
        .texts("interests", &interests)
        .int("event_count", v.event_count)
        .int("purchases_in_window", v.rfm.frequency)
        .int("spend_in_window_minor", v.rfm.monetary_minor)
        .text("lifecycle", format!("{:?}", v.lifecycle))
        .text("spending_tier", format!("{:?}", v.spending_tier))
        .number("mean_review_polarity", v.sentiment.mean_polarity)
        .boolean("personalization_allowed", v.personalization_allowed)
        .build("profile", &v.user_id, v.first_seen_at)
}

fn event_record(e: &StoredEvent) -> pb::DataRecord {
    let event = &e.event;
    let mut fields = RecordBuilder::new()
        .text("type", format!("{:?}", event.kind))
        .time("occurred_at", event.occurred_at)
        .opt_text("item_id", event.item_id.as_deref())
        .opt_text("category", event.category.as_deref())
        .opt_text("brand", event.brand.as_deref())
        .texts("tags", &event.tags)
        .opt_text("query", event.query.as_deref())
        .int("quantity", i64::from(event.quantity))
        .boolean("discounted", event.discounted)
        .opt_text("review_text", event.review_text.as_deref())
        .opt_text("session_id", event.session_id.as_deref());
    if let Some(price) = &event.unit_price {
        fields = fields
            .int("unit_price_minor", price.amount_minor)
            .text("currency", &price.currency);
    }
    if let Some(rating) = event.rating {
        fields = fields.int("rating", i64::from(rating));
    }
    fields.build("behavior_event", &event.event_id, Some(e.received_at))
}

#[tonic::async_trait]
impl pb::privacy_participant_service_server::PrivacyParticipantService for PrivacyApi {
    async fn export_user_data(
        &self,
        request: Request<pb::ExportUserDataRequest>,
    ) -> Result<Response<pb::ExportUserDataResponse>, Status> {
        caller(&request)?.require_scope(SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        if req.user_id.trim().is_empty() {
            violations.add("user_id", "must be set");
        }
        let size = page_size(req.page_size, 500, 5000, &mut violations);
        let after = decode_token(&req.page_token, &mut violations);
        violations.into_result()?;
        let page = self
            .profiles
            .export(&req.user_id, after.as_deref(), size, now_micros())
            .await?;
        let mut records: Vec<pb::DataRecord> = page.profile.iter().map(profile_record).collect();
        records.extend(page.events.iter().map(event_record));
        Ok(Response::new(pb::ExportUserDataResponse {
            service: SERVICE.to_owned(),
            records,
            next_page_token: page
                .next_after
                .map(|c| encode_token(&c))
                .unwrap_or_default(),
        }))
    }

    async fn erase_user_data(
        &self,
        request: Request<pb::EraseUserDataRequest>,
    ) -> Result<Response<pb::EraseUserDataResponse>, Status> {
        caller(&request)?.require_scope(SCOPE)?;
        let req = request.into_inner();
        if req.user_id.trim().is_empty() {
            return Err(tailor_kit::grpc::status::invalid_argument(
                "user_id",
                "must be set",
            ));
        }
        let (events, profiles) = self.profiles.erase(&req.user_id).await?;
        tracing::info!(request_id = %req.request_id, events, profiles, "user data erased");
        Ok(Response::new(pb::EraseUserDataResponse {
            service: SERVICE.to_owned(),
            erased: vec![
                pb::ErasedCollection {
                    collection: "behavior_event".to_owned(),
                    count: i64::try_from(events).unwrap_or(i64::MAX),
                },
                pb::ErasedCollection {
                    collection: "profile".to_owned(),
                    count: i64::try_from(profiles).unwrap_or(i64::MAX),
                },
            ],
            complete_time: Some(to_timestamp(now_micros())),
        }))
    }
}
