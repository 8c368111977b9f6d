//! The gRPC surface: `tailor.recommend.v1.RecommendService` (see
//! `proto/tailor/recommend/v1`) and the privacy participant contract.

mod convert;
mod privacy;

use tailor_kit::auth::caller;
use tailor_kit::grpc::page::{decode_token, encode_token, page_size};
use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::time::to_timestamp;
use tailor_proto::recommend::v1 as pb;
use tonic::{Request, Response, Status};

pub use privacy::PrivacyApi;

use crate::domain::recommender::{RecommendInput, Recommender};

/// Scope needed to change the catalog and operate models.
pub const ADMIN_SCOPE: &str = "recommend:admin";
/// Scope a service needs to get any user's recommendations on its own.
pub const READ_SCOPE: &str = "recommend:read";

/// The recommend service's gRPC implementation.
#[derive(Clone)]
pub struct RecommendApi {
    recommender: Recommender,
}

impl RecommendApi {
    /// Serves `recommender`.
    pub fn new(recommender: Recommender) -> Self {
        Self { recommender }
    }
}

fn id_list(field: &str, ids: &[String], max: usize, violations: &mut FieldViolations) {
    if ids.len() > max {
        violations.add(field, format!("at most {max} ids"));
    }
    if ids.iter().any(|id| id.is_empty() || id.len() > 128) {
        violations.add(field, "ids must be 1-128 bytes");
    }
}

#[tonic::async_trait]
impl pb::recommend_service_server::RecommendService for RecommendApi {
    async fn upsert_items(
        &self,
        request: Request<pb::UpsertItemsRequest>,
    ) -> Result<Response<pb::UpsertItemsResponse>, Status> {
        caller(&request)?.require_scope(ADMIN_SCOPE)?;
        let items = request
            .into_inner()
            .items
            .into_iter()
            .map(convert::item_in)
            .collect();
        let n = self.recommender.upsert_items(items).await?;
        Ok(Response::new(pb::UpsertItemsResponse {
            upserted_count: i32::try_from(n).unwrap_or(i32::MAX),
        }))
    }

    async fn delete_items(
        &self,
        request: Request<pb::DeleteItemsRequest>,
    ) -> Result<Response<pb::DeleteItemsResponse>, Status> {
        caller(&request)?.require_scope(ADMIN_SCOPE)?;
        let ids = request.into_inner().item_ids;
        let n = self.recommender.delete_items(&ids).await?;
        Ok(Response::new(pb::DeleteItemsResponse {
            deleted_count: i32::try_from(n).unwrap_or(i32::MAX),
        }))
    }

    async fn batch_get_items(
        &self,
        request: Request<pb::BatchGetItemsRequest>,
    ) -> Result<Response<pb::BatchGetItemsResponse>, Status> {
        caller(&request)?.require_service()?;
        let ids = request.into_inner().item_ids;
        let mut violations = FieldViolations::new();
        id_list("item_ids", &ids, 500, &mut violations);
        violations.into_result()?;
        let items = self
            .recommender
            .items(&ids)
            .iter()
            .map(|i| convert::item_out(i))
            .collect();
        Ok(Response::new(pb::BatchGetItemsResponse { items }))
    }

    async fn recommend(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        if req.user_id.trim().is_empty() || req.user_id.len() > 128 {
            violations.add("user_id", "must be 1-128 bytes");
        }
        let placement = convert::placement(req.placement, &mut violations);
        let size = page_size(req.page_size, 20, 100, &mut violations);
        id_list(
            "context_item_ids",
            &req.context_item_ids,
            100,
            &mut violations,
        );
        id_list(
            "exclude_item_ids",
            &req.exclude_item_ids,
            1000,
            &mut violations,
        );
        let boosts = convert::boosts(req.boosts, &mut violations);
        violations.into_result()?;
        caller.authorize_user(&req.user_id, READ_SCOPE)?;
        let output = self
            .recommender
            .recommend(RecommendInput {
                user_id: req.user_id,
                placement,
                page_size: size,
                context: req.context_item_ids,
                exclude: req.exclude_item_ids,
                region: (!req.region.is_empty()).then_some(req.region),
                onboarding: req.onboarding_categories,
                boosts,
            })
            .await?;
        Ok(Response::new(pb::RecommendResponse {
            items: output.items.into_iter().map(convert::recommended).collect(),
            model_version: output.model_version,
            variant: output.variant,
            recommendation_id: output.recommendation_id,
        }))
    }

