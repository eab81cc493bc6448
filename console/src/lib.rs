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
//! Users are MSP administrators or members of tenants with a role in each;
//! every route is listed with the role it needs in one table ([`route_table`],
//! `access.rs`), and handlers take tenant scopes only through the session's
//! `scope_for`: another tenant's objects are 404, too low a role 403. A TOTP
//! second factor (`second_step.rs`, `account.rs`) opens the session only after
//! the code.
//!
//! The collector hands it everything it needs through [`ConsoleState::new`]:
//! the store, and the administrative scope its live-update feed reads with.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

mod access;
mod account;
mod admin;
pub mod agent_control;
mod assets;
mod audit;
mod auth;
mod cookies;
mod csrf;
mod devices;
mod error;
mod feed;
mod hashing;
pub mod inventory;
mod layout;
pub mod metrics;
mod operability;
mod overview;
mod overview_data;
mod rate_limit;
mod second_step;
mod session;
pub mod sign_in;
mod state;
mod totp;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_operability;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use self::access::{Need, RouteSpec};
pub use self::metrics::{AgentPortUp, Metrics};
pub use self::state::ConsoleState;

use self::access::Routes;

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
    let (routes, _) = routes().into_parts();
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Every route with what it requires, as data: the same table [`router`]
/// serves, for checks that walk every route.
pub fn route_table() -> Vec<RouteSpec> {
    routes().into_parts().1
}

