//! The gRPC surface: `tailor.profile.v1.ProfileService` (see `proto/tailor/profile/v1`)
//! and the privacy participant contract. Handlers check the caller, convert, call the
//! use-case and convert back.

mod convert;
mod privacy;

use tailor_kit::auth::{Caller, caller};
use tailor_kit::grpc::page::{decode_token, encode_token, page_size};
use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::time::{now_micros, to_timestamp};
use tailor_proto::profile::v1 as pb;
use tonic::{Request, Response, Status, Streaming};

pub use privacy::PrivacyApi;

use crate::domain::profiles::Profiles;

/// Scope a service needs to write any user's behaviour.
pub const WRITE_SCOPE: &str = "profile:write";
/// Scope a service needs to read any user's profile, segments and analytics.
pub const READ_SCOPE: &str = "profile:read";

/// Most rejections listed in a StreamEvents summary.
const MAX_LISTED_REJECTIONS: usize = 1000;

/// The profile service's gRPC implementation.
#[derive(Clone)]
pub struct ProfileApi {
    profiles: Profiles,
}

impl ProfileApi {
    /// Serves `profiles`.
    pub fn new(profiles: Profiles) -> Self {
        Self { profiles }
    }

    fn currency(&self) -> &str {
        &self.profiles.settings().ingest.reporting_currency
    }
}

/// Who may be written for: the caller's own user, or anyone with the write scope.
fn ingest_rights(caller: &Caller) -> Result<Option<String>, Status> {
    caller.require_service()?;
    match &caller.user {
        Some(user) => Ok(Some(user.clone())),
        None => {
            caller.require_scope(WRITE_SCOPE)?;
            Ok(None)
        }
    }
}

#[tonic::async_trait]
impl pb::profile_service_server::ProfileService for ProfileApi {
    async fn record_events(
        &self,
        request: Request<pb::RecordEventsRequest>,
    ) -> Result<Response<pb::RecordEventsResponse>, Status> {
        let acting_for = ingest_rights(&caller(&request)?)?;
        let raws = request
            .into_inner()
            .events
            .into_iter()
            .map(convert::raw_event)
            .collect();
        let report = self
            .profiles
            .record(raws, acting_for.as_deref(), now_micros(), 0)
            .await?;
        Ok(Response::new(pb::RecordEventsResponse {
            accepted_count: i32::try_from(report.accepted).unwrap_or(i32::MAX),
            duplicate_count: i32::try_from(report.duplicates).unwrap_or(i32::MAX),
            rejected: convert::rejections(&report),
        }))
    }

    async fn stream_events(
        &self,
        request: Request<Streaming<pb::StreamEventsRequest>>,
    ) -> Result<Response<pb::StreamEventsResponse>, Status> {
        let acting_for = ingest_rights(&caller(&request)?)?;
        let mut stream = request.into_inner();
        let mut summary = pb::StreamEventsResponse::default();
        let mut index = 0usize;
        // Each chunk is stored before the next is read: what was acknowledged by the end of
        // the stream is durable, and a broken stream keeps the chunks before the break.
        while let Some(chunk) = stream.message().await? {
            let n = chunk.events.len();
            let raws = chunk.events.into_iter().map(convert::raw_event).collect();
            let report = self
                .profiles
                .record(raws, acting_for.as_deref(), now_micros(), index)
                .await?;
            index += n;
            summary.accepted_count += report.accepted as i64;
            summary.duplicate_count += report.duplicates as i64;
            summary.rejected_count += report.rejected.len() as i64;
            let room = MAX_LISTED_REJECTIONS.saturating_sub(summary.rejected.len());
            summary
                .rejected
                .extend(convert::rejections(&report).into_iter().take(room));
        }
        Ok(Response::new(summary))
    }

