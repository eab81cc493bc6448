//! Administration pages: tenants and sites, users and their roles,
//! enrollment tokens, agents. MSP administrators see every tenant; a tenant
//! admin sees and manages only the tenants they administer. Every form is a
//! CSRF-protected POST that redirects back; what each route needs is in the
//! route table (`lib.rs`), and each handler takes its tenant scope from
//! `Authenticated::scope_for`.
pub(crate) mod agents;
pub(crate) mod api_tokens;
pub(crate) mod tenants;
pub(crate) mod tokens;
pub(crate) mod users;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use outpost_store::StoreError;
use outpost_store::members::Role;

use crate::access::forbidden_page;
use crate::csrf::CsrfProtected;
use crate::error::{PageError, status_page};
use crate::session::Authenticated;

/// A form carrying a name.
#[derive(Debug, Deserialize)]
pub(crate) struct NameForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) name: String,
}

impl CsrfProtected for NameForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A store error on an administration page: 404, 403, 422 with the reason, or 500.
pub(crate) fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(_) => status_page(StatusCode::NOT_FOUND, "Not found", "There is nothing at this address."),
        StoreError::Forbidden(_) => forbidden_page(),
        StoreError::Invalid(why) | StoreError::Conflict(why) => {
            status_page(StatusCode::UNPROCESSABLE_ENTITY, "Not saved", &why)
        }
        e => PageError::from(e).into_response(),
    }
}

/// "Permission denied", unless the user administers some tenant.
pub(crate) fn refuse_non_admins(auth: &Authenticated) -> Option<Response> {
    (!auth.session.principal.has_role_somewhere(Role::Admin)).then(forbidden_page)
}

/// A tenant id from a URL or form; anything else names no tenant.
pub(crate) fn parse_tenant(raw: &str) -> Option<outpost_certs::TenantId> {
    raw.parse().ok()
}

/// Unix ms as UTC text, or a dash.
pub(crate) fn when(ms: Option<i64>) -> String {
    crate::devices::format::utc(ms)
}
