//! `tailor.mobile.v1.MobileService` (see `proto/tailor/mobile/v1`): every call is admitted
//! (identity, rate limits, time budget), then handed to the screens.

mod convert;

use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use tailor_kit::grpc::status::FieldViolations;
use tailor_proto::mobile::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::UserAuth;
use crate::domain::Viewer;
use crate::domain::screens::Screens;
use crate::error::Error;
use crate::limits::Limiter;
use crate::upstream::Budget;

/// After an event, the feed is rebuilt this much later: the time it takes the event to reach
/// the recommend service through the profile service and the bus.
const PROPAGATION: Duration = Duration::from_millis(400);
/// A streamed feed is refreshed at least this often, even without activity.
const STREAM_REFRESH: Duration = Duration::from_secs(30);

/// The mobile API.
#[derive(Clone)]
pub struct MobileApi {
    screens: Screens,
    auth: UserAuth,
    limiter: Limiter,
    screen_budget: Duration,
    trust_forwarded_for: bool,
}

impl MobileApi {
    /// The API over `screens`.
    pub fn new(
        screens: Screens,
        auth: UserAuth,
        limiter: Limiter,
        screen_budget: Duration,
        trust_forwarded_for: bool,
    ) -> Self {
        Self {
            screens,
            auth,
            limiter,
            screen_budget,
            trust_forwarded_for,
        }
    }

    /// Identifies the caller, applies rate limits and sets the time budget: the screen's,
    /// or less when the client's own deadline (`grpc-timeout`) is shorter.
    async fn admit<T>(&self, request: &Request<T>) -> Result<(Viewer, Budget), Error> {
        let viewer = self.auth.viewer(request.metadata()).await?;
        let ip = client_ip(request, self.trust_forwarded_for);
        self.limiter
            .admit(&viewer.backend_id(), ip)
            .await
            .map_err(Error::RateLimited)?;
        let client = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        // Keep a little back to serialise and send the answer before the client gives up.
        let budget = client.map_or(self.screen_budget, |c| {
            c.mul_f64(0.9).min(self.screen_budget)
        });
        Ok((viewer, Budget::new(budget)))
    }
}

fn client_ip<T>(request: &Request<T>, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = request
            .metadata()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    request.remote_addr().map(|a| a.ip())
}

/// `grpc-timeout` values: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<pb::StreamHomeFeedResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::mobile_service_server::MobileService for MobileApi {
    async fn get_home_feed(
        &self,
        request: Request<pb::GetHomeFeedRequest>,
    ) -> Result<Response<pb::GetHomeFeedResponse>, Status> {
        let (viewer, budget) = self.admit(&request).await?;
        let device = convert::device(request.get_ref().device_class);
        let feed = self.screens.home_feed(&viewer, device, budget).await;
        Ok(Response::new(pb::GetHomeFeedResponse {
            feed: Some(convert::feed(feed)),
        }))
    }

    type StreamHomeFeedStream = FeedStream;

    async fn stream_home_feed(
        &self,
        request: Request<pb::StreamHomeFeedRequest>,
    ) -> Result<Response<Self::StreamHomeFeedStream>, Status> {
        let (viewer, _) = self.admit(&request).await?;
        let device = convert::device(request.get_ref().device_class);
        let screens = self.screens.clone();
        let budget = self.screen_budget;
        let mut changes = screens.changes().subscribe(&viewer.backend_id());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last: Option<pb::HomeFeed> = None;
            loop {
                let feed = convert::feed(
                    screens
                        .home_feed(&viewer, device, Budget::new(budget))
                        .await,
                );
                let changed = last
                    .as_ref()
                    .is_none_or(|l| l.modules != feed.modules || l.layout != feed.layout);
                if changed {
                    last = Some(feed.clone());
                    if tx
                        .send(Ok(pb::StreamHomeFeedResponse { feed: Some(feed) }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::select! {
                    () = tx.closed() => return,
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        tokio::time::sleep(PROPAGATION).await;
                    }
                    () = tokio::time::sleep(STREAM_REFRESH) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_product_page(
        &self,
        request: Request<pb::GetProductPageRequest>,
    ) -> Result<Response<pb::GetProductPageResponse>, Status> {
        let (viewer, budget) = self.admit(&request).await?;
        let req = request.into_inner();
        if req.item_id.trim().is_empty() {
            let mut v = FieldViolations::new();
            v.add("item_id", "must be set");
            return Err(Error::from(v).into());
        }
        let page = self
            .screens
            .product_page(
                &viewer,
                &req.item_id,
                convert::device(req.device_class),
                budget,
            )
            .await
            .map_err(Error::from)?;
        Ok(Response::new(convert::product_page(page)))
    }

    async fn track_events(
        &self,
        request: Request<pb::TrackEventsRequest>,
    ) -> Result<Response<pb::TrackEventsResponse>, Status> {
        let (viewer, budget) = self.admit(&request).await?;
        let mut violations = FieldViolations::new();
        let events = convert::tracked(request.into_inner().events, &mut violations);
        violations.into_result()?;
        let ingested = self
            .screens
            .track(&viewer, events, budget)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(convert::ingested(ingested)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("10q"), None);
    }
}
