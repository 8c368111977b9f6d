//! The server's observability layer: one span per RPC, joined to the caller's trace through
//! W3C `traceparent`, and RED metrics (requests, errors by gRPC code, duration) per method.
//!
//! A gRPC status travels in the response headers (errors answered at once) or in the
//! trailers after the body (everything else), so the layer wraps the body and finishes the
//! RPC when the trailers go by, or when the body is dropped (the client went away).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::propagation::Extractor;
use pin_project_lite::pin_project;
use tonic::Code;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reads W3C trace context from HTTP headers.
pub struct TraceContextExtractor<'a>(pub &'a HeaderMap);

impl Extractor for TraceContextExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[derive(Clone)]
struct Instruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

/// Wraps a server in per-RPC spans and RED metrics.
#[derive(Clone)]
pub struct ObserveLayer {
    instruments: Arc<Instruments>,
}

impl ObserveLayer {
    /// Instruments are taken from the global meter provider, so build the layer after
    /// telemetry is initialised.
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("tailor");
        Self {
            instruments: Arc::new(Instruments {
                requests: meter
                    .u64_counter("rpc.server.requests")
                    .with_description("RPCs handled, by service, method and gRPC status code")
                    .build(),
                duration: meter
                    .f64_histogram("rpc.server.duration")
                    .with_unit("s")
                    .with_description("Time from request to the end of the response")
                    .with_boundaries(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ])
                    .build(),
            }),
        }
    }
}

impl Default for ObserveLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            instruments: self.instruments.clone(),
        }
    }
}

/// See [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    instruments: Arc<Instruments>,
}

struct Finish {
    span: Span,
    start: Instant,
    attributes: [KeyValue; 2],
    instruments: Arc<Instruments>,
}

impl Finish {
    fn record(self, code: Code) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut attributes = Vec::with_capacity(3);
        attributes.extend_from_slice(&self.attributes);
        attributes.push(KeyValue::new("rpc.grpc.status_code", code as i64));
        self.instruments.requests.add(1, &attributes);
        self.instruments.duration.record(elapsed, &attributes);
        self.span.record("rpc.grpc.status_code", code as i64);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// Codes that mean the server failed, as opposed to refusing a bad request.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

fn code_of(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Observe<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    ResBody: Body,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&TraceContextExtractor(request.headers()))
        });
        // A failure here only means the span starts a new trace.
        let _ = span.set_parent(parent);
        let finish = Finish {
            span: span.clone(),
            start: Instant::now(),
            attributes: [
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
            ],
            instruments: self.instruments.clone(),
        };
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(tracing::Instrument::instrument(
            async move {
                match future.await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        let finish = match code_of(&parts.headers) {
                            Some(code) => {
                                finish.record(code);
                                None
                            }
                            None => Some(finish),
                        };
                        Ok(http::Response::from_parts(
                            parts,
                            ObservedBody {
                                inner: body,
                                finish,
                            },
                        ))
                    }
                    Err(err) => {
                        let err: Self::Error = err.into();
                        let code = if err.is::<tower::load_shed::error::Overloaded>() {
                            Code::ResourceExhausted
                        } else {
                            Code::Unknown
                        };
                        finish.record(code);
                        Err(err)
                    }
                }
            },
            span,
        ))
    }
}

pin_project! {
    /// A response body that finishes its RPC's span and metrics when the trailers pass.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        finish: Option<Finish>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(finish) = this.project().finish.take() {
                finish.record(Code::Cancelled);
            }
        }
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(finish) = this.finish.take()
                {
                    finish.record(code_of(trailers).unwrap_or(Code::Unknown));
                }
            }
            Some(Err(_)) => {
                if let Some(finish) = this.finish.take() {
                    finish.record(Code::Unknown);
                }
            }
            None => {
                if let Some(finish) = this.finish.take() {
                    finish.record(Code::Ok);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
