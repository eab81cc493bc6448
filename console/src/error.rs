//! Failures the user cannot fix: logged in full, answered with a generic message
//! so database details never reach the browser.
use std::fmt::Display;

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use outpost_store::StoreError;

use super::layout::{Layout, render};

const GENERIC: &str =
    "Something went wrong on the server. Try again in a moment; if it persists, check the collector's log.";

/// An internal error on a page request: a 500 page.
#[derive(Debug)]
pub(crate) struct PageError;

impl PageError {
    /// Logs `error` and returns the page error.
    pub(crate) fn internal(what: &str, error: &dyn Display) -> Self {
        tracing::error!(error = %error, "console: {what}");
        Self
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::internal("database query failed", &e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        status_page(StatusCode::INTERNAL_SERVER_ERROR, "Server error", GENERIC)
    }
}

/// An internal error on a JSON request: a 500 with a JSON body.
#[derive(Debug)]
pub(crate) struct ApiError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "console: database query failed");
        Self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }
}

/// `{"error": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) layout: Layout,
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
}

/// A page that only states a problem.
pub(crate) fn status_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            layout: Layout::anonymous(),
            title,
            message,
        },
    )
}
