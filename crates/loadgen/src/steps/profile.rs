//! `profile.*`: the profile service (`tailor.profile.v1.ProfileService`), called as a
//! trusted back-office service with `profile:read` and `profile:write`.
//!
//! - `profile.record_events`: a batch of generated behaviour events (unique event ids, Zipf
//!   users and items, a configurable behaviour mix, prices, reviews in Chinese and English);
//!   also how a benchmark seeds behaviour for the recommend service.
//! - `profile.get_profile`: one user's profile.
//! - `profile.list_recent_items`: one user's recently touched items.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use rand::Rng as _;
use rand::distr::Distribution as _;
use rand::distr::weighted::WeightedIndex;
use serde::Deserialize;
use tailor_proto::common::v1::Money;
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::profile::v1 as pb;
use tailor_proto::profile::v1::profile_service_client::ProfileServiceClient;

use super::{
    Auth, Call, Generator, ItemIds, Operation, Params, Pick, Reply, Step, UserPicker, check, params,
};
use crate::target::{Channel, Connection};

/// Largest message either way.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// `profile.record_events`.
pub(crate) const RECORD_EVENTS: Operation = Operation {
    name: "profile.record_events",
    target: "profile",
    about: "RecordEvents: `batch` generated behaviour events (unique ids, Zipf users and items)",
    auth: Auth::Service(&["profile:write"]),
    check: check::<RecordParams>,
    build: build_record,
};

/// `profile.get_profile`.
pub(crate) const GET_PROFILE: Operation = Operation {
    name: "profile.get_profile",
    target: "profile",
    about: "GetProfile of one user (Zipf, uniform or sequential)",
    auth: Auth::Service(&["profile:read"]),
    check: check::<ReadParams>,
    build: build_get_profile,
};

/// `profile.list_recent_items`.
pub(crate) const LIST_RECENT_ITEMS: Operation = Operation {
    name: "profile.list_recent_items",
    target: "profile",
    about: "ListRecentItems of one user",
    auth: Auth::Service(&["profile:read"]),
    check: check::<ReadParams>,
    build: build_recent,
};

fn client(conn: &Connection) -> ProfileServiceClient<Channel> {
    ProfileServiceClient::with_origin(conn.channel(), conn.origin().clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Relative frequency of each behaviour in generated batches.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Mix {
    view: f64,
    search: f64,
    click: f64,
    add_to_cart: f64,
    remove_from_cart: f64,
    purchase: f64,
    review: f64,
    share: f64,
}

impl Default for Mix {
    /// Roughly a shop's funnel: mostly browsing, a few carts, fewer purchases and reviews.
    fn default() -> Self {
        Self {
            view: 60.0,
            search: 5.0,
            click: 18.0,
            add_to_cart: 8.0,
            remove_from_cart: 2.0,
            purchase: 4.0,
            review: 2.0,
            share: 1.0,
        }
    }
}

impl Mix {
    /// Non-negative weights, not all 0; the error names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let kinds = self.kinds();
        if kinds.iter().any(|(_, w)| !(w.is_finite() && *w >= 0.0))
            || kinds.iter().all(|(_, w)| *w == 0.0)
        {
            return Err("mix: weights must be non-negative and not all 0".to_owned());
        }
        Ok(())
    }

    fn kinds(&self) -> [(BehaviorType, f64); 8] {
        [
            (BehaviorType::View, self.view),
            (BehaviorType::Search, self.search),
            (BehaviorType::Click, self.click),
            (BehaviorType::AddToCart, self.add_to_cart),
            (BehaviorType::RemoveFromCart, self.remove_from_cart),
            (BehaviorType::Purchase, self.purchase),
            (BehaviorType::Review, self.review),
            (BehaviorType::Share, self.share),
        ]
    }
}

/// Parameters of `profile.record_events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RecordParams {
    /// Events per call.
    batch: usize,
    /// How users are picked for events.
    users: Pick,
    /// One user per batch (an app flushing its queue) instead of one per event (a collector).
    same_user: bool,
    /// Behaviour mix.
    mix: Mix,
    /// Item ids as the catalog spells them (default: the population's).
    item_format: Option<String>,
}

