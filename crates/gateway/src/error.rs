//! The gateway's errors and their one mapping to gRPC statuses.

use std::time::Duration;

use tailor_kit::grpc::status::{self, FieldViolations};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// What can go wrong at the edge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid identity.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Over a rate limit; retry after the duration.
    #[error("rate limit exceeded")]
    RateLimited(Duration),
    /// Bad request fields.
    #[error("invalid argument")]
    InvalidArgument(FieldViolations),
    /// A backend failed; its status decides what the app sees.
    #[error("upstream: {0}")]
    Upstream(Status),
}

impl From<crate::auth::Unauthenticated> for Error {
    fn from(err: crate::auth::Unauthenticated) -> Self {
        Self::Unauthenticated(err.0)
    }
}

impl From<FieldViolations> for Error {
    fn from(violations: FieldViolations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::Upstream(status)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Unauthenticated(reason) => Status::unauthenticated(reason),
            Error::RateLimited(wait) => Status::with_error_details(
                Code::ResourceExhausted,
                format!("rate limit exceeded, retry in {} ms", wait.as_millis()),
                ErrorDetails::with_retry_info(Some(wait)),
            ),
            Error::InvalidArgument(violations) => violations.into_status(),
            // What the app may learn from a backend failure: its own mistakes, absence, and
            // whether to retry — nothing about our internals.
            Error::Upstream(upstream) => match upstream.code() {
                Code::InvalidArgument
                | Code::NotFound
                | Code::PermissionDenied
                | Code::FailedPrecondition => upstream,
                _ => status::from_upstream(upstream),
            },
        }
    }
}
