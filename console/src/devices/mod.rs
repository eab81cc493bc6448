//! Devices: the list (`/devices`), adding one, the device page with its
//! configuration history, chart data, live traffic, and the topology.
//!
//! One file per page. Every read goes through the viewer's scope: a device of
//! another tenant is "not found", the same answer as a device that never
//! existed. Actions act with the scope of the device's own tenant, which an
//! administrator holds for every tenant.
pub(crate) mod actions;
pub(crate) mod add;
pub(crate) mod config;
pub(crate) mod format;
pub(crate) mod list;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod page;
pub(crate) mod recordings;
pub(crate) mod terminal;
pub(crate) mod topology;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outpost_store::StoreError;
use outpost_store::devices::DeviceId;

use crate::error::{ApiError, PageError, json_error, status_page};

/// A device id from a URL; anything else names no device.
pub(crate) fn parse_id(raw: &str) -> Option<DeviceId> {
    raw.parse().ok()
}

/// The page for a device that does not exist for this viewer.
pub(crate) fn device_not_found() -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "Device not found",
        "There is no such device, or it was deleted.",
    )
}

/// A store error on a page: "not found" stays a 404, the rest is a 500.
pub(crate) fn page_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(_) => device_not_found(),
        e => PageError::from(e).into_response(),
    }
}

/// A store error on a JSON or event-stream request.
pub(crate) fn api_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(_) => json_error(StatusCode::NOT_FOUND, "device not found"),
        e => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
