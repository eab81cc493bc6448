//! What every page shares: the `base.html` layout and rendering. Each page's
//! template struct lives with its handlers; this module imports none of them,
//! so pages can depend on it without a cycle.
//!
//! Templates are in `console/templates/`, all extending `base.html`, checked at
//! compile time. Askama HTML-escapes every interpolation; no template uses `|safe`.
use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use outpost_store::users::Session;

use super::assets;

/// What `base.html` needs on every page.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Signed-in user, for the header and its sign-out form.
    pub(crate) user: Option<NavUser>,
    /// Cache-busting suffix of the asset URLs.
    pub(crate) asset_version: &'static str,
}

/// The signed-in user as the header shows it.
#[derive(Clone, Debug)]
pub(crate) struct NavUser {
    pub(crate) username: String,
    /// The session's CSRF token, for the sign-out form.
    pub(crate) csrf: String,
    /// Administers something (a tenant, or every tenant): the admin links show.
    pub(crate) admin: bool,
}

impl Layout {
    pub(crate) fn anonymous() -> Self {
        Self {
            user: None,
            asset_version: assets::version(),
        }
    }

    pub(crate) fn signed_in(session: &Session) -> Self {
        Self {
            user: Some(NavUser {
                username: session.username.clone(),
                csrf: session.csrf_token.clone(),
                admin: session
                    .principal
                    .has_role_somewhere(outpost_store::members::Role::Admin),
            }),
            asset_version: assets::version(),
        }
    }
}

/// Renders `page` as an HTML response with `status`.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: rendering a template failed");
            // Not the error template: it may be the one failing.
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response()
        }
    }
}
