//! Typed calls to the services behind the gateway: domain values in, domain values out.
//! Every call acts for the viewer, carries a deadline (the smaller of the per-call limit and
//! what is left of the screen's budget), and idempotent reads are retried once when the
//! backend is unavailable and time remains.

use std::time::Duration;

use tailor_kit::grpc::client::{Outbound, for_user};
use tailor_kit::time::to_timestamp;
use tailor_proto::profile::v1 as profile;
use tailor_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tailor_proto::recommend::v1 as recommend;
use tailor_proto::recommend::v1::recommend_service_client::RecommendServiceClient;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::domain::screens::{Ingested, TrackedEvent};
use crate::domain::{Card, Money, Product, ViewerProfile};

/// When a screen must be answered by.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    until: Instant,
}

impl Budget {
    /// A budget ending `after` from now.
    pub fn new(after: Duration) -> Self {
        Self {
            until: Instant::now() + after,
        }
    }

    /// Time left (zero when spent).
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}

/// Clients of the services.
#[derive(Clone)]
pub struct Upstream {
    profile: ProfileServiceClient<Outbound>,
    recommend: RecommendServiceClient<Outbound>,
    per_call: Duration,
}

/// Below this much budget a retry would only add load.
const MIN_RETRY_BUDGET: Duration = Duration::from_millis(50);

impl Upstream {
    /// Clients over ready channels.
    pub fn new(profile: Outbound, recommend: Outbound, per_call: Duration) -> Self {
        Self {
            profile: ProfileServiceClient::new(profile),
            recommend: RecommendServiceClient::new(recommend),
            per_call,
        }
    }

    fn deadline(&self, budget: &Budget) -> Duration {
        self.per_call.min(budget.remaining())
    }

    fn request<T>(
        &self,
        message: T,
        user: &str,
        budget: &Budget,
    ) -> Result<tonic::Request<T>, Status> {
        for_user(message, user, Some(self.deadline(budget)))
    }

    /// A read, retried once on UNAVAILABLE when time is left.
    async fn read<T, R, F, Fut>(
        &self,
        message: T,
        user: &str,
        budget: &Budget,
        call: F,
    ) -> Result<R, Status>
    where
        T: Clone,
        F: Fn(tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let first = call(self.request(message.clone(), user, budget)?).await;
        match first {
            Err(status)
                if status.code() == Code::Unavailable && budget.remaining() > MIN_RETRY_BUDGET =>
            {
                tracing::debug!(
                    message = status.message(),
                    "retrying an idempotent read once"
                );
                Ok(call(self.request(message, user, budget)?)
                    .await?
                    .into_inner())
            }
            other => Ok(other?.into_inner()),
        }
    }

