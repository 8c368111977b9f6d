//! The gateway: the mobile app's only door into Tailor.
//!
//! It serves `tailor.mobile.v1` over gRPC-web (binary and text) and gRPC on one port, with
//! HTTP/1.1 and HTTP/2, plus the storefront page. It verifies app users' JWTs (anonymous
//! devices may browse), applies rate limits per user and per IP, gives every screen a time
//! budget and every backend call a deadline, assembles screens from several services in
//! parallel, and degrades module by module when a backend is slow or down. Backends are
//! called with the gateway's service credential and the verified user id, never the raw token.
//!
//! # Layout
//! - [`api`]: the gRPC service, thin: admit (identity, limits, budget), call, convert.
//! - [`domain`]: layout rules, feed assembly, the screens (use-cases).
//! - [`upstream`]: typed calls to profile and recommend.
//! - [`auth`]: user tokens (HS256 or JWKS) and device ids.
//! - [`limits`]: rate limits (Redis or in-process).
//! - [`web`]: the storefront page and development tokens.
//! - [`config`] and [`error`].

pub mod api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod limits;
pub mod upstream;
pub mod web;

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tailor_kit::auth::TokenSource;
use tailor_kit::grpc::client::{Outbound, UpstreamSettings};
use tailor_kit::grpc::health;
use tailor_kit::grpc::in_process::InProcess;
use tailor_kit::grpc::server::{self, Health};
use tailor_kit::redis::Redis;
use tailor_kit::shutdown::CancellationToken;
use tailor_proto::mobile::v1::mobile_service_server::MobileServiceServer;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::Settings;

use crate::api::MobileApi;
use crate::auth::UserAuth;
use crate::domain::screens::Screens;
use crate::limits::Limiter;
use crate::upstream::Upstream;

/// The gRPC services the gateway hosts.
pub const SERVICES: [&str; 1] = [<MobileServiceServer<MobileApi> as NamedService>::NAME];

/// Scopes of the gateway's own service credential: it reads on its own only the catalog
/// and popularity; everything personal is read acting for the verified user.
pub const SCOPES: [&str; 0] = [];

/// What the gateway needs from the process.
#[derive(Clone)]
pub struct Deps {
    /// Redis, for shared rate limits (in-process without it).
    pub redis: Option<Redis>,
    /// The gateway's service credential.
    pub tokens: TokenSource,
    /// The upstream services running in this same process, if any.
    pub in_process: InProcessUpstreams,
}

/// Where upstream services of this process publish their routes (`tailor serve all`).
#[derive(Clone, Debug, Default)]
pub struct InProcessUpstreams {
    /// The profile service's.
    pub profile: Option<InProcess>,
    /// The recommend service's.
    pub recommend: Option<InProcess>,
}

/// A ready-to-serve gateway.
pub struct App {
    settings: Settings,
    api: MobileApi,
    auth: UserAuth,
    limiter: Limiter,
}

impl App {
    /// Loads keys and wires the upstream clients (connected lazily, so backends may start
    /// later or restart without the gateway noticing more than failed modules).
    pub async fn build(settings: Settings, deps: Deps) -> anyhow::Result<Self> {
        let auth = UserAuth::new(&settings.jwt).await?;
        let limiter = Limiter::new(&settings.rate_limit, deps.redis.as_ref());
        let upstreams = &settings.upstreams;
        let outbound = |to: &UpstreamSettings, local: Option<InProcess>| {
            let remote = Outbound::to(to, deps.tokens.clone())?;
            anyhow::Ok(match local {
                Some(slot) if upstreams.in_process => {
                    tracing::info!(upstream = %to.url, "calling in process while it serves here");
                    remote.or_in_process(slot)
                }
                _ => remote,
            })
        };
        let upstream = Upstream::new(
            outbound(&upstreams.profile, deps.in_process.profile)?,
            outbound(&upstreams.recommend, deps.in_process.recommend)?,
            settings.deadlines.backend_call,
        );
        let screens = Screens::new(upstream, settings.layout.clone());
        let api = MobileApi::new(
            screens,
            auth.clone(),
            limiter.clone(),
            settings.deadlines.screen,
            settings.trust_forwarded_for,
        );
        Ok(Self {
            settings,
            api,
            auth,
            limiter,
        })
    }

    /// gRPC, gRPC-web and the storefront on one set of routes.
    pub fn routes(&self) -> Routes {
        let max = self.settings.server.max_message_bytes;
        let mobile = MobileServiceServer::new(self.api.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let router = Routes::new(mobile)
            .into_axum_router()
            // Translates gRPC-web (binary and text) to gRPC. Only on the API: it refuses plain
            // HTTP/1.1 requests, which the page's routes are.
            .layer(tonic_web::GrpcWebLayer::new())
            .merge(web::routes(self.auth.clone(), self.settings.dev_tokens))
            // Outermost, so browsers' preflight requests are answered before anything else.
            .layer(cors(&self.settings.allowed_origins));
        Routes::from(router)
    }

    /// Serves on `listener` until `stop`.
    pub async fn serve(self, listener: TcpListener, stop: CancellationToken) -> anyhow::Result<()> {
        let health = Health::new(&SERVICES).await;
        let routes = self.routes();
        // The gateway depends on nothing that could make it useless: backends degrade per module.
        let watcher = tokio::spawn(health::watch(
            health.clone(),
            Vec::new(),
            Duration::from_secs(5),
            stop.clone(),
        ));
        let refresher = tokio::spawn(self.auth.clone().refresh_periodically(stop.clone()));
        let limiter = self.limiter.clone();
        let forget_stop = stop.clone();
        let forgetter = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = forget_stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(60)) => limiter.forget_idle(),
                }
            }
        });
        // gRPC-web and the storefront need HTTP/1.1 whatever the settings say: a partial
        // `server` section (e.g. only `listen` from the environment) would otherwise turn it off.
        let server_settings = server::ServerSettings {
            accept_http1: true,
            ..self.settings.server.clone()
        };
        let result = server::serve(
            listener,
            &server_settings,
            routes,
            &health,
            // Nothing in this process calls the gateway.
            &InProcess::new(),
            stop.clone().cancelled_owned(),
        )
        .await;
        stop.cancel();
        let _ = tokio::join!(watcher, refresher, forgetter);
        result
    }

    /// The user-token authority (to mint development tokens).
    pub fn auth(&self) -> &UserAuth {
        &self.auth
    }
}

/// CORS for browsers: only listed origins, and the gRPC status headers exposed so gRPC-web
/// clients can read errors.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("x-device-id"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(3600))
}
