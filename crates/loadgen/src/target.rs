//! Connections to the systems under load, over plain gRPC (HTTP/2, a few long-lived
//! multiplexed connections used round-robin) or gRPC-web (HTTP/1.1 through tonic-web's
//! client layer, a pool of keep-alive connections, as a browser or the mobile web client
//! talks to the gateway). Both are erased into one [`Channel`] type, so the steps' generated
//! clients do not care which one they run over.
//!
//! Every request to a service carries a service credential: Tailor's services verify it
//! (part of what is measured); the echo baseline ignores it, but pays for its bytes on the
//! wire too. Requests to the gateway carry an app user's token or a device id instead, set
//! by the step on each call ([`Credentials::AppUsers`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tailor_kit::auth::TokenSource;
use tonic::body::Body;
use tonic::transport::Endpoint;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use crate::identity::UserTokens;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A transport-independent gRPC channel: give it to a generated client's `with_origin`.
pub type Channel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, ChannelError>;

/// A transport failure. A named type rather than a bare `Box<dyn Error>`: the generated
/// clients convert it `Into<Box<dyn Error + 'a>>` for any lifetime, which only the generic
/// `From<E: Error>` impl provides. tonic still finds the status (e.g. UNAVAILABLE) through
/// [`std::error::Error::source`].
#[derive(Debug)]
pub struct ChannelError(BoxError);

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// How requests travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// gRPC over HTTP/2.
    #[default]
    Grpc,
    /// gRPC-web over HTTP/1.1 (tonic-web's client layer).
    GrpcWeb,
}

impl Transport {
    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
        }
    }
}

/// The credential put on every request.
#[derive(Clone)]
pub enum Credentials {
    /// No `authorization` header.
    None,
    /// A fixed bearer token (e.g. from `tailor token`).
    Fixed(HeaderValue),
    /// Tokens minted (and re-minted before they expire) from the configured secret.
    Minted(TokenSource),
    /// No header on the connection: each call names its app user or device (the gateway).
    AppUsers(Arc<UserTokens>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Fixed(_) => "Fixed(..)",
            Self::Minted(_) => "Minted(..)",
            Self::AppUsers(_) => "AppUsers(..)",
        })
    }
}

impl Credentials {
    /// A fixed bearer token.
    pub fn bearer(token: &str) -> anyhow::Result<Self> {
        Ok(Self::Fixed(tailor_kit::auth::bearer_header(token.trim())?))
    }

    fn header(&self) -> Result<Option<HeaderValue>, BoxError> {
        match self {
            Self::None | Self::AppUsers(_) => Ok(None),
            Self::Fixed(value) => Ok(Some(value.clone())),
            Self::Minted(tokens) => Ok(Some(
                tokens
                    .authorization()
                    .map_err(|err| -> BoxError { err.into() })?,
            )),
        }
    }
}

/// A target: its address and a few channels to it, handed out round-robin.
#[derive(Debug)]
pub struct Connection {
    name: String,
    origin: Uri,
    transport: Transport,
    channels: Vec<Channel>,
    next: AtomicUsize,
    users: Option<Arc<UserTokens>>,
}

impl Connection {
    /// Lazily connected channels to `url` (nothing is dialled until the first request).
    pub fn open(
        name: &str,
        url: &str,
        transport: Transport,
        connections: usize,
        credentials: Credentials,
    ) -> anyhow::Result<Arc<Self>> {
        let origin: Uri = url
            .parse()
            .with_context(|| format!("target {name}: url `{url}`"))?;
        let users = match &credentials {
            Credentials::AppUsers(tokens) => Some(tokens.clone()),
            _ => None,
        };
        let channels = match transport {
            Transport::Grpc => (0..connections.max(1))
                .map(|_| grpc_channel(url, credentials.clone()))
                .collect::<anyhow::Result<_>>()
                .with_context(|| format!("target {name}: url `{url}`"))?,
            // HTTP/1.1 carries one request at a time per connection: one pooled client
            // opens as many keep-alive connections as there are requests in flight.
            Transport::GrpcWeb => vec![grpc_web_channel(credentials)],
        };
        Ok(Arc::new(Self {
            name: name.to_owned(),
            origin,
            transport,
            channels,
            next: AtomicUsize::new(0),
            users,
        }))
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens; the origin for generated clients.
    pub fn origin(&self) -> &Uri {
        &self.origin
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// App users' tokens, when the connection's calls are made as app users.
    pub fn user_tokens(&self) -> Option<&Arc<UserTokens>> {
        self.users.as_ref()
    }

    /// The next channel, round-robin.
    pub fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }
}

fn grpc_channel(url: &str, credentials: Credentials) -> anyhow::Result<Channel> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Batches of hundreds of events are tens of kilobytes: windows larger than HTTP/2's
        // 64 KiB default keep big requests from stalling on flow control.
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .connect_lazy();
    Ok(authenticated(channel, credentials))
}

fn grpc_web_channel(credentials: Credentials) -> Channel {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build::<_, tonic_web::GrpcWebCall<Body>>(connector);
    let web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(client)
        .map_response(|response| response.map(Body::new))
        .map_err(BoxError::from);
    authenticated(web, credentials)
}

/// `inner` with the credential's `authorization` header on every request.
fn authenticated<S>(inner: S, credentials: Credentials) -> Channel
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone,
    S: Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let service = inner.map_err(|err| ChannelError(err.into())).map_request(
        move |mut request: http::Request<Body>| {
            // A token that cannot be minted fails the call at the server (UNAUTHENTICATED),
            // which the report shows, rather than panicking the generator.
            if let Ok(Some(value)) = credentials.header() {
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
            request
        },
    );
    BoxCloneSyncService::new(service)
}
