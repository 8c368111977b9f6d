//! The profile service's one error type and its one mapping to a gRPC status.

use tailor_kit::auth::AuthError;
use tailor_kit::grpc::status::{self, FieldViolations};
use tonic::Status;

/// Everything that can go wrong in the profile service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's request is malformed; every bad field is listed.
    #[error("invalid argument")]
    InvalidArgument(FieldViolations),
    /// The caller is not allowed to do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Another writer changed what this one read (optimistic concurrency): nothing was
    /// committed, trying again is safe.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else that is our fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// One failure answered to every call that shared the work (a group of ingestion calls
    /// committed in one transaction).
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut violations = FieldViolations::new();
        violations.add(field, reason);
        Self::InvalidArgument(violations)
    }
}

impl From<FieldViolations> for Error {
    fn from(violations: FieldViolations) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        (&err).into()
    }
}

impl From<&Error> for Status {
    fn from(err: &Error) -> Self {
        match err {
            Error::InvalidArgument(violations) => violations.clone().into_status(),
            Error::Auth(err) => err.clone().into(),
            Error::Db(db) => status::from_db(db),
            Error::Conflict(reason) => Status::aborted(reason.clone()),
            Error::Internal(err) => status::internal(err.as_ref()),
            Error::Shared(err) => err.as_ref().into(),
        }
    }
}
