//! `mobile.*`: the gateway (`tailor.mobile.v1.MobileService`), called as the mobile app
//! calls it, over gRPC or gRPC-web. Each call is made by a viewer: a signed-in user of the
//! population (Zipf by default) with `authorization: Bearer <JWT>` (see
//! [`crate::identity`]), or, for the `1 - signed_in` share of calls, an anonymous device
//! with `x-device-id`. Every call also carries `x-forwarded-for` with an address of the
//! viewer's own, as behind the production load balancer (the gateway keys its per-IP rate
//! limits on it when `trust_forwarded_for` is set).
//!
//! - `mobile.get_home_feed`: the home feed on a `device_class`.
//! - `mobile.get_product_page`: the product page of a Zipf item of the catalog.
//! - `mobile.track_events`: a small batch of the viewer's own events, as the app flushes
//!   them (one session, the behaviour mix of `profile.record_events`).
//!
//! The gateway limits requests per user and per IP (20/s and 200/s by default): for load
//! beyond that, raise its `rate_limit` settings, or the run measures refusals
//! (RESOURCE_EXHAUSTED).

use std::sync::Arc;

use anyhow::Context as _;
use prost::Message as _;
use rand::Rng as _;
use serde::Deserialize;
use tailor_proto::events::v1::BehaviorType;
use tailor_proto::mobile::v1 as pb;
use tailor_proto::mobile::v1::mobile_service_client::MobileServiceClient;
use tailor_proto::profile::v1::BehaviorEvent;
use tonic::metadata::{Ascii, MetadataValue};

use super::profile::{Behaviour, Mix, now, session_id};
use super::{
    Auth, Call, Generator, ItemIds, ItemPicker, Operation, Params, Pick, Reply, Step, UserPicker,
    check, params,
};
use crate::identity::{DEVICE_HEADER, UserTokens, device_id};
use crate::population::mix;
use crate::target::{Channel, Connection};

/// Largest message either way.
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// `mobile.get_home_feed`.
pub(crate) const GET_HOME_FEED: Operation = Operation {
    name: "mobile.get_home_feed",
    target: "gateway",
    about: "GetHomeFeed on a `device_class`, as a Zipf user (JWT) or, `1 - signed_in` of the time, a device",
    auth: Auth::AppUser,
    check: check::<FeedParams>,
    build: build_home_feed,
};

/// `mobile.get_product_page`.
pub(crate) const GET_PRODUCT_PAGE: Operation = Operation {
    name: "mobile.get_product_page",
    target: "gateway",
    about: "GetProductPage of a Zipf item (ids per `item_format`), as a user or a device",
    auth: Auth::AppUser,
    check: check::<PageParams>,
    build: build_product_page,
};

/// `mobile.track_events`.
pub(crate) const TRACK_EVENTS: Operation = Operation {
    name: "mobile.track_events",
    target: "gateway",
    about: "TrackEvents: `batch` events of one user's or device's session, as the app flushes them",
    auth: Auth::AppUser,
    check: check::<TrackParams>,
    build: build_track,
};

fn client(conn: &Connection) -> MobileServiceClient<Channel> {
    MobileServiceClient::with_origin(conn.channel(), conn.origin().clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The device the app runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Device {
    /// A phone.
    #[default]
    Phone,
    /// A tablet.
    Tablet,
    /// A low-end phone or slow network.
    LowEnd,
}

impl Device {
    fn class(self) -> i32 {
        match self {
            Self::Phone => pb::DeviceClass::Phone as i32,
            Self::Tablet => pb::DeviceClass::Tablet as i32,
            Self::LowEnd => pb::DeviceClass::LowEnd as i32,
        }
    }
}

fn check_signed_in(share: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&share) {
        Ok(())
    } else {
        Err("signed_in: must be between 0 and 1 (the share of calls by signed-in users)".to_owned())
    }
}

/// Parameters of `mobile.get_home_feed`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FeedParams {
    /// How viewers are picked.
    users: Pick,
    /// Share of calls by signed-in users; the rest are anonymous devices.
    signed_in: f64,
    /// `phone`, `tablet` or `low_end`.
    device_class: Device,
}

