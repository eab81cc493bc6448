//! The Outpost web console: server-rendered pages (sites & agents, devices,
//! topology, the discovery inventory with its scans, jobs and credential
//! profiles), their JSON, and Server-Sent Events streams that keep the
//! overview and a device's live traffic current.
//!
//! Authentication is a session cookie from [`Store::open_session`], after a
//! password check capped at one per CPU ([`hashing`]). Every state-changing
//! request is a POST form carrying a CSRF token: the session's token once signed
//! in ([`csrf::CsrfForm`]), a double-submit cookie before ([`auth`]). The
//! Content-Security-Policy forbids inline script and style, so all behaviour and
//! styling live in the two embedded asset files.
//!
//! The collector hands it everything it needs through [`ConsoleState::new`]:
//! the store, and the administrative scope its live-update feed reads with.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod agent_control;
mod assets;
mod auth;
mod cookies;
mod csrf;
mod devices;
mod error;
mod feed;
mod hashing;
pub mod inventory;
mod layout;
mod overview;
mod overview_data;
mod rate_limit;
mod session;
mod state;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use self::state::ConsoleState;

/// Forms here are a few hundred bytes; anything larger is not a console request.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// How often expired sessions are deleted. They are refused the moment they
/// expire; pruning only bounds the table, so minutes are precise enough.
const PRUNE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The console's routes. Serve it so every request carries the client's
/// address as `ConnectInfo<SocketAddr>` (the collector's console port does,
/// taking it from `X-Forwarded-For` of trusted proxies) so login rate limiting
/// can tell clients apart; without it every client shares one bucket.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/api/overview", get(overview::api))
        .route("/events", get(overview::events))
        .route("/devices", get(devices::list::page).post(devices::add::add))
        .route("/devices/new", get(devices::add::form))
        .route("/devices/{id}", get(devices::page::page))
        .route("/devices/{id}/delete", post(devices::actions::delete))
        .route(
            "/devices/{id}/accept-certificate",
            post(devices::actions::accept_certificate),
        )
        .route("/devices/{id}/accept-host-key", post(devices::actions::accept_host_key))
        .route("/devices/{id}/backup", post(devices::actions::backup_now))
        .route("/devices/{id}/config/{taken}", get(devices::config::page))
        .route("/devices/{id}/config/{taken}/reveal", post(devices::config::reveal))
        .route("/devices/{id}/live", get(devices::live::events))
        .route("/api/devices", get(devices::list::api))
        .route("/api/devices/{id}/metrics", get(devices::metrics::api))
        .route("/topology", get(devices::topology::page))
        .route("/inventory", get(inventory::list::page))
        .route("/api/inventory", get(inventory::list::api))
        .route("/inventory/changes", get(inventory::changes::page))
        .route("/inventory/hosts/{id}", get(inventory::host::page))
        .route("/inventory/hosts/{id}/adopt", post(inventory::actions::adopt))
        .route(
            "/inventory/hosts/{id}/clear-conflict",
            post(inventory::actions::clear_conflict),
        )
        .route("/inventory/sites/{site}", get(inventory::site::page))
        .route("/inventory/sites/{site}/scan", post(inventory::scans::scan_now))
        .route("/inventory/sites/{site}/jobs", post(inventory::jobs::add))
        .route("/inventory/sites/{site}/profile", post(inventory::profile::set))
        .route("/inventory/jobs/{id}/delete", post(inventory::jobs::delete))
        .route("/inventory/scans/{id}", get(inventory::scans::page))
        .route("/api/scans/{id}", get(inventory::scans::api))
        .route("/assets/console.css", get(assets::css))
        .route("/assets/console.js", get(assets::js))
        .route("/assets/uplot.css", get(assets::uplot_css))
        .route("/assets/uplot.js", get(assets::uplot_js))
        // Browsers ask for it on every visit; an empty answer keeps their consoles clean.
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Starts the console's background upkeep (pruning expired sessions, at once
/// and then every few minutes) until `shutdown`. Call it once per collector,
/// next to serving [`router`].
pub fn spawn_maintenance(state: &ConsoleState, shutdown: CancellationToken) -> JoinHandle<()> {
    spawn_maintenance_every(state, shutdown, PRUNE_INTERVAL)
}

fn spawn_maintenance_every(state: &ConsoleState, shutdown: CancellationToken, every: Duration) -> JoinHandle<()> {
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // After a stall one prune catches up on everything; a burst would not help.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            // Shutdown must not wait for a slow database; the next start prunes again.
            tokio::select! {
                () = shutdown.cancelled() => break,
                result = store.prune_expired_sessions() => match result {
                    Ok(pruned) => tracing::debug!(pruned, "console: pruned {pruned} expired sessions"),
                    Err(error) => tracing::warn!(%error, "console: pruning expired sessions failed"),
                },
            }
        }
    })
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

async fn security_headers(mut res: Response) -> Response {
    let cacheable = res.extensions().get::<assets::Cacheable>().is_some();
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
