//! The web console: server-rendered pages, a JSON overview and a Server-Sent
//! Events stream that keeps the overview live.
//!
//! Authentication is a session cookie from [`Store::login`]. Every state-changing
//! request is a POST form carrying a CSRF token: the session's token once signed
//! in ([`csrf::CsrfForm`]), a double-submit cookie before ([`auth`]). The
//! Content-Security-Policy forbids inline script and style, so all behaviour and
//! styling live in the two embedded asset files.
mod assets;
mod auth;
mod cookies;
mod csrf;
mod error;
mod overview;
mod rate_limit;
mod session;
mod views;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};

use crate::store::Store;

use self::rate_limit::LoginLimiter;

/// Forms here are a few hundred bytes; anything larger is not a console request.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of the console handlers.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    /// The database.
    pub store: Store,
    /// Mark cookies `Secure`: on whenever the console is reached over HTTPS or
    /// loopback, because browsers then never send them over plain HTTP.
    pub secure_cookies: bool,
    limiter: Arc<LoginLimiter>,
}

impl ConsoleState {
    /// State with a fresh (empty) login rate limiter.
    pub fn new(store: Store, secure_cookies: bool) -> Self {
        Self {
            store,
            secure_cookies,
            limiter: Arc::new(LoginLimiter::default()),
        }
    }
}

/// The console's routes. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so login rate limiting
/// can tell clients apart; without it every client shares one bucket.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/api/overview", get(overview::api))
        .route("/events", get(overview::events))
        .route("/assets/console.css", get(assets::css))
        .route("/assets/console.js", get(assets::js))
        // Browsers ask for it on every visit; an empty answer keeps their consoles clean.
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn not_found() -> Response {
    error::status_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
    )
}

/// The Content-Security-Policy of every response.
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Marks a response that may be cached (the versioned assets); everything else
/// carries user data and must not be.
#[derive(Clone, Copy, Debug)]
struct Cacheable;

async fn security_headers(mut res: Response) -> Response {
    let cacheable = res.extensions().get::<Cacheable>().is_some();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        // form-action: an injected <form> cannot post credentials elsewhere.
        // base-uri: an injected <base> cannot re-point relative URLs.
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !cacheable {
        // Overrides the `no-cache` the SSE response sets: no-store is stricter.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
