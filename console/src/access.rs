//! Who may use which route: the route table, and the answers to a refusal.
//!
//! Every console route is added through [`Routes`], which records (method,
//! path, [`Need`]) as data and builds the router from the same call, so the
//! table cannot drift from what is served. The need travels to the handler as
//! a request extension; the session extractors refuse a route missing from
//! the table (fail closed) and an MSP-only route to anyone else, and hand the
//! handler an `Authenticated` session whose `scope_for(tenant)` is the one
//! place a tenant scope comes from:
//! another tenant's object is "not found" (404), too low a role in one's own
//! tenant "permission denied" (403).
use axum::Extension;
use axum::Router;
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};

use outpost_store::members::{Denied, Role};

use super::error::{json_error, status_page};
use super::state::ConsoleState;

/// What a route requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the sign-in pages and static assets.
    Public,
    /// A session, and nothing more (sign-out, the user's own account).
    Signed,
    /// At least this role in the tenant of the object acted on (checked by
    /// the handler once it knows the tenant).
    Tenant(Role),
    /// An MSP-wide administrator.
    MspAdmin,
}

/// One row of the route table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern, as axum matches it (`/devices/{id}`).
    pub path: &'static str,
    /// What it requires.
    pub need: Need,
}

/// The router and its table, built together.
pub(crate) struct Routes {
    router: Router<ConsoleState>,
    table: Vec<RouteSpec>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub(crate) fn get<H, T>(self, path: &'static str, need: Need, handler: H) -> Self
    where
        H: Handler<T, ConsoleState>,
        T: 'static,
    {
        self.add(Method::GET, path, need, get(handler))
    }

    pub(crate) fn post<H, T>(self, path: &'static str, need: Need, handler: H) -> Self
    where
        H: Handler<T, ConsoleState>,
        T: 'static,
    {
        self.add(Method::POST, path, need, post(handler))
    }

    fn add(mut self, method: Method, path: &'static str, need: Need, route: MethodRouter<ConsoleState>) -> Self {
        self.table.push(RouteSpec { method, path, need });
        self.router = self.router.route(path, route.layer(Extension(need)));
        self
    }

    pub(crate) fn into_parts(self) -> (Router<ConsoleState>, Vec<RouteSpec>) {
        (self.router, self.table)
    }
}

/// The page for "permission denied".
pub(crate) fn forbidden_page() -> Response {
    status_page(
        StatusCode::FORBIDDEN,
        "Permission denied",
        "Your role does not allow this. Ask an administrator of this tenant if you need it.",
    )
}

/// The answer to a refusal: a page or JSON, `NotFound` as 404 "not found",
/// `Forbidden` as 403 "permission denied".
pub(crate) fn denied(d: Denied, api: bool) -> Response {
    match (d, api) {
        (Denied::NotFound, true) => json_error(StatusCode::NOT_FOUND, "not found"),
        (Denied::Forbidden, true) => json_error(StatusCode::FORBIDDEN, "permission denied"),
        (Denied::NotFound, false) => {
            status_page(StatusCode::NOT_FOUND, "Not found", "There is nothing at this address.")
        }
        (Denied::Forbidden, false) => forbidden_page(),
    }
}

/// On a page: `NotFound` is the page's own "not found" (`missing`),
/// `Forbidden` the permission-denied page.
pub(crate) fn page_denied(d: Denied, missing: fn() -> Response) -> Response {
    match d {
        Denied::NotFound => missing(),
        Denied::Forbidden => forbidden_page(),
    }
}

/// On a JSON endpoint: `NotFound` names `what`.
pub(crate) fn api_denied(d: Denied, what: &str) -> Response {
    match d {
        Denied::NotFound => json_error(StatusCode::NOT_FOUND, &format!("{what} not found")),
        Denied::Forbidden => json_error(StatusCode::FORBIDDEN, "permission denied"),
    }
}
