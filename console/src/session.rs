//! Session extractors: a handler that takes one never runs without a live session.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use outpost_certs::TenantId;
use outpost_store::members::{Denied, Role};
use outpost_store::users::Session;
use outpost_store::{Store, StoreError, TenantScope};

use super::access::Need;
use super::cookies;
use super::error::{ApiError, PageError, json_error};
use super::state::ConsoleState;

/// A live session, the cookie value that opened it, and what the route
/// being served requires (from the route table).
#[derive(Clone, Debug)]
pub(crate) struct Authenticated {
    /// The cookie value, needed to end the session.
    pub(crate) token: String,
    pub(crate) session: Session,
    /// The role this route needs in the tenant of whatever it acts on.
    pub(crate) need: Role,
}

impl Authenticated {
    /// The scope to act in `tenant` with for this route: another tenant's
    /// object is [`Denied::NotFound`], too low a role [`Denied::Forbidden`].
    /// Every handler gets its tenant scopes here.
    pub(crate) fn scope_for(&self, tenant: TenantId) -> Result<TenantScope, Denied> {
        self.session.principal.authorize(tenant, self.need)
    }
}

/// The session named by the request's cookie, if it is live.
pub(crate) async fn authenticate(headers: &HeaderMap, store: &Store) -> Result<Option<Authenticated>, StoreError> {
    let Some(token) = cookies::get(headers, cookies::SESSION) else {
        return Ok(None);
    };
    Ok(store.session(token).await?.map(|session| Authenticated {
        token: token.to_owned(),
        session,
        need: Role::Admin,
    }))
}

/// Why [`admit`] refused a request.
enum Refused {
    /// The route is not in the route table: fail closed.
    OutsideTable,
    /// For MSP administrators only.
    MspOnly,
    /// TOTP is required and the user has not set it up.
    TotpDue,
}

impl Refused {
    fn answer(self, api: bool) -> Response {
        match (self, api) {
            (Refused::OutsideTable, true) => ApiError.into_response(),
            (Refused::OutsideTable, false) => PageError.into_response(),
            (Refused::MspOnly, api) => super::access::denied(Denied::Forbidden, api),
            (Refused::TotpDue, true) => json_error(StatusCode::FORBIDDEN, "set up a second factor first"),
            (Refused::TotpDue, false) => Redirect::to("/account/totp").into_response(),
        }
    }
}

/// The session for a route of the table, with the role the route needs;
/// refused when the route is not in the table or is for MSP administrators
/// and the user is not one.
fn admit(parts: &Parts, mut auth: Authenticated) -> Result<Authenticated, Refused> {
    let Some(need) = parts.extensions.get::<Need>().copied() else {
        tracing::error!(path = %parts.uri.path(), "console: a route outside the route table");
        return Err(Refused::OutsideTable);
    };
    // Only the account pages (to set up TOTP) and signing out, until it is done.
    if auth.session.totp_due && need != Need::Signed {
        return Err(Refused::TotpDue);
    }
    match need {
        Need::Public | Need::Signed => auth.need = Role::Admin,
        Need::Tenant(role) => auth.need = role,
        Need::MspAdmin if auth.session.principal.is_msp_admin() => auth.need = Role::Admin,
        Need::MspAdmin => return Err(Refused::MspOnly),
    }
    Ok(auth)
}

/// For pages: without a session, a redirect to the login page.
#[derive(Clone, Debug)]
pub(crate) struct PageSession(pub(crate) Authenticated);

impl FromRequestParts<ConsoleState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match authenticate(&parts.headers, &state.store).await {
            Ok(Some(auth)) => admit(parts, auth).map(Self).map_err(|r| r.answer(false)),
            Ok(None) => {
                let mut res = Redirect::to("/login").into_response();
                // A stale cookie would otherwise be sent, and looked up, on every request.
                if cookies::get(&parts.headers, cookies::SESSION).is_some()
                    && let Some(clear) = cookies::clear(cookies::SESSION, state.secure_cookies)
                {
                    res.headers_mut().append(header::SET_COOKIE, clear);
                }
                Err(res)
            }
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// For JSON and event-stream endpoints: without a session, a 401. A redirect
/// would hand scripts an HTML login page they cannot use.
#[derive(Clone, Debug)]
pub(crate) struct ApiSession(pub(crate) Authenticated);

impl FromRequestParts<ConsoleState> for ApiSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match authenticate(&parts.headers, &state.store).await {
            Ok(Some(auth)) => admit(parts, auth).map(Self).map_err(|r| r.answer(true)),
            Ok(None) => Err(json_error(StatusCode::UNAUTHORIZED, "not signed in")),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}