    async fn update_user_attributes(
        &self,
        request: Request<pb::UpdateUserAttributesRequest>,
    ) -> Result<Response<pb::UpdateUserAttributesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        convert::user_id("user_id", &req.user_id, &mut violations);
        let attributes = convert::attributes(req.attributes.unwrap_or_default(), &mut violations);
        let mask = req.update_mask.map(|m| m.paths).unwrap_or_default();
        for (i, path) in mask.iter().enumerate() {
            if !["gender", "age_band", "region", "occupation"].contains(&path.as_str()) {
                violations.add(
                    format!("update_mask.paths[{i}]"),
                    format!("unknown field `{path}`"),
                );
            }
        }
        violations.into_result()?;
        caller.authorize_user(&req.user_id, WRITE_SCOPE)?;
        // Setting attributes is idempotent by nature, so `request_id` needs no bookkeeping.
        let stored = self
            .profiles
            .update_attributes(&req.user_id, attributes, &mask, now_micros())
            .await?;
        Ok(Response::new(pb::UpdateUserAttributesResponse {
            attributes: Some(convert::attributes_out(stored)),
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::GetProfileResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        convert::user_id("user_id", &req.user_id, &mut violations);
        violations.into_result()?;
        caller.authorize_user(&req.user_id, READ_SCOPE)?;
        let view = self.profiles.profile(&req.user_id, now_micros()).await?;
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(convert::profile(view, self.currency())),
        }))
    }

    async fn list_recent_items(
        &self,
        request: Request<pb::ListRecentItemsRequest>,
    ) -> Result<Response<pb::ListRecentItemsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        convert::user_id("user_id", &req.user_id, &mut violations);
        let limit = page_size(req.page_size, 20, 200, &mut violations);
        violations.into_result()?;
        caller.authorize_user(&req.user_id, READ_SCOPE)?;
        let items = self.profiles.recent_items(&req.user_id, limit).await?;
        Ok(Response::new(pb::ListRecentItemsResponse {
            items: items
                .into_iter()
                .map(|r| pb::RecentItem {
                    item_id: r.item_id,
                    r#type: convert::behavior_type(r.kind),
                    occurred_at: Some(to_timestamp(r.at)),
                    category: r.category,
                })
                .collect(),
        }))
    }

    async fn get_item_sentiment(
        &self,
        request: Request<pb::GetItemSentimentRequest>,
    ) -> Result<Response<pb::GetItemSentimentResponse>, Status> {
        // Aggregates over many reviewers: no one user's data, any service may read them.
        caller(&request)?.require_service()?;
        let req = request.into_inner();
        if req.item_id.trim().is_empty() {
            return Err(tailor_kit::grpc::status::invalid_argument(
                "item_id",
                "must be set",
            ));
        }
        let summary = self.profiles.item_sentiment(&req.item_id).await?;
        Ok(Response::new(convert::item_sentiment(req.item_id, summary)))
    }

    async fn query_segment(
        &self,
        request: Request<pb::QuerySegmentRequest>,
    ) -> Result<Response<pb::QuerySegmentResponse>, Status> {
        caller(&request)?.require_scope(READ_SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let rule = convert::rule(req.rule, &mut violations);
        let size = page_size(req.page_size, 100, 1000, &mut violations);
        let after = decode_token(&req.page_token, &mut violations).unwrap_or_default();
        violations.into_result()?;
        let (user_ids, next) = self
            .profiles
            .segment(&rule, &after, size, now_micros())
            .await?;
        Ok(Response::new(pb::QuerySegmentResponse {
            user_ids,
            next_page_token: next.map(|c| encode_token(&c)).unwrap_or_default(),
        }))
    }

    async fn get_funnel(
        &self,
        request: Request<pb::GetFunnelRequest>,
    ) -> Result<Response<pb::GetFunnelResponse>, Status> {
        caller(&request)?.require_scope(READ_SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let (start, end) =
            convert::time_range("time_range", req.time_range.as_ref(), &mut violations);
        let mut steps = convert::kinds("steps", &req.steps, &mut violations);
        violations.into_result()?;
        if steps.is_empty() {
            steps = convert::DEFAULT_FUNNEL.to_vec();
        }
        let category = crate::domain::event::normalise_category(&req.category);
        let (overall, categories) = self
            .profiles
            .funnel(start, end, &steps, category.as_deref())
            .await?;
        Ok(Response::new(pb::GetFunnelResponse {
            overall: Some(convert::funnel(&overall)),
            categories: if req.by_category {
                categories
                    .iter()
                    .map(|(c, f)| pb::CategoryFunnel {
                        category: c.clone(),
                        funnel: Some(convert::funnel(f)),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }))
    }

    async fn get_active_users(
        &self,
        request: Request<pb::GetActiveUsersRequest>,
    ) -> Result<Response<pb::GetActiveUsersResponse>, Status> {
        caller(&request)?.require_scope(READ_SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let (start, end) =
            convert::time_range("time_range", req.time_range.as_ref(), &mut violations);
        violations.into_result()?;
        let days = self.profiles.daily_active_users(start, end).await?;
        Ok(Response::new(pb::GetActiveUsersResponse {
            days: days
                .into_iter()
                .map(|(date, active_users)| pb::DailyActiveUsers { date, active_users })
                .collect(),
        }))
    }

    async fn get_retention(
        &self,
        request: Request<pb::GetRetentionRequest>,
    ) -> Result<Response<pb::GetRetentionResponse>, Status> {
        caller(&request)?.require_scope(READ_SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let (start, end) =
            convert::time_range("cohort_range", req.cohort_range.as_ref(), &mut violations);
        let max_day = match req.max_day {
            0 => 30,
            d @ 1..=90 => i64::from(d),
            _ => {
                violations.add("max_day", "must be between 1 and 90");
                30
            }
        };
        violations.into_result()?;
        let cohorts = self
            .profiles
            .retention(start, end, max_day, now_micros())
            .await?;
        Ok(Response::new(pb::GetRetentionResponse {
            cohorts: cohorts
                .into_iter()
                .map(|c| pb::Cohort {
                    date: c.date,
                    size: c.size,
                    retained: c.retained,
                })
                .collect(),
        }))
    }

    async fn list_trending_categories(
        &self,
        request: Request<pb::ListTrendingCategoriesRequest>,
    ) -> Result<Response<pb::ListTrendingCategoriesResponse>, Status> {
        caller(&request)?.require_scope(READ_SCOPE)?;
        let req = request.into_inner();
        let mut violations = FieldViolations::new();
        let (start, end) =
            convert::time_range("time_range", req.time_range.as_ref(), &mut violations);
        let limit = page_size(req.page_size, 10, 100, &mut violations);
        violations.into_result()?;
        let ranked = self.profiles.trending(start, end, limit).await?;
        Ok(Response::new(pb::ListTrendingCategoriesResponse {
            categories: ranked
                .into_iter()
                .map(|t| pb::TrendingCategory {
                    category: t.category,
                    score: t.score,
                    previous_score: t.previous_score,
                    growth: t.growth,
                })
                .collect(),
        }))
    }
}
