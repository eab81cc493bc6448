//! The store's answers as gRPC statuses: another tenant's objects are
//! NOT_FOUND, a role too low is PERMISSION_DENIED, a database failure is
//! logged here and reaches the client without its details.
use outpost_store::StoreError;
use outpost_store::members::Denied;
use tonic::Status;

/// A failure the client cannot fix: logged with `what`, answered INTERNAL
/// (UNAVAILABLE for the database, which may come back).
pub(crate) fn internal(what: &str, e: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %e, "API: {what} failed");
    Status::unavailable(format!("{what} failed; try again later"))
}

/// A store error as a status.
pub(crate) fn store(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
        StoreError::Forbidden(what) => Status::permission_denied(format!("permission denied: {what}")),
        StoreError::Invalid(why) => Status::invalid_argument(why),
        StoreError::Conflict(why) => Status::failed_precondition(why),
        other => internal("a database operation", &other),
    }
}

/// A refused authorization as a status.
pub(crate) fn denied(d: Denied, what: &str) -> Status {
    match d {
        Denied::NotFound => Status::not_found(format!("{what} not found")),
        Denied::Forbidden => Status::permission_denied(format!("permission denied: {what}")),
    }
}

/// A malformed id in a request.
pub(crate) fn bad_id(field: &str, value: &str) -> Status {
    Status::invalid_argument(format!("{field} {value:?} is not a valid id"))
}

/// An id field of a request: `None` when empty, else parsed.
pub(crate) fn optional_id<T: std::str::FromStr>(field: &str, value: &str) -> Result<Option<T>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| bad_id(field, value))
}

/// A required id field of a request.
pub(crate) fn required_id<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, Status> {
    optional_id(field, value)?.ok_or_else(|| Status::invalid_argument(format!("{field} is required")))
}