impl Default for FeedParams {
    fn default() -> Self {
        Self {
            users: Pick::Zipf,
            signed_in: 0.8,
            device_class: Device::Phone,
        }
    }
}

impl Params for FeedParams {
    fn validate(&self) -> Result<(), String> {
        check_signed_in(self.signed_in)
    }
}

/// Parameters of `mobile.get_product_page`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PageParams {
    /// How viewers are picked.
    users: Pick,
    /// Share of calls by signed-in users.
    signed_in: f64,
    /// `phone`, `tablet` or `low_end`.
    device_class: Device,
    /// How products are picked.
    items: Pick,
    /// Item ids as the catalog spells them, `{}` the rank (default: the population's).
    item_format: Option<String>,
}

impl Default for PageParams {
    fn default() -> Self {
        Self {
            users: Pick::Zipf,
            signed_in: 0.8,
            device_class: Device::Phone,
            items: Pick::Zipf,
            item_format: None,
        }
    }
}

impl Params for PageParams {
    fn validate(&self) -> Result<(), String> {
        check_signed_in(self.signed_in)?;
        ItemIds::new(self.item_format.as_deref()).map(|_| ())
    }
}

/// Parameters of `mobile.track_events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TrackParams {
    /// How viewers are picked.
    users: Pick,
    /// Share of calls by signed-in users.
    signed_in: f64,
    /// Events per call (the gateway takes at most 200).
    batch: usize,
    /// Behaviour mix (as `profile.record_events`'s).
    mix: Mix,
    /// Item ids as the catalog spells them, `{}` the rank (default: the population's).
    item_format: Option<String>,
}

impl Default for TrackParams {
    /// An app flushing its queue every few screens: a handful of events.
    fn default() -> Self {
        Self {
            users: Pick::Zipf,
            signed_in: 0.8,
            batch: 8,
            mix: Mix::default(),
            item_format: None,
        }
    }
}

impl Params for TrackParams {
    fn validate(&self) -> Result<(), String> {
        check_signed_in(self.signed_in)?;
        if !(1..=200).contains(&self.batch) {
            return Err("batch: must be between 1 and 200 (the gateway's limit)".to_owned());
        }
        self.mix.validate()?;
        ItemIds::new(self.item_format.as_deref()).map(|_| ())
    }
}

/// Who makes each call, and the headers saying so.
struct Viewers {
    users: UserPicker,
    signed_in: f64,
    tokens: Arc<UserTokens>,
}

/// A viewer's request headers.
struct Identity {
    /// `authorization` for a user, `x-device-id` for a device.
    header: (&'static str, MetadataValue<Ascii>),
    /// `x-forwarded-for`.
    address: MetadataValue<Ascii>,
}

impl Viewers {
    fn new(conn: &Connection, users: Pick, signed_in: f64) -> anyhow::Result<Self> {
        let tokens = conn.user_tokens().cloned().with_context(|| {
            format!(
                "target {}: mobile operations need app-user credentials",
                conn.name()
            )
        })?;
        Ok(Self {
            users: UserPicker::new(users),
            signed_in,
            tokens,
        })
    }

    /// The next viewer's headers; fails only if a token cannot be minted.
    fn pick(&self, generator: &mut Generator) -> Result<Identity, tonic::Status> {
        let rank = self.users.pick(generator);
        let signed_in = generator.rng.random_bool(self.signed_in);
        let header = if signed_in {
            let user = generator.population().user_id(rank);
            let value = self.tokens.authorization(&user).map_err(|err| {
                tonic::Status::unauthenticated(format!("loadgen could not mint a token: {err:#}"))
            })?;
            ("authorization", value)
        } else {
            let raw = format!("{}d{rank:07}", generator.population().spec().id_prefix);
            let value = MetadataValue::try_from(device_id(&raw))
                .map_err(|_| tonic::Status::internal("device id is not ASCII"))?;
            (DEVICE_HEADER, value)
        };
        // Mobile carriers' addresses (100.64.0.0/10), one per viewer.
        let h = mix(rank.wrapping_mul(2) + u64::from(signed_in));
        let address = format!("100.{}.{}.{}", 64 + (h >> 16) % 64, (h >> 8) % 256, h % 256);
        let address = MetadataValue::try_from(address)
            .map_err(|_| tonic::Status::internal("address is not ASCII"))?;
        Ok(Identity { header, address })
    }
}

/// `message` as `identity`'s request.
fn request<T>(message: T, identity: Identity) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(identity.header.0, identity.header.1);
    metadata.insert("x-forwarded-for", identity.address);
    request
}

