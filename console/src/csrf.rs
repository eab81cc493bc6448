//! CSRF protection for signed-in POST forms.
//!
//! Every such form carries a hidden `csrf` field holding the session's
//! `csrf_token`; a handler that takes [`CsrfForm`] only runs when it matches.
//! `SameSite=Strict` on the session cookie already stops most cross-site posts;
//! the token also covers browsers and same-site origins it does not.
use std::hint::black_box;

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::status_page;
use super::session::{Authenticated, PageSession};
use super::state::ConsoleState;

/// Whether two tokens are equal, in time independent of where they differ, so
/// response timing cannot reveal a token byte by byte.
pub(crate) fn tokens_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    // Length is not secret: every token we issue has the same one.
    if a.is_empty() || a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| black_box(acc | (x ^ y)));
    diff == 0
}

/// A form that carries a CSRF token. Declare the field with `#[serde(default)]`
/// so a missing token is refused as a mismatch (403), not as a malformed form.
pub(crate) trait CsrfProtected {
    fn csrf(&self) -> &str;
}

/// A form from the signed-in user, its CSRF token checked. Without a session
/// the request is redirected to the login page; with a wrong token it gets a 403.
#[derive(Debug)]
pub(crate) struct CsrfForm<T> {
    pub(crate) auth: Authenticated,
    #[allow(dead_code, reason = "the sign-out form carries nothing but its token")]
    pub(crate) form: T,
}

impl<T> FromRequest<ConsoleState> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfProtected + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &ConsoleState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let PageSession(auth) = PageSession::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !tokens_match(&auth.session.csrf_token, form.csrf()) {
            return Err(forbidden());
        }
        Ok(Self { auth, form })
    }
}

/// The answer to a form whose CSRF token does not match.
pub(crate) fn forbidden() -> Response {
    status_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form could not be verified (its security token is missing or out of date). \
         Go back, reload the page and try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::tokens_match;

    #[test]
    fn compares_tokens() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("abc", ""));
        assert!(!tokens_match("", ""));
    }
}
