//! Calls between roles of one process (`tailor serve all`) without the network.
//!
//! A role publishes its routes in an [`InProcess`] slot while it serves; a caller's
//! [`Outbound`](super::client::Outbound) built with that slot hands requests straight to them,
//! skipping TCP and HTTP/2, and uses its channel whenever the role does not serve (not yet,
//! or no longer: it then fails as a call to a stopped server does).
//! Requests still pass the layers the role's network server applies (spans and RED metrics,
//! load shedding, the same concurrency budget, the request timeout, authentication), and
//! messages are still encoded, so both sides behave exactly as over the network.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::service::{RecoverErrorLayer, Routes};
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::grpc::ObserveLayer;

/// Errors of in-process calls (what a channel's are boxed into as well).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A role's routes behind its server layers, callable in process.
pub(crate) type Service = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// Where a role publishes its routes while it serves, for callers built before that.
#[derive(Clone, Default)]
pub struct InProcess(Arc<RwLock<Option<Service>>>);

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("published", &self.service().is_some())
            .finish()
    }
}

impl InProcess {
    /// An empty slot: calls through it use the network until a role publishes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `routes` behind the server's layers, sharing its concurrency `budget`, until
    /// the returned guard is dropped.
    #[must_use = "dropping the publication withdraws the routes at once"]
    pub(crate) fn publish(
        &self,
        routes: Routes,
        budget: Arc<Semaphore>,
        timeout: Duration,
    ) -> Publication {
        let service = ServiceBuilder::new()
            .map_response(|response: http::Response<_>| response.map(Body::new))
            // Errors of the layers below become statuses, as tonic's server answers them.
            .layer(RecoverErrorLayer::new())
            .layer(ObserveLayer::new())
            .map_err(|err: BoxError| -> BoxError {
                if err.is::<tower::timeout::error::Elapsed>() {
                    Box::new(tonic::TimeoutExpired(()))
                } else {
                    err
                }
            })
            .timeout(timeout)
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                budget,
            ))
            .service(routes);
        // A poisoned lock only means a panic elsewhere; the slot itself is always whole.
        *self.0.write().unwrap_or_else(PoisonError::into_inner) =
            Some(BoxCloneSyncService::new(service));
        Publication(self.clone())
    }

    /// Takes the routes down: the role stops serving.
    pub(crate) fn withdraw(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether a role serves through this slot now.
    pub fn is_published(&self) -> bool {
        self.service().is_some()
    }

    /// The published service, while the role serves.
    pub(crate) fn service(&self) -> Option<Service> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Withdraws published routes when dropped: the server stopped, however it stopped.
pub(crate) struct Publication(InProcess);

impl Drop for Publication {
    fn drop(&mut self) {
        self.0.withdraw();
    }
}