    /// The viewer's segment and interests.
    pub async fn viewer_profile(
        &self,
        user: &str,
        budget: &Budget,
    ) -> Result<ViewerProfile, Status> {
        let message = profile::GetProfileRequest {
            user_id: user.to_owned(),
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.profile.clone();
                async move { client.get_profile(r).await }
            })
            .await?;
        let p = response.profile.unwrap_or_default();
        let lifecycle = match profile::LifecycleSegment::try_from(p.lifecycle_segment) {
            Ok(profile::LifecycleSegment::New) => "new",
            Ok(profile::LifecycleSegment::Active) => "active",
            Ok(profile::LifecycleSegment::AtRisk) => "at_risk",
            Ok(profile::LifecycleSegment::Churned) => "churned",
            _ => "",
        };
        let spending_tier = match profile::SpendingTier::try_from(p.spending_tier) {
            Ok(profile::SpendingTier::Low) => "low",
            Ok(profile::SpendingTier::Medium) => "medium",
            Ok(profile::SpendingTier::High) => "high",
            Ok(profile::SpendingTier::Premium) => "premium",
            _ => "",
        };
        // Interests come strongest first per dimension; top-level categories only.
        let top_categories = p
            .interests
            .iter()
            .filter(|i| {
                i.dimension == profile::InterestDimension::Category as i32 && !i.key.contains('/')
            })
            .map(|i| i.key.clone())
            .take(3)
            .collect();
        Ok(ViewerProfile {
            lifecycle: lifecycle.to_owned(),
            spending_tier: spending_tier.to_owned(),
            top_categories,
        })
    }

    /// The items the viewer touched last, newest first.
    pub async fn recent_items(
        &self,
        user: &str,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<String>, Status> {
        let message = profile::ListRecentItemsRequest {
            user_id: user.to_owned(),
            page_size: i32::try_from(limit).unwrap_or(20),
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.profile.clone();
                async move { client.list_recent_items(r).await }
            })
            .await?;
        Ok(response.items.into_iter().map(|i| i.item_id).collect())
    }

    /// Home recommendations and the experiment variant that served them.
    pub async fn recommend_home(
        &self,
        user: &str,
        limit: usize,
        budget: &Budget,
    ) -> Result<(Vec<Card>, String), Status> {
        let message = recommend::RecommendRequest {
            user_id: user.to_owned(),
            placement: recommend::Placement::Home as i32,
            page_size: i32::try_from(limit).unwrap_or(20),
            ..Default::default()
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.recommend.clone();
                async move { client.recommend(r).await }
            })
            .await?;
        Ok((
            response.items.into_iter().map(recommended_card).collect(),
            response.variant,
        ))
    }

    /// Items similar to `item_id`.
    pub async fn similar(
        &self,
        user: &str,
        item_id: &str,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<Card>, Status> {
        let message = recommend::ListSimilarItemsRequest {
            item_id: item_id.to_owned(),
            page_size: i32::try_from(limit).unwrap_or(20),
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.recommend.clone();
                async move { client.list_similar_items(r).await }
            })
            .await?;
        Ok(response.items.into_iter().map(recommended_card).collect())
    }

    /// Items bought together with `item_id`.
    pub async fn bought_together(
        &self,
        user: &str,
        item_id: &str,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<Card>, Status> {
        let message = recommend::ListFrequentlyBoughtTogetherRequest {
            item_id: item_id.to_owned(),
            page_size: i32::try_from(limit).unwrap_or(10),
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.recommend.clone();
                async move { client.list_frequently_bought_together(r).await }
            })
            .await?;
        Ok(response
            .items
            .into_iter()
            .filter_map(|a| {
                a.item.map(|item| {
                    let mut card = card(item);
                    card.reason = "Often bought together".to_owned();
                    card
                })
            })
            .collect())
    }

    /// Popular (or trending) items, in a category when given.
    pub async fn popular(
        &self,
        user: &str,
        category: Option<&str>,
        trending: bool,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<Card>, Status> {
        let message = recommend::ListPopularItemsRequest {
            category: category.unwrap_or_default().to_owned(),
            trending,
            page_size: i32::try_from(limit).unwrap_or(20),
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.recommend.clone();
                async move { client.list_popular_items(r).await }
            })
            .await?;
        Ok(response.items.into_iter().map(recommended_card).collect())
    }

    /// Items by id, in the order asked (unknown ones absent).
    pub async fn products(
        &self,
        user: &str,
        ids: &[String],
        budget: &Budget,
    ) -> Result<Vec<Product>, Status> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let message = recommend::BatchGetItemsRequest {
            item_ids: ids.to_vec(),
        };
        let response = self
            .read(message, user, budget, |r| {
                let mut client = self.recommend.clone();
                async move { client.batch_get_items(r).await }
            })
            .await?;
        Ok(response.items.into_iter().map(product).collect())
    }

    /// Records the viewer's events with the profile service (not retried: the profile service
    /// deduplicates by event id, but a retry after a timeout is the app's call to make).
    pub async fn record_events(
        &self,
        user: &str,
        events: Vec<(TrackedEvent, Option<Product>)>,
        budget: &Budget,
    ) -> Result<Ingested, Status> {
        let events = events
            .into_iter()
            .map(|(e, product)| {
                let item = product.map(|p| profile::ItemContext {
                    category: p.card.category,
                    brand: p.card.brand,
                    tags: p.tags,
                });
                profile::BehaviorEvent {
                    event_id: e.event_id,
                    user_id: user.to_owned(),
                    r#type: e.kind,
                    occurred_at: e.occurred_at.map(to_timestamp),
                    item_id: e.item_id,
                    item,
                    query: e.query,
                    quantity: e.quantity,
                    unit_price: e.unit_price.map(|m| tailor_proto::common::v1::Money {
                        amount_minor: m.amount_minor,
                        currency: m.currency,
                    }),
                    discounted: false,
                    rating: e.rating,
                    review_text: e.review_text,
                    session_id: e.session_id,
                }
            })
            .collect();
        let mut client = self.profile.clone();
        let response = client
            .record_events(self.request(profile::RecordEventsRequest { events }, user, budget)?)
            .await?
            .into_inner();
        Ok(Ingested {
            accepted: response.accepted_count,
            duplicates: response.duplicate_count,
            rejected: response
                .rejected
                .into_iter()
                .map(|r| (r.index, r.field, r.reason))
                .collect(),
        })
    }
}

fn money(m: Option<tailor_proto::common::v1::Money>) -> Option<Money> {
    m.map(|m| Money {
        amount_minor: m.amount_minor,
        currency: m.currency,
    })
}

fn card(item: recommend::Item) -> Card {
    Card {
        item_id: item.item_id,
        title: item.title,
        price: money(item.price),
        image_url: item.image_url,
        category: item.category,
        brand: item.brand,
        reason: String::new(),
    }
}

fn recommended_card(r: recommend::RecommendedItem) -> Card {
    let mut card = card(r.item.unwrap_or_default());
    card.reason = r.reason;
    card
}

fn product(item: recommend::Item) -> Product {
    let description = item.description.clone();
    let tags = item.tags.clone();
    let available = item.available;
    Product {
        card: card(item),
        description,
        tags,
        available,
    }
}