    async fn list_similar_items(
        &self,
        request: Request<pb::ListSimilarItemsRequest>,
    ) -> Result<Response<pb::ListSimilarItemsResponse>, Status> {
        caller(&request)?.require_service()?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        id_list(
            "item_id",
            std::slice::from_ref(&req.item_id),
            1,
            &mut violations,
        );
        let size = page_size(req.page_size, 20, 100, &mut violations);
        violations.into_result()?;
        let items = self.recommender.similar(&req.item_id, size)?;
        Ok(Response::new(pb::ListSimilarItemsResponse {
            items: items.into_iter().map(convert::recommended).collect(),
        }))
    }

    async fn list_frequently_bought_together(
        &self,
        request: Request<pb::ListFrequentlyBoughtTogetherRequest>,
    ) -> Result<Response<pb::ListFrequentlyBoughtTogetherResponse>, Status> {
        caller(&request)?.require_service()?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        id_list(
            "item_id",
            std::slice::from_ref(&req.item_id),
            1,
            &mut violations,
        );
        let size = page_size(req.page_size, 10, 50, &mut violations);
        violations.into_result()?;
        let items = self.recommender.bought_together(&req.item_id, size)?;
        Ok(Response::new(pb::ListFrequentlyBoughtTogetherResponse {
            items: items
                .into_iter()
                .map(|a| pb::AssociatedItem {
                    item: Some(convert::item_out(&a.item)),
                    support: f64::from(a.support),
                    confidence: f64::from(a.confidence),
                    lift: f64::from(a.lift),
                })
                .collect(),
        }))
    }

    async fn list_popular_items(
        &self,
        request: Request<pb::ListPopularItemsRequest>,
    ) -> Result<Response<pb::ListPopularItemsResponse>, Status> {
        caller(&request)?.require_service()?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = page_size(req.page_size, 20, 100, &mut violations);
        violations.into_result()?;
        let category = req
            .category
            .split('/')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join("/");
        let items = self.recommender.popular(
            (!category.is_empty()).then_some(category.as_str()),
            req.trending,
            size,
        );
        Ok(Response::new(pb::ListPopularItemsResponse {
            items: items.into_iter().map(convert::recommended).collect(),
        }))
    }

    async fn train_models(
        &self,
        request: Request<pb::TrainModelsRequest>,
    ) -> Result<Response<pb::TrainModelsResponse>, Status> {
        caller(&request)?.require_scope(ADMIN_SCOPE)?;
        // A run in progress absorbs repeated requests, whatever their request_id.
        let started = self.recommender.train_in_background();
        Ok(Response::new(pb::TrainModelsResponse { started }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        caller(&request)?.require_scope(ADMIN_SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = page_size(req.page_size, 20, 100, &mut violations);
        let after = decode_token(&req.page_token, &mut violations);
        let after = match after.map(|a| a.parse::<i64>()) {
            Some(Ok(a)) => Some(a),
            Some(Err(_)) => {
                violations.add("page_token", "is not a token returned by this service");
                None
            }
            None => None,
        };
        violations.into_result()?;
        let rows = self.recommender.model_versions(after, size).await?;
        let next = (rows.len() == size)
            .then(|| rows.last().map(|r| encode_token(&r.created_at.to_string())))
            .flatten();
        Ok(Response::new(pb::ListModelsResponse {
            models: rows
                .into_iter()
                .map(|r| pb::ModelVersion {
                    version: r.version,
                    create_time: Some(to_timestamp(r.created_at)),
                    active: r.active,
                    interactions: r.interactions,
                    users: r.users,
                    items: r.items,
                    metrics: serde_json::from_str(&r.metrics).unwrap_or_default(),
                    train_seconds: r.train_seconds,
                })
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }
}