fn routes() -> Routes {
    use Need::{MspAdmin, Public, Signed, Tenant};
    use outpost_store::members::Role::{Admin, Operator, Viewer};
    Routes::new()
        .get("/", Tenant(Viewer), overview::page)
        .get("/login", Public, auth::login_form)
        .post("/login", Public, auth::login)
        .get("/login/code", Public, second_step::code_form)
        .post("/login/code", Public, second_step::code)
        .get("/login/enrol", Public, second_step::enrol_form)
        .post("/login/enrol", Public, second_step::enrol)
        .get("/login/enrol/qr.svg", Public, second_step::enrol_qr)
        .post("/logout", Signed, auth::logout)
        .get("/account", Signed, account::page)
        .get("/account/totp", Signed, account::enrol_form)
        .post("/account/totp", Signed, account::enrol)
        .get("/account/totp/qr.svg", Signed, account::enrol_qr)
        .post("/account/totp/disable", Signed, account::disable)
        .post("/account/totp/recovery", Signed, account::regenerate)
        .get("/api/overview", Tenant(Viewer), overview::api)
        .get("/events", Tenant(Viewer), overview::events)
        .get("/devices", Tenant(Viewer), devices::list::page)
        .post("/devices", Tenant(Operator), devices::add::add)
        .get("/devices/new", Tenant(Operator), devices::add::form)
        .get("/devices/{id}", Tenant(Viewer), devices::page::page)
        .post("/devices/{id}/delete", Tenant(Operator), devices::actions::delete)
        .post(
            "/devices/{id}/accept-certificate",
            Tenant(Operator),
            devices::actions::accept_certificate,
        )
        .post(
            "/devices/{id}/accept-host-key",
            Tenant(Operator),
            devices::actions::accept_host_key,
        )
        .post("/devices/{id}/backup", Tenant(Operator), devices::actions::backup_now)
        .post(
            "/devices/{id}/tunnel",
            Tenant(Operator),
            devices::actions::open_tunnel_listener,
        )
        .get("/devices/{id}/terminal", Tenant(Operator), devices::terminal::page)
        .get("/devices/{id}/terminal/ws", Tenant(Operator), devices::terminal::socket)
        // Terminal recordings hold everything typed: tenant admins only.
        .get("/devices/{id}/recordings", Tenant(Admin), devices::recordings::list)
        .get(
            "/devices/{id}/recordings/{recording}",
            Tenant(Admin),
            devices::recordings::replay,
        )
        .get(
            "/devices/{id}/recordings/{recording}/cast",
            Tenant(Admin),
            devices::recordings::cast,
        )
        .get("/devices/{id}/config/{taken}", Tenant(Viewer), devices::config::page)
        // Secrets of a backup: tenant admins only.
        .post(
            "/devices/{id}/config/{taken}/reveal",
            Tenant(Admin),
            devices::config::reveal,
        )
        .get("/devices/{id}/live", Tenant(Viewer), devices::live::events)
        .get("/api/devices", Tenant(Viewer), devices::list::api)
        .get("/api/devices/{id}/metrics", Tenant(Viewer), devices::metrics::api)
        .get("/topology", Tenant(Viewer), devices::topology::page)
        .get("/inventory", Tenant(Viewer), inventory::list::page)
        .get("/api/inventory", Tenant(Viewer), inventory::list::api)
        .get("/inventory/changes", Tenant(Viewer), inventory::changes::page)
        .get("/inventory/hosts/{id}", Tenant(Viewer), inventory::host::page)
        .post(
            "/inventory/hosts/{id}/adopt",
            Tenant(Operator),
            inventory::actions::adopt,
        )
        .post(
            "/inventory/hosts/{id}/clear-conflict",
            Tenant(Operator),
            inventory::actions::clear_conflict,
        )
        .get("/inventory/sites/{site}", Tenant(Viewer), inventory::site::page)
        .post(
            "/inventory/sites/{site}/scan",
            Tenant(Operator),
            inventory::scans::scan_now,
        )
        .post("/inventory/sites/{site}/jobs", Tenant(Operator), inventory::jobs::add)
        .post(
            "/inventory/sites/{site}/profile",
            Tenant(Operator),
            inventory::profile::set,
        )
        .post("/inventory/jobs/{id}/delete", Tenant(Operator), inventory::jobs::delete)
        .get("/inventory/scans/{id}", Tenant(Viewer), inventory::scans::page)
        .get("/api/scans/{id}", Tenant(Viewer), inventory::scans::api)
        .get("/admin/tenants", Tenant(Admin), admin::tenants::page)
        .post("/admin/tenants", MspAdmin, admin::tenants::create)
        .post("/admin/tenants/{id}/rename", MspAdmin, admin::tenants::rename)
        .post("/admin/tenants/{id}/sites", Tenant(Admin), admin::tenants::add_site)
        .post("/admin/sites/{id}/delete", Tenant(Admin), admin::tenants::delete_site)
        .post("/admin/settings", MspAdmin, admin::tenants::settings)
        .get("/admin/users", Tenant(Admin), admin::users::page)
        .post("/admin/users", Tenant(Admin), admin::users::create)
        .post("/admin/users/{id}/role", Tenant(Admin), admin::users::set_role)
        .post("/admin/users/{id}/msp-admin", MspAdmin, admin::users::set_msp_admin)
        .post(
            "/admin/users/{id}/password",
            Tenant(Admin),
            admin::users::reset_password,
        )
        .post("/admin/users/{id}/disable", Tenant(Admin), admin::users::disable)
        .post("/admin/users/{id}/enable", Tenant(Admin), admin::users::enable)
        .post("/admin/users/{id}/delete", Tenant(Admin), admin::users::delete)
        .post("/admin/users/{id}/reset-totp", Tenant(Admin), admin::users::reset_totp)
        .get("/admin/tokens", Tenant(Admin), admin::tokens::page)
        .post("/admin/tokens", Tenant(Admin), admin::tokens::create)
        .post("/admin/tokens/{id}/revoke", Tenant(Admin), admin::tokens::revoke)
        .get("/admin/api-tokens", Tenant(Admin), admin::api_tokens::page)
        .post("/admin/api-tokens", Tenant(Admin), admin::api_tokens::create)
        .post(
            "/admin/api-tokens/{id}/revoke",
            Tenant(Admin),
            admin::api_tokens::revoke,
        )
        .get("/admin/agents", Tenant(Admin), admin::agents::page)
        .post("/admin/agents/{id}/revoke", Tenant(Admin), admin::agents::revoke)
        .get("/assets/console.css", Public, assets::css)
        .get("/assets/console.js", Public, assets::js)
        .get("/assets/uplot.css", Public, assets::uplot_css)
        .get("/assets/uplot.js", Public, assets::uplot_js)
        .get("/assets/xterm.js", Public, assets::xterm_js)
        .get("/assets/xterm.css", Public, assets::xterm_css)
        .get("/assets/xterm-fit.js", Public, assets::xterm_fit_js)
        .get("/assets/terminal.js", Public, assets::terminal_js)
        .get("/assets/replay.js", Public, assets::replay_js)
        // Operability: no session (see `operability`).
        .get("/healthz", Public, operability::healthz)
        .get("/readyz", Public, operability::readyz)
        .get("/metrics", Public, operability::metrics)
        // The audit log: tenant admins see their tenants' records.
        .get("/audit", Tenant(Admin), audit::page)
        .get("/audit.csv", Tenant(Admin), audit::csv)
        .get("/favicon.ico", Public, favicon)
}

/// Browsers ask for it on every visit; an empty answer keeps their consoles clean.
async fn favicon() -> StatusCode {
    StatusCode::NO_CONTENT
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
    // A page that needs a looser policy sets its own (the terminal's: see
    // `devices::terminal::CSP`); every other response gets this one.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            // form-action: an injected <form> cannot post credentials elsewhere.
            // base-uri: an injected <base> cannot re-point relative URLs.
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !cacheable {
        // Overrides the `no-cache` the SSE response sets: no-store is stricter.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
