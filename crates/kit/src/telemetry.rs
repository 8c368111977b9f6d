//! Logs, traces and metrics, set up once per process.
//!
//! - Logs: `tracing` to stdout, pretty on a terminal and JSON otherwise (containers), filtered
//!   by `RUST_LOG` or the configured filter.
//! - Traces: every span is an OpenTelemetry span (so trace ids exist and propagate across
//!   hops even without a collector); exported over OTLP/gRPC when an endpoint is configured
//!   (`telemetry.otlp_endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//! - Metrics: recorded through the OpenTelemetry meter API, exported over OTLP with the
//!   traces and served for Prometheus at `telemetry.metrics_listen` `/metrics`.

use std::io::IsTerminal as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{ConfigError, Validate, check_range};

/// How logs look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            )
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
