//! `/admin/tokens`: enrollment tokens of the tenants the user administers:
//! create one for a site (its text shown once), list them with expiry and
//! use, revoke unused ones.
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_certs::SiteId;
use outpost_certs::token::EnrollmentToken;
use outpost_store::now_ms;

use super::{refuse_non_admins, store_error, when};
use crate::access::page_denied;
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::devices::actions::ActionForm;
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::{Authenticated, PageSession};
use crate::state::ConsoleState;
use outpost_store::audit::Actor;

struct TokenItem {
    id: String,
    tenant_name: String,
    site_name: String,
    created: String,
    expires: String,
    used: String,
    revocable: bool,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    layout: Layout,
    csrf: String,
    /// (site id, "tenant / site").
    sites: Vec<(String, String)>,
    tokens: Vec<TokenItem>,
    created: Option<String>,
}

fn missing() -> Response {
    status_page(StatusCode::NOT_FOUND, "Not found", "There is no such site or token.")
}

async fn show(state: &ConsoleState, auth: &Authenticated, created: Option<String>) -> Response {
    if let Some(res) = refuse_non_admins(auth) {
        return res;
    }
    let viewer = &auth.session.viewer;
    let (sites, tokens) = match (state.store.sites(viewer).await, state.store.list_tokens(viewer).await) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return store_error(e),
    };
    let now = now_ms();
    render(
        StatusCode::OK,
        &TokensPage {
            layout: Layout::signed_in(&auth.session),
            csrf: auth.session.csrf_token.clone(),
            sites: sites
                .into_iter()
                .filter(|s| auth.scope_for(s.tenant).is_ok())
                .map(|s| (s.site.to_string(), format!("{} / {}", s.tenant_name, s.site_name)))
                .collect(),
            tokens: tokens
                .into_iter()
                .filter(|t| auth.scope_for(t.tenant).is_ok())
                .map(|t| TokenItem {
                    revocable: t.used_at_ms.is_none(),
                    used: match t.used_at_ms {
                        Some(_) => when(t.used_at_ms),
                        None if t.expires_at_ms <= now => "expired".into(),
                        None => "no".into(),
                    },
                    id: t.id,
                    tenant_name: t.tenant_name,
                    site_name: t.site_name,
                    created: when(Some(t.created_at_ms)),
                    expires: when(Some(t.expires_at_ms)),
                })
                .collect(),
            created,
        },
    )
}

/// `GET /admin/tokens`.
pub(crate) async fn page(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    show(&state, &auth, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    hours: String,
}

impl CsrfProtected for CreateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/tokens`: the page again, with the new token shown once.
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<CreateForm>,
) -> Response {
    let Some(ca) = state.ca_fingerprint else {
        return status_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not available",
            "This console cannot issue enrollment tokens (it does not know the collector's CA).",
        );
    };
    let Ok(site) = form.site.parse::<SiteId>() else {
        return missing();
    };
    let hours = match form.hours.trim().parse::<u64>() {
        Ok(h @ 1..=720) => h,
        _ => {
            return status_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not saved",
                "hours: a whole number from 1 to 720",
            );
        }
    };
    let sites = match state.store.sites(&auth.session.viewer).await {
        Ok(s) => s,
        Err(e) => return store_error(e),
    };
    let Some(row) = sites.into_iter().find(|s| s.site == site) else {
        return missing();
    };
    let scope = match auth.scope_for(row.tenant) {
        Ok(s) => s,
        Err(d) => return page_denied(d, missing),
    };
    let token = EnrollmentToken::generate(ca);
    match state
        .store
        .create_site_token(
            &scope,
            site,
            &token,
            Duration::from_secs(hours * 3600),
            &Actor::user(&auth.session.username, ip),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(token = %token.id(), %site, user = %auth.session.username, "console: enrollment token created");
            show(&state, &auth, Some(token.to_string())).await
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/tokens/{id}/revoke`.
pub(crate) async fn revoke(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let tenant = match state.store.token_tenant(&auth.session.viewer, &id).await {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    let scope = match auth.scope_for(tenant) {
        Ok(s) => s,
        Err(d) => return page_denied(d, missing),
    };
    match state
        .store
        .revoke_token(&scope, &id, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(()) => {
            tracing::info!(token = %id, user = %auth.session.username, "console: enrollment token revoked");
            Redirect::to("/admin/tokens").into_response()
        }
        Err(e) => store_error(e),
    }
}
