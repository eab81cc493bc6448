//! The site's RouterOS credential profile from the console:
//! `POST /inventory/sites/{site}/profile` seals the password with the
//! tenant's vault key, bound to the site, and stores it with the user name.
//! A refused form comes back on the site page naming the field, never with
//! the password.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::StoreError;

use super::site::{Forms, show};
use super::{page_error, site_not_found, site_of};
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::devices::add::FieldError;
use crate::error::PageError;
use crate::state::ConsoleState;

/// The form as posted.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    /// A secret: sealed, never shown again.
    #[serde(default)]
    password: String,
}

impl CsrfProtected for ProfileForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// What is wrong with the form, naming the field.
fn check(form: &ProfileForm) -> Option<FieldError> {
    let name = &form.username;
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Some(FieldError {
            field: "username",
            message: "user name must be 1 to 64 printable characters".into(),
        });
    }
    if form.password.is_empty() {
        return Some(FieldError {
            field: "password",
            message: "password must not be empty".into(),
        });
    }
    None
}

/// `POST /inventory/sites/{site}/profile`.
pub(crate) async fn set(
    State(state): State<ConsoleState>,
    Path(raw_site): Path<String>,
    CsrfForm { auth, form }: CsrfForm<ProfileForm>,
) -> Response {
    let session = &auth.session;
    let (site, scope) = match site_of(&state.store, &auth, &raw_site).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let refused = |error: FieldError| Forms {
        profile_username: Some(form.username.clone()),
        profile_error: Some(error),
        ..Forms::default()
    };
    if let Some(error) = check(&form) {
        let forms = refused(error);
        return show(
            &state,
            session,
            &site,
            &scope,
            forms,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let sealed = match state
        .vault
        .tenant(&site.tenant.to_string())
        .seal_site_password(&site.site.to_string(), &form.password)
    {
        Ok(s) => s,
        Err(e) => return PageError::internal("sealing a site profile password failed", &e).into_response(),
    };
    match state
        .store
        .set_site_credential(&scope, site.site, &form.username, &sealed)
        .await
    {
        Ok(()) => {
            tracing::info!(site = %site.site, username = %form.username, user = %session.username, "console: site credential profile set");
            Redirect::to(&format!("/inventory/sites/{}?done=profile-saved#profile", site.site)).into_response()
        }
        Err(StoreError::Conflict(m)) => {
            let forms = refused(FieldError {
                field: "username",
                message: m,
            });
            show(
                &state,
                session,
                &site,
                &scope,
                forms,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => page_error(e, site_not_found),
    }
}
