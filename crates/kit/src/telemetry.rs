//! Logs, traces and metrics, set up once per process.
//!
//! - Logs: `tracing` to stdout, pretty on a terminal and JSON otherwise (containers), filtered
//!   by `RUST_LOG` or the configured filter. A JSON line written inside a span carries the
//!   `trace_id` and `span_id` of its OpenTelemetry span, so logs and traces lead to each other.
//!   Span fields stay out of log lines (they may name users); only the ids are added.
//! - Traces: every span is an OpenTelemetry span (so trace ids exist and propagate across
//!   hops even without a collector); exported over OTLP/gRPC when an endpoint is configured
//!   (`telemetry.otlp_endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//! - Metrics: recorded through the OpenTelemetry meter API, exported over OTLP with the
//!   traces and served for Prometheus at `telemetry.metrics_listen` `/metrics`.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, MakeWriter};
use tracing_subscriber::layer::{Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{ConfigError, Validate, check_range};

/// How logs look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable, multi-line.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Telemetry settings, shared by every role of the process.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Log format.
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,tailor_profile=debug`; `RUST_LOG` wins.
    pub log_filter: String,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`; falls back to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`. Unset: nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// Where to serve Prometheus metrics (`/metrics`); unset: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Share of traces sampled at their root, 0..=1.
    pub trace_sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            metrics_listen: None,
            trace_sample_ratio: 1.0,
        }
    }
}

impl TelemetrySettings {
    /// The configured endpoint, or `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn effective_otlp_endpoint(&self) -> Option<String> {
        self.otlp_endpoint.clone().or_else(|| {
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|v| !v.is_empty())
        })
    }
}

impl Validate for TelemetrySettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            prefix,
            "trace_sample_ratio",
            self.trace_sample_ratio,
            0.0..=1.0,
        )?;
        EnvFilter::try_new(&self.log_filter).map_err(|err| {
            ConfigError::invalid(crate::config::key(prefix, "log_filter"), err.to_string())
        })?;
        Ok(())
    }
}

/// Keeps exporters alive; flushes pending spans and metrics when dropped.
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard").finish_non_exhaustive()
    }
}

impl TelemetryGuard {
    /// The Prometheus registry the metrics land in.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Serves this process's metrics at `http://listen/metrics` until `stop`.
    pub fn metrics_server(
        &self,
        listen: SocketAddr,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        serve_metrics(listen, self.registry.clone(), stop)
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(err) = self.tracer_provider.shutdown() {
            eprintln!("flushing traces failed: {err}");
        }
        if let Err(err) = self.meter_provider.shutdown() {
            eprintln!("flushing metrics failed: {err}");
        }
    }
}

/// Installs the global subscriber, tracer, meter and propagator for `service_name` (the
/// OpenTelemetry `service.name`). Call once, inside the Tokio runtime, before serving.
pub fn init(service_name: &str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let endpoint = settings.effective_otlp_endpoint();

    let mut tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.trace_sample_ratio,
        ))));
    if let Some(endpoint) = &endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .context("building the OTLP span exporter")?;
        tracer_provider = tracer_provider.with_batch_exporter(exporter);
    }
    let tracer_provider = tracer_provider.build();
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());

    let registry = prometheus::Registry::new();
    let prometheus_reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_target_info()
        .scope_info_enabled(false)
        .build()
        .context("building the Prometheus exporter")?;
    let mut meter_provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(prometheus_reader);
    if let Some(endpoint) = &endpoint {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .context("building the OTLP metric exporter")?;
        meter_provider = meter_provider.with_periodic_exporter(exporter);
    }
    let meter_provider = meter_provider.build();
    opentelemetry::global::set_meter_provider(meter_provider.clone());

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .context("log filter")?;
    let otel_layer =
        tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer(service_name.to_owned()));
    let json = match settings.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry_subscriber = tracing_subscriber::registry().with(filter).with(otel_layer);
    if json {
        registry_subscriber
            .with(json_log_layer(std::io::stdout))
            .try_init()
            .context("installing the tracing subscriber")?;
    } else {
        registry_subscriber
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init()
            .context("installing the tracing subscriber")?;
    }

    Ok(TelemetryGuard {
        tracer_provider,
        meter_provider,
        registry,
    })
}

/// One JSON object per line on `make_writer`: tracing-subscriber's JSON format (event fields
/// flattened, no span fields, which may carry personal data) with the current OpenTelemetry
/// span's `trace_id` and `span_id` in front.
fn json_log_layer<S, W>(make_writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let dispatch = DispatchSlot::default();
    let format = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(make_writer)
        .map_event_format(|json| WithTraceIds {
            inner: json,
            dispatch: dispatch.clone(),
        });
    dispatch.and_then(format)
}