/// A call that fails at once (the viewer's headers could not be made).
fn failed(request_bytes: usize, status: tonic::Status) -> Call {
    Call {
        request_bytes,
        send: Box::pin(async move { Err(status) }),
    }
}

/// Whether a module has items, and whether its backend failed.
fn module_state(module: &pb::FeedModule) -> (bool, bool) {
    (
        !module.items.is_empty(),
        module.state == pb::ModuleState::Unavailable as i32,
    )
}

fn build_home_feed(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: FeedParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(HomeFeed {
        conn: conn.clone(),
        viewers: Viewers::new(conn, p.users, p.signed_in)?,
        device_class: p.device_class.class(),
    }))
}

struct HomeFeed {
    conn: Arc<Connection>,
    viewers: Viewers,
    device_class: i32,
}

impl Step for HomeFeed {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let message = pb::GetHomeFeedRequest {
            device_class: self.device_class,
        };
        let request_bytes = message.encoded_len();
        let identity = match self.viewers.pick(generator) {
            Ok(identity) => identity,
            Err(status) => return failed(request_bytes, status),
        };
        let request = request(message, identity);
        let mut client = client(&self.conn);
        Call {
            request_bytes,
            send: Box::pin(async move {
                let response = client.get_home_feed(request).await?.into_inner();
                let states: Vec<(bool, bool)> = response
                    .feed
                    .as_ref()
                    .map(|f| f.modules.iter().map(module_state).collect())
                    .unwrap_or_default();
                Ok(Reply {
                    items: 1,
                    response_bytes: response.encoded_len(),
                    empty: !states.iter().any(|(filled, _)| *filled),
                    partial: states.iter().any(|(_, unavailable)| *unavailable),
                    ..Reply::default()
                })
            }),
        }
    }
}

fn build_product_page(
    table: &toml::Table,
    conn: &Arc<Connection>,
) -> anyhow::Result<Arc<dyn Step>> {
    let p: PageParams = params(table).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(ProductPage {
        conn: conn.clone(),
        viewers: Viewers::new(conn, p.users, p.signed_in)?,
        device_class: p.device_class.class(),
        items: ItemPicker::new(p.items),
        ids: ItemIds::new(p.item_format.as_deref()).map_err(anyhow::Error::msg)?,
    }))
}

struct ProductPage {
    conn: Arc<Connection>,
    viewers: Viewers,
    device_class: i32,
    items: ItemPicker,
    ids: ItemIds,
}

impl Step for ProductPage {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let rank = self.items.pick(generator);
        let message = pb::GetProductPageRequest {
            item_id: generator.item_id(&self.ids, rank),
            device_class: self.device_class,
        };
        let request_bytes = message.encoded_len();
        let identity = match self.viewers.pick(generator) {
            Ok(identity) => identity,
            Err(status) => return failed(request_bytes, status),
        };
        let request = request(message, identity);
        let mut client = client(&self.conn);
        Call {
            request_bytes,
            send: Box::pin(async move {
                let response = client.get_product_page(request).await?.into_inner();
                let states: Vec<(bool, bool)> = [&response.similar, &response.bought_together]
                    .into_iter()
                    .flatten()
                    .map(module_state)
                    .collect();
                Ok(Reply {
                    items: 1,
                    response_bytes: response.encoded_len(),
                    // The product alone is a page, but without recommendations on it the
                    // recommend service did no work.
                    empty: response.product.is_none() || !states.iter().any(|(filled, _)| *filled),
                    partial: states.iter().any(|(_, unavailable)| *unavailable),
                    ..Reply::default()
                })
            }),
        }
    }
}

