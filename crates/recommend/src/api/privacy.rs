//! The privacy participant contract for the recommend service.

use tailor_kit::auth::caller;
use tailor_kit::grpc::page::{decode_token, encode_token, page_size};
use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::privacy::{RecordBuilder, SCOPE};
use tailor_kit::time::{now_micros, to_timestamp};
use tailor_proto::privacy::v1 as pb;
use tonic::{Request, Response, Status};

use crate::domain::recommender::Recommender;
use crate::events::SERVICE;

/// The recommend service as a privacy participant.
#[derive(Clone)]
pub struct PrivacyApi {
    recommender: Recommender,
}

impl PrivacyApi {
    /// Exports and erases through `recommender`.
    pub fn new(recommender: Recommender) -> Self {
        Self { recommender }
    }
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
            .recommender
            .export(&req.user_id, after.as_deref(), size)
            .await?;
        let mut records = Vec::new();
        if let Some(region) = page.region {
            records.push(RecordBuilder::new().text("region", region).build(
                "region",
                &req.user_id,
                None,
            ));
        }
        records.extend(page.exposures.into_iter().map(|e| {
            RecordBuilder::new()
                .text("placement", e.placement)
                .text("experiment", e.experiment)
                .text("variant", e.variant)
                .text("model_version", e.model_version)
                .texts("items", &e.items)
                .build("exposure", &e.recommendation_id, Some(e.created_at))
        }));
        records.extend(page.interactions.into_iter().map(|i| {
            RecordBuilder::new()
                .text("item_id", i.item_id)
                .int("behavior_type", i64::from(i.kind))
                .number("weight", f64::from(i.weight))
                .time("occurred_at", i.occurred_at)
                .build("interaction", &i.event_id, Some(i.occurred_at))
        }));
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
        let (erased, in_models) = self.recommender.erase(&req.user_id).await?;
        tracing::info!(request_id = %req.request_id, interactions = erased.interactions, "user data erased");
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Response::new(pb::EraseUserDataResponse {
            service: SERVICE.to_owned(),
            erased: vec![
                pb::ErasedCollection {
                    collection: "interaction".to_owned(),
                    count: count(erased.interactions),
                },
                pb::ErasedCollection {
                    collection: "exposure".to_owned(),
                    count: count(erased.exposures),
                },
                pb::ErasedCollection {
                    collection: "settings".to_owned(),
                    count: count(erased.settings),
                },
                // Learned state: no longer used from now on, gone from the next model set.
                pb::ErasedCollection {
                    collection: "model_state".to_owned(),
                    count: i64::from(in_models),
                },
            ],
            complete_time: Some(to_timestamp(now_micros())),
        }))
    }
}
