//! Session extractors: a handler that takes one never runs without a live session.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use outpost_store::users::Session;
use outpost_store::{Store, StoreError};

use super::cookies;
use super::error::{ApiError, PageError, json_error};
use super::state::ConsoleState;

/// A live session and the cookie value that opened it.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated {
    /// The cookie value, needed to end the session.
    pub(crate) token: String,
    pub(crate) session: Session,
}

/// The session named by the request's cookie, if it is live.
pub(crate) async fn authenticate(headers: &HeaderMap, store: &Store) -> Result<Option<Authenticated>, StoreError> {
    let Some(token) = cookies::get(headers, cookies::SESSION) else {
        return Ok(None);
    };
    Ok(store.session(token).await?.map(|session| Authenticated {
        token: token.to_owned(),
        session,
    }))
}

/// For pages: without a session, a redirect to the login page.
#[derive(Clone, Debug)]
pub(crate) struct PageSession(pub(crate) Authenticated);

impl FromRequestParts<ConsoleState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match authenticate(&parts.headers, &state.store).await {
            Ok(Some(auth)) => Ok(Self(auth)),
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
            Ok(Some(auth)) => Ok(Self(auth)),
            Ok(None) => Err(json_error(StatusCode::UNAUTHORIZED, "not signed in")),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}
