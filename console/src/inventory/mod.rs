//! Inventory: the hosts discovery found (`/inventory`, and its JSON twin),
//! one host with its facts and history, what changed since a moment, and per
//! site the discovery controls: scan now with live progress, recent scans,
//! discovery jobs, and the RouterOS credential profile routers are adopted
//! with.
//!
//! One file per page or form. As for devices, every read goes through the
//! viewer's scope, so another tenant's host, scan, job or site is "not
//! found" (404), the same answer as one that never existed; actions act with
//! the scope of the object's own tenant, which an administrator holds for
//! every tenant. Secrets typed into the forms (the profile's password, a
//! job's SNMP community) are sealed with the tenant's vault key before they
//! reach the store and are never shown again.
pub(crate) mod actions;
pub(crate) mod changes;
pub(crate) mod host;
pub(crate) mod jobs;
pub(crate) mod list;
pub(crate) mod profile;
pub(crate) mod query;
pub(crate) mod scans;
pub(crate) mod site;
pub mod snmp;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outpost_store::tenants::SiteRow;
use outpost_store::{Store, StoreError, TenantScope};

use crate::error::{ApiError, PageError, json_error, status_page};
use crate::session::Authenticated;

/// The page for a host that does not exist for this viewer.
pub(crate) fn host_not_found() -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "Host not found",
        "There is no such host in the inventory.",
    )
}

/// The page for a site that does not exist for this viewer.
pub(crate) fn site_not_found() -> Response {
    status_page(StatusCode::NOT_FOUND, "Site not found", "There is no such site.")
}

/// The page for a scan that does not exist for this viewer.
pub(crate) fn scan_not_found() -> Response {
    status_page(StatusCode::NOT_FOUND, "Scan not found", "There is no such scan.")
}

/// The page for a discovery job that does not exist for this viewer.
pub(crate) fn job_not_found() -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "Discovery job not found",
        "There is no such discovery job, or it was deleted.",
    )
}

/// A store error on a page: "not found" is `missing`, the rest a 500.
pub(crate) fn page_error(e: StoreError, missing: fn() -> Response) -> Response {
    match e {
        StoreError::NotFound(_) => missing(),
        e => PageError::from(e).into_response(),
    }
}

/// A store error on a JSON request: "not found" names `what`.
pub(crate) fn api_error(e: StoreError, what: &str) -> Response {
    match e {
        StoreError::NotFound(_) => json_error(StatusCode::NOT_FOUND, &format!("{what} not found")),
        e => ApiError::from(e).into_response(),
    }
}

/// A live site of the viewer's tenants named by `raw` (its id), and the scope
/// to act on it with; the 404 page for anything else.
pub(crate) async fn site_of(
    store: &Store,
    auth: &Authenticated,
    raw: &str,
) -> Result<(SiteRow, TenantScope), Response> {
    let sites = store
        .sites(&auth.session.viewer)
        .await
        .map_err(|e| PageError::from(e).into_response())?;
    let site = sites
        .into_iter()
        .find(|s| s.site.to_string() == raw)
        .ok_or_else(site_not_found)?;
    let scope = auth
        .scope_for(site.tenant)
        .map_err(|d| crate::access::page_denied(d, site_not_found))?;
    Ok((site, scope))
}

/// The text, or a dash when it is empty.
pub(crate) fn or_dash(s: &str) -> String {
    if s.is_empty() { "—".into() } else { s.to_owned() }
}

#[cfg(test)]
pub(crate) mod test_seed;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_isolation;
#[cfg(test)]
mod tests_site;
