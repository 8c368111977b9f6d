//! Outbound calls to other services: lazily connected channels that carry this service's
//! credential and the W3C trace context of a client span on every request.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use http::HeaderValue;
use opentelemetry::propagation::Injector;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt as _;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::auth::{TokenSource, USER_ID_HEADER};
use crate::config::{ConfigError, Validate, key};
use crate::grpc::in_process::{self, BoxError, InProcess};

/// Where another service listens and how long calls to it may take.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// `http://host:port`.
    pub url: String,
    /// Deadline of each call unless the caller passes a shorter one.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long to wait for a TCP connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl UpstreamSettings {
    /// An upstream at `url` with default timeouts.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

impl Validate for UpstreamSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                key(prefix, "url"),
                format!("`{}` must start with http:// or https://", self.url),
            ));
        }
        Ok(())
    }
}

/// A channel to `settings.url`, connected on first use (so services may start in any order)
/// and reconnected after failures.
pub fn channel(settings: &UpstreamSettings) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(settings.url.clone())
        .with_context(|| format!("upstream url `{}`", settings.url))?
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// A channel that authenticates as this service and propagates trace context; give it to a
/// generated client: `ProfileServiceClient::new(outbound)`.
#[derive(Clone, Debug)]
pub struct Outbound {
    inner: Channel,
    in_process: Option<InProcess>,
    /// The in-process service `poll_ready` chose, for the next `call` (the slot may change in
    /// between; a channel must only be called after it was polled ready).
    ready_in_process: Option<in_process::Service>,
    tokens: TokenSource,
}

impl Outbound {
    /// Wraps `channel` with credentials from `tokens`.
    pub fn new(channel: Channel, tokens: TokenSource) -> Self {
        Self {
            inner: channel,
            in_process: None,
            ready_in_process: None,
            tokens,
        }
    }

    /// Calls the routes published in `slot` (the upstream runs in this process) instead of
    /// the channel, once they are published.
    #[must_use]
    pub fn or_in_process(mut self, slot: InProcess) -> Self {
        self.in_process = Some(slot);
        self
    }

    /// Connects lazily to `settings.url` with credentials from `tokens`.
    pub fn to(settings: &UpstreamSettings, tokens: TokenSource) -> anyhow::Result<Self> {
        Ok(Self::new(channel(settings)?, tokens))
    }
}

enum Transport {
    Channel(Channel),
    InProcess(in_process::Service),
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Outbound {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(service) = self.in_process.as_ref().and_then(InProcess::service) {
            // Always ready: its load shedding answers per call.
            self.ready_in_process = Some(service);
            return Poll::Ready(Ok(()));
        }
        self.ready_in_process = None;
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (service, method) = path.split_once('/').unwrap_or(("unknown", "unknown"));
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = %path,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
        );
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(request.headers_mut()));
        });
        let authorization = self.tokens.authorization();
        let transport = match self.ready_in_process.take() {
            Some(service) => Transport::InProcess(service),
            // The channel must be the one that was polled ready: take it, leave a clone behind.
            None => {
                let clone = self.inner.clone();
                Transport::Channel(std::mem::replace(&mut self.inner, clone))
            }
        };
        Box::pin(
            async move {
                let value = authorization.map_err(|err| -> BoxError { err.into() })?;
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
                match transport {
                    Transport::Channel(mut channel) => {
                        channel.call(request).await.map_err(Into::into)
                    }
                    Transport::InProcess(service) => service.oneshot(request).await,
                }
            }
            .instrument(span),
        )
    }
}

/// A request carrying `message` on behalf of end user `user_id`, with a deadline. Fails
/// (rather than silently dropping the user, which would let the call run with the service's
/// own rights) when the id cannot travel as metadata.
pub fn for_user<T>(
    message: T,
    user_id: &str,
    deadline: Option<Duration>,
) -> Result<tonic::Request<T>, tonic::Status> {
    let value = user_id
        .parse()
        .map_err(|_| super::status::invalid_argument("user_id", "must be printable ASCII"))?;
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(USER_ID_HEADER, value);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    Ok(request)
}