/// Remembers the dispatcher its subscriber was registered with. The formatter needs it to ask
/// the OpenTelemetry layer for a span's context: inside an event callback
/// `tracing::dispatcher::get_default` yields no dispatcher once a scoped one was ever set (as
/// tests do). Weak, because the dispatcher owns this layer.
#[derive(Clone, Default)]
struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> Layer<S> for DispatchSlot {
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.0.set(dispatch.downgrade());
    }
}

/// Writes the inner JSON line with `"trace_id"` and `"span_id"` of the event's span first.
struct WithTraceIds {
    inner: Format<Json>,
    dispatch: DispatchSlot,
}

impl WithTraceIds {
    /// The OpenTelemetry span context of the span the event belongs to, if it has one.
    fn span_context<S>(&self, ctx: &FmtContext<'_, S, JsonFields>) -> Option<SpanContext>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // Take the id and let the span go: reading the context locks the span's extensions.
        // Reading it also starts the OpenTelemetry span, as `Span::context()` would; the kit
        // sets remote parents right after creating a span, before anything logs in it.
        let id = ctx.parent_span()?.id();
        let dispatch = self.dispatch.0.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(&id, &dispatch)?;
        // Unsampled spans keep valid ids too, so their lines still correlate with each other.
        let span_context = cx.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }
}

impl<S> FormatEvent<S, JsonFields> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(span) = self.span_context(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            // The ids are hex digits, so they need no escaping; the inner object always has
            // a timestamp and a level, so a comma follows.
            Some(rest) if !rest.starts_with('}') => write!(
                writer,
                "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
                span.trace_id(),
                span.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

/// Serves `registry` in the Prometheus text format at `http://listen/metrics` until `stop`.
pub async fn serve_metrics(
    listen: SocketAddr,
    registry: prometheus::Registry,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding metrics on {listen}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { render_metrics(&registry) }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("serving metrics")
}

fn render_metrics(registry: &prometheus::Registry) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match prometheus::TextEncoder::new().encode_to_string(&registry.gather()) {
        Ok(text) => (
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "encoding metrics failed");
            http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::Value;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;

    /// Collects what the log layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Self;

        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
                .collect()
        }
    }

    /// Logs through the JSON layer under `sampler`; returns the lines and the ids of the
    /// span `rpc` and of its child span `store`.
    fn log_with(sampler: Sampler) -> (Vec<Value>, [(String, String); 2]) {
        let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(json_log_layer(captured.clone()));
        let ids_of = |span: &tracing::Span| {
            let cx = span.context();
            let span_context = cx.span().span_context().clone();
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        };
        let ids = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before any span");
            let rpc = tracing::info_span!("rpc", user_id = "alice@example.com");
            let store = tracing::info_span!(parent: &rpc, "store");
            {
                let _entered = rpc.enter();
                tracing::info!(rows = 3, "inside rpc");
                store.in_scope(|| tracing::warn!("inside store"));
            }
            tracing::info!(parent: &rpc, "explicit parent");
            [ids_of(&rpc), ids_of(&store)]
        });
        (captured.lines(), ids)
    }

    fn ids(line: &Value) -> (Option<&str>, Option<&str>) {
        (line["trace_id"].as_str(), line["span_id"].as_str())
    }

    #[test]
    fn json_lines_carry_the_trace_and_span_id_of_their_span_and_no_span_fields() {
        let (lines, [rpc, store]) = log_with(Sampler::AlwaysOn);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(rpc.0.len(), 32);
        assert_eq!(rpc.1.len(), 16);
        assert_eq!(store.0, rpc.0, "a child span shares its parent's trace");
        assert_ne!(store.1, rpc.1);

        assert_eq!(ids(&lines[0]), (None, None), "no span, no ids");
        assert_eq!(lines[0]["message"], "before any span");

        assert_eq!(ids(&lines[1]), (Some(&*rpc.0), Some(&*rpc.1)));
        assert_eq!(lines[1]["message"], "inside rpc");
        assert_eq!(lines[1]["rows"], 3, "event fields stay flattened");
        assert_eq!(lines[1]["level"], "INFO");
        assert!(lines[1]["timestamp"].is_string());

        assert_eq!(ids(&lines[2]), (Some(&*store.0), Some(&*store.1)));
        assert_eq!(ids(&lines[3]), (Some(&*rpc.0), Some(&*rpc.1)));

        let all: String = lines.iter().map(Value::to_string).collect();
        assert!(
            !all.contains("alice"),
            "span fields leaked into logs: {all}"
        );
    }

    #[test]
    fn unsampled_spans_still_give_their_lines_trace_ids() {
        let (lines, [rpc, _]) = log_with(Sampler::AlwaysOff);
        assert_eq!(rpc.0.len(), 32);
        assert_eq!(ids(&lines[1]), (Some(&*rpc.0), Some(&*rpc.1)));
    }
}