impl Default for RecordParams {
    fn default() -> Self {
        Self {
            batch: 100,
            users: Pick::Zipf,
            same_user: false,
            mix: Mix::default(),
            item_format: None,
        }
    }
}

impl Params for RecordParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.batch) {
            return Err("batch: must be between 1 and 10000".to_owned());
        }
        self.mix.validate()?;
        ItemIds::new(self.item_format.as_deref()).map(|_| ())
    }
}

fn build_record(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: RecordParams = params(table).map_err(anyhow::Error::msg)?;
    let items = ItemIds::new(p.item_format.as_deref()).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(RecordEvents {
        conn: conn.clone(),
        batch: p.batch,
        users: UserPicker::new(p.users),
        same_user: p.same_user,
        behaviour: Behaviour::new(&p.mix, items)?,
    }))
}

struct RecordEvents {
    conn: Arc<Connection>,
    batch: usize,
    users: UserPicker,
    same_user: bool,
    behaviour: Behaviour,
}

/// Generates behaviour events: a kind from the mix, a Zipf item, and what that kind carries
/// (quantity and price, a rating and review, a search query).
pub(crate) struct Behaviour {
    kinds: [BehaviorType; 8],
    weights: WeightedIndex<f64>,
    items: ItemIds,
}

const QUERIES: [&str; 6] = [
    "wireless earbuds",
    "running shoes",
    "保温杯",
    "连衣裙 夏季",
    "phone case",
    "猫粮",
];

const REVIEWS: [&str; 6] = [
    "Great quality, arrived quickly. Would buy again!",
    "Terrible, it broke after two days.",
    "It's okay for the price.",
    "质量很好，物流也很快，非常满意！",
    "太差了，用了两天就坏了。",
    "一般般吧，价格还算合理。",
];

impl Behaviour {
    /// Events of the `mix`, about items spelled by `items`.
    pub(crate) fn new(mix: &Mix, items: ItemIds) -> anyhow::Result<Self> {
        let kinds = mix.kinds();
        Ok(Self {
            weights: WeightedIndex::new(kinds.iter().map(|(_, w)| *w))?,
            kinds: kinds.map(|(k, _)| k),
            items,
        })
    }

