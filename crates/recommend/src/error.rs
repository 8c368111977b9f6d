//! The recommend service's one error type and its one mapping to a gRPC status.

use tailor_kit::auth::AuthError;
use tailor_kit::grpc::status::{self, FieldViolations};
use tonic::Status;

/// Everything that can go wrong in the recommend service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request; every bad field is listed.
    #[error("invalid argument")]
    InvalidArgument(FieldViolations),
    /// Something named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Not allowed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Anything else that is our fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
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
        match err {
            Error::InvalidArgument(violations) => violations.into_status(),
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::Auth(err) => err.into(),
            Error::Db(db) => status::from_db(&db),
            Error::Internal(err) => status::internal(err.as_ref()),
        }
    }
}
