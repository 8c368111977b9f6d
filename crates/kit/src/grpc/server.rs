//! The standard server every internal service runs: observability, load shedding, request
//! timeouts, health, reflection and graceful shutdown, configured once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::{HealthReporter, HealthService};

use crate::config::{ConfigError, Validate, check_range};
use crate::grpc::ObserveLayer;
use crate::grpc::in_process::InProcess;

/// How a gRPC server listens and protects itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Longest time one RPC may run (a shorter client `grpc-timeout` wins).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// RPCs handled at once across all connections; beyond it requests are refused with
    /// `RESOURCE_EXHAUSTED` at once instead of queueing (load shedding).
    pub concurrency_limit: usize,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// Serve gRPC reflection (v1 and v1alpha), so tools like grpcurl can list services.
    pub reflection: bool,
    /// After SIGTERM, how long in-flight RPCs may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Also accept HTTP/1.1 (the gateway: gRPC-web from browsers and its web page).
    pub accept_http1: bool,
}

impl ServerSettings {
    /// Defaults listening on `listen`.
    pub fn on(listen: SocketAddr) -> Self {
        Self {
            listen,
            ..Self::default()
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 1024,
            max_message_bytes: 8 * 1024 * 1024,
            reflection: true,
            shutdown_grace: Duration::from_secs(20),
            accept_http1: false,
        }
    }
}

impl Validate for ServerSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            prefix,
            "concurrency_limit",
            self.concurrency_limit,
            1..=1_000_000,
        )?;
        check_range(
            prefix,
            "max_message_bytes",
            self.max_message_bytes,
            1024..=256 * 1024 * 1024,
        )?;
        if self.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                crate::config::key(prefix, "request_timeout"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// The `grpc.health.v1` state of one server: every service it hosts, and "" for the whole.
/// Everything starts NOT_SERVING; [`crate::grpc::health::watch`] flips it once dependencies
/// answer, and [`serve`] sets NOT_SERVING again when shutdown begins.
#[derive(Clone, Debug)]
pub struct Health {
    reporter: HealthReporter,
    services: Vec<String>,
}

impl Health {
    /// Health for a server hosting `services` (fully qualified names).
    pub async fn new(services: &[&str]) -> Self {
        let health = Self {
            reporter: HealthReporter::new(),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
        };
        health.set(false).await;
        health
    }

    /// Marks every hosted service (and the server) SERVING or NOT_SERVING.
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for service in &self.services {
            self.reporter.set_service_status(service, status).await;
        }
    }

    /// Names of the hosted services.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    fn service(&self) -> tonic_health::pb::health_server::HealthServer<HealthService> {
        tonic_health::pb::health_server::HealthServer::new(HealthService::from_health_reporter(
            self.reporter.clone(),
        ))
    }
}

/// Binds `settings.listen`.
pub async fn bind(settings: &ServerSettings) -> anyhow::Result<TcpListener> {
    TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))
}

/// Serves `routes` (plus health and reflection) on `listener` until `shutdown` completes,
/// then reports NOT_SERVING, stops accepting and lets in-flight RPCs finish within the grace
/// period. The routes are also published in `in_process`, for callers in this process, with
/// the same layers and concurrency budget.
pub async fn serve(
    listener: TcpListener,
    settings: &ServerSettings,
    routes: Routes,
    health: &Health,
    in_process: &InProcess,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut routes = routes.add_service(health.service());
    if settings.reflection {
        routes = add_reflection(routes, health.services())?;
    }
    let budget = Arc::new(Semaphore::new(settings.concurrency_limit));
    let _published = in_process.publish(routes.clone(), budget.clone(), settings.request_timeout);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let health_on_shutdown = health.clone();
    let withdraw = in_process.clone();
    let stop = async move {
        shutdown.await;
        // Tell load balancers (and in-process callers) first, so no new RPCs arrive while we
        // drain.
        withdraw.withdraw();
        health_on_shutdown.set(false).await;
        let _ = draining_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        // Honours the client's grpc-timeout when shorter.
        .timeout(settings.request_timeout)
        .accept_http1(settings.accept_http1)
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // Outermost: spans and RED metrics see every RPC, including those shed below.
        .layer(ObserveLayer::new())
        // Refuse at once when at the limit rather than queue and time out later.
        .layer(tower::load_shed::LoadShedLayer::new())
        // One budget across all connections (and in-process callers): a per-connection
        // limit would let many connections overload us.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
            budget,
        ))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop);
    let grace = settings.shutdown_grace;
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("serving gRPC"),
        Ok(()) = draining_rx => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.context("serving gRPC"),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "in-flight RPCs did not finish within the grace period"
            );
            Ok(())
        }
    }
}

fn add_reflection(routes: Routes, services: &[String]) -> anyhow::Result<Routes> {
    let build = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tailor_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for service in services {
            builder = builder.with_service_name(service.clone());
        }
        builder
    };
    Ok(routes
        .add_service(build().build_v1().context("building reflection")?)
        .add_service(build().build_v1alpha().context("building reflection")?))
}
