//! Statuses for callers' mistakes (with `google.rpc.BadRequest` field violations, so clients
//! can point at the bad field) and opaque statuses for our own failures.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// A list of bad fields, collected while validating a request, so the caller learns about all
/// of them at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations(Vec<(String, String)>);

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (a path such as `events[3].rating`) is wrong because of `reason`.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push((field.into(), reason.into()));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations as (field, reason) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, r)| (f.as_str(), r.as_str()))
    }

    /// `Ok(())` when empty, else an `INVALID_ARGUMENT` status listing every violation.
    pub fn into_result(self) -> Result<(), Status> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_status())
        }
    }

    /// An `INVALID_ARGUMENT` status listing every violation.
    pub fn into_status(self) -> Status {
        let message = self
            .0
            .iter()
            .map(|(field, reason)| format!("{field}: {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut details = ErrorDetails::new();
        for (field, reason) in self.0 {
            details.add_bad_request_violation(field, reason);
        }
        Status::with_error_details(Code::InvalidArgument, message, details)
    }
}

/// `INVALID_ARGUMENT` for one bad field.
pub fn invalid_argument(field: impl Into<String>, reason: impl Into<String>) -> Status {
    let mut violations = FieldViolations::new();
    violations.add(field, reason);
    violations.into_status()
}

/// Logs an internal failure once, here, and returns an opaque status: callers never see our
/// error messages (they may carry SQL, hostnames or data).
pub fn internal(err: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %err, source = ?err.source(), "internal error");
    Status::internal("internal error")
}

/// Logs a dependency outage once and returns `UNAVAILABLE`, which clients may retry.
pub fn unavailable(err: &(dyn std::error::Error + 'static)) -> Status {
    tracing::warn!(error = %err, "dependency unavailable");
    Status::unavailable("temporarily unavailable, retry later")
}

/// A database failure as the caller should see it: `UNAVAILABLE` when it is the moment's
/// ([`crate::db::is_transient`]: nothing was committed, a retry may succeed), else `INTERNAL`.
pub fn from_db(err: &sqlx::Error) -> Status {
    if crate::db::is_transient(err) {
        unavailable(err)
    } else {
        internal(err)
    }
}

/// Keeps an upstream service's status when the caller can act on it (retry later, slow
/// down) and hides everything else behind `INTERNAL`.
pub fn from_upstream(status: Status) -> Status {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
            Status::new(status.code(), status.message().to_owned())
        }
        // Made on our side from an error, not received: the connection failed mid-call (reset
        // or closed under load, the peer restarting), which a retry may well get past.
        Code::Unknown if std::error::Error::source(&status).is_some() => {
            tracing::warn!(message = status.message(), "upstream connection failed");
            Status::unavailable("upstream connection failed, retry later")
        }
        _ => {
            tracing::error!(code = ?status.code(), message = status.message(), "upstream call failed");
            Status::internal("internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_is_retryable_and_an_upstream_fault_is_internal() {
        let broken = Status::from_error(Box::new(std::io::Error::other(
            "connection closed before message completed",
        )));
        assert_eq!(broken.code(), Code::Unknown);
        let status = from_upstream(broken);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("connection closed before"));

        let answered = Status::unknown("the upstream said so");
        assert_eq!(from_upstream(answered).code(), Code::Internal);
        let overloaded = from_upstream(Status::resource_exhausted("busy"));
        assert_eq!(overloaded.code(), Code::ResourceExhausted);
    }

    #[test]
    fn violations_become_bad_request_details() {
        let mut v = FieldViolations::new();
        v.add("events[0].rating", "must be between 1 and 5");
        v.add("page_size", "must not be negative");
        let status = v.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "events[0].rating");
        assert!(status.message().contains("page_size: must not be negative"));
    }

    #[test]
    fn no_violations_is_ok() {
        assert!(FieldViolations::new().into_result().is_ok());
    }

    #[test]
    fn internal_status_hides_the_message() {
        let err = std::io::Error::other("password=hunter2 at db:5432");
        let status = internal(&err);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