    /// One event of `user_id` at about `now` (since the epoch), in `session_id`.
    pub(crate) fn event(
        &self,
        generator: &mut Generator,
        user_id: &str,
        now: Duration,
        session_id: String,
    ) -> pb::BehaviorEvent {
        let kind = self.kinds[self.weights.sample(&mut generator.rng)];
        // Within the last minute, so batches arrive slightly out of order, as from devices.
        let at = now.saturating_sub(Duration::from_millis(generator.rng.random_range(0..60_000)));
        let mut event = pb::BehaviorEvent {
            event_id: generator.unique_id(),
            user_id: user_id.to_owned(),
            r#type: kind as i32,
            occurred_at: Some(prost_types::Timestamp {
                seconds: i64::try_from(at.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(at.subsec_nanos()).unwrap_or(0),
            }),
            session_id,
            ..pb::BehaviorEvent::default()
        };
        if kind == BehaviorType::Search {
            event.query = QUERIES[generator.rng.random_range(0..QUERIES.len())].to_owned();
            return event;
        }
        let rank = generator.item();
        let item = generator.population().item(rank);
        let price = Money {
            amount_minor: item.price_minor,
            currency: "CNY".to_owned(),
        };
        event.item_id = generator.item_id(&self.items, rank);
        event.item = Some(pb::ItemContext {
            category: item.category,
            brand: item.brand,
            tags: vec![item.tag],
        });
        match kind {
            BehaviorType::AddToCart | BehaviorType::RemoveFromCart => {
                event.quantity = 1;
                event.unit_price = Some(price);
            }
            BehaviorType::Purchase => {
                event.quantity = generator.rng.random_range(1..=3);
                event.unit_price = Some(price);
                event.discounted = generator.rng.random_bool(0.25);
            }
            BehaviorType::Review => {
                // Mostly happy reviewers, as on real shops.
                event.rating = [5, 5, 5, 4, 4, 3, 2, 1][generator.rng.random_range(0..8)];
                if generator.rng.random_bool(0.5) {
                    event.review_text =
                        REVIEWS[generator.rng.random_range(0..REVIEWS.len())].to_owned();
                }
            }
            _ => {}
        }
        event
    }
}

/// Now, since the epoch.
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A random app session id.
pub(crate) fn session_id(generator: &mut Generator) -> String {
    format!("s{}", generator.rng.random::<u32>())
}

impl Step for RecordEvents {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let now = now();
        let batch_user = self.same_user.then(|| generator.user(&self.users));
        let mut events = Vec::with_capacity(self.batch);
        for _ in 0..self.batch {
            let session = session_id(generator);
            let event = match &batch_user {
                Some(user) => self.behaviour.event(generator, user, now, session),
                None => {
                    let user = generator.user(&self.users);
                    self.behaviour.event(generator, &user, now, session)
                }
            };
            events.push(event);
        }
        let request = pb::RecordEventsRequest { events };
        let request_bytes = request.encoded_len();
        let mut client = client(&self.conn);
        Call {
            request_bytes,
            send: Box::pin(async move {
                let response = client.record_events(request).await?.into_inner();
                Ok(Reply {
                    items: u64::try_from(response.accepted_count + response.duplicate_count)
                        .unwrap_or(0),
                    rejected: response.rejected.len() as u64,
                    response_bytes: response.encoded_len(),
                    ..Reply::default()
                })
            }),
        }
    }
}

/// Parameters of the read operations.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReadParams {
    /// How users are picked.
    users: Pick,
    /// `profile.list_recent_items`: items per call.
    page_size: i32,
}

impl Default for ReadParams {
    fn default() -> Self {
        Self {
            users: Pick::Zipf,
            page_size: 20,
        }
    }
}

impl Params for ReadParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=200).contains(&self.page_size) {
            return Err("page_size: must be between 1 and 200".to_owned());
        }
        Ok(())
    }
}

fn build_get_profile(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: ReadParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(GetProfile {
        conn: conn.clone(),
        users: UserPicker::new(p.users),
    }))
}

struct GetProfile {
    conn: Arc<Connection>,
    users: UserPicker,
}

impl Step for GetProfile {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let request = pb::GetProfileRequest {
            user_id: generator.user(&self.users),
        };
        let mut client = client(&self.conn);
        Call {
            request_bytes: request.encoded_len(),
            send: Box::pin(async move {
                let response = client.get_profile(request).await?.into_inner();
                Ok(Reply {
                    items: 1,
                    response_bytes: response.encoded_len(),
                    ..Reply::default()
                })
            }),
        }
    }
}

fn build_recent(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: ReadParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(ListRecentItems {
        conn: conn.clone(),
        users: UserPicker::new(p.users),
        page_size: p.page_size,
    }))
}

struct ListRecentItems {
    conn: Arc<Connection>,
    users: UserPicker,
    page_size: i32,
}

impl Step for ListRecentItems {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let request = pb::ListRecentItemsRequest {
            user_id: generator.user(&self.users),
            page_size: self.page_size,
        };
        let mut client = client(&self.conn);
        Call {
            request_bytes: request.encoded_len(),
            send: Box::pin(async move {
                let response = client.list_recent_items(request).await?.into_inner();
                Ok(Reply {
                    items: 1,
                    response_bytes: response.encoded_len(),
                    ..Reply::default()
                })
            }),
        }
    }
}