fn build_track(table: &toml::Table, conn: &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>> {
    let p: TrackParams = params(table).map_err(anyhow::Error::msg)?;
    let ids = ItemIds::new(p.item_format.as_deref()).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(TrackEvents {
        conn: conn.clone(),
        viewers: Viewers::new(conn, p.users, p.signed_in)?,
        batch: p.batch,
        behaviour: Behaviour::new(&p.mix, ids)?,
    }))
}

struct TrackEvents {
    conn: Arc<Connection>,
    viewers: Viewers,
    batch: usize,
    behaviour: Behaviour,
}

/// The app's spelling of a behaviour event (the viewer is the caller, not a field).
fn tracked(event: BehaviorEvent) -> pb::TrackEvent {
    let kind = match BehaviorType::try_from(event.r#type) {
        Ok(BehaviorType::View) => pb::EventKind::View,
        Ok(BehaviorType::Search) => pb::EventKind::Search,
        Ok(BehaviorType::Click) => pb::EventKind::Click,
        Ok(BehaviorType::AddToCart) => pb::EventKind::AddToCart,
        Ok(BehaviorType::RemoveFromCart) => pb::EventKind::RemoveFromCart,
        Ok(BehaviorType::Purchase) => pb::EventKind::Purchase,
        Ok(BehaviorType::Review) => pb::EventKind::Review,
        Ok(BehaviorType::Share) => pb::EventKind::Share,
        Ok(BehaviorType::Unspecified) | Err(_) => pb::EventKind::Unspecified,
    };
    pb::TrackEvent {
        event_id: event.event_id,
        kind: kind as i32,
        occurred_at: event.occurred_at,
        item_id: event.item_id,
        query: event.query,
        quantity: event.quantity,
        unit_price: event.unit_price,
        rating: event.rating,
        review_text: event.review_text,
        session_id: event.session_id,
    }
}

impl Step for TrackEvents {
    fn prepare(&self, generator: &mut Generator) -> Call {
        let now = now();
        let session = session_id(generator);
        let events = (0..self.batch)
            .map(|_| tracked(self.behaviour.event(generator, "", now, session.clone())))
            .collect();
        let message = pb::TrackEventsRequest { events };
        let request_bytes = message.encoded_len();
        let identity = match self.viewers.pick(generator) {
            Ok(identity) => identity,
            Err(status) => return failed(request_bytes, status),
        };
        let request = request(message, identity);
        let mut client = client(&self.conn);
        Call {
            request_bytes,
            send: Box::pin(async move {
                let response = client.track_events(request).await?.into_inner();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_behaviour_has_an_app_event_kind() {
        for kind in [
            BehaviorType::View,
            BehaviorType::Search,
            BehaviorType::Click,
            BehaviorType::AddToCart,
            BehaviorType::RemoveFromCart,
            BehaviorType::Purchase,
            BehaviorType::Review,
            BehaviorType::Share,
        ] {
            let event = tracked(BehaviorEvent {
                r#type: kind as i32,
                ..BehaviorEvent::default()
            });
            // The two enums number the behaviours alike; the gateway maps them back.
            assert_eq!(event.kind, kind as i32, "{kind:?}");
        }
    }

    #[test]
    fn parameters_are_checked() {
        let table = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
        assert!(check::<FeedParams>(&table("device_class = \"tablet\"\nsigned_in = 0.5")).is_ok());
        assert_eq!(
            check::<FeedParams>(&table("signed_in = 1.5")).unwrap_err(),
            "signed_in: must be between 0 and 1 (the share of calls by signed-in users)"
        );
        assert!(check::<FeedParams>(&table("device_class = \"watch\"")).is_err());
        assert!(check::<PageParams>(&table("item_format = \"item-{}\"")).is_ok());
        assert!(
            check::<PageParams>(&table("item_format = \"item-\""))
                .unwrap_err()
                .starts_with("item_format: ")
        );
        assert!(check::<TrackParams>(&table("batch = 201")).is_err());
        assert!(check::<TrackParams>(&table("batch = 20\nmix = { view = 1 }")).is_ok());
    }
}
