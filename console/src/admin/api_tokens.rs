//! `/admin/api-tokens`: API tokens for programs using the public API, of the
//! tenants the user administers (every tenant's, and MSP-wide ones, for MSP
//! administrators): create one (its text shown once), list them with scope,
//! expiry and last use, revoke one. A token acts for the user who made it,
//! capped by that user's role whenever it is used.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_certs::TenantId;
use outpost_store::StoreError;
use outpost_store::api_tokens::{ApiTokenRow, MAX_TTL_MS, NewApiToken, TokenBinding, TokenScope};
use outpost_store::audit::Actor;
use outpost_store::members::Role;

use super::{parse_tenant, refuse_non_admins, store_error, when};
use crate::access::page_denied;
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::devices::actions::ActionForm;
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::{Authenticated, PageSession};
use crate::state::ConsoleState;

struct TokenItem {
    id: String,
    name: String,
    scope: &'static str,
    tenant: String,
    created_by: String,
    expires: String,
    last_used: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "admin/api_tokens.html")]
struct ApiTokensPage {
    layout: Layout,
    csrf: String,
    /// (tenant id, name) the user may bind a token to.
    tenants: Vec<(String, String)>,
    /// MSP administrators may make tokens for every tenant.
    msp_wide: bool,
    tokens: Vec<TokenItem>,
    created: Option<String>,
}

fn missing() -> Response {
    status_page(StatusCode::NOT_FOUND, "Not found", "There is no such API token.")
}

/// The tokens the user administers.
async fn visible(state: &ConsoleState, auth: &Authenticated) -> Result<Vec<ApiTokenRow>, StoreError> {
    if let Some(admin) = auth.session.principal.admin_scope() {
        return state.store.all_api_tokens(admin).await;
    }
    let mut rows = Vec::new();
    for (tenant, role) in auth.session.principal.memberships() {
        if *role == Role::Admin
            && let Ok(scope) = auth.scope_for(*tenant)
        {
            rows.extend(state.store.tenant_api_tokens(&scope).await?);
        }
    }
    rows.sort_by_key(|t| std::cmp::Reverse(t.created_at_ms));
    Ok(rows)
}

/// The tenant of the API token `id` among the user's tenants, whatever
/// their role there: so that a token of their own tenant is "permission
/// denied" below admin, and any other token "not found".
async fn token_tenant(state: &ConsoleState, auth: &Authenticated, id: &str) -> Result<Option<TenantId>, StoreError> {
    let principal = &auth.session.principal;
    for (tenant, _) in principal.memberships() {
        if let Ok(read) = principal.authorize(*tenant, Role::Viewer)
            && state.store.tenant_api_tokens(&read).await?.iter().any(|t| t.id == id)
        {
            return Ok(Some(*tenant));
        }
    }
    Ok(None)
}

async fn show(state: &ConsoleState, auth: &Authenticated, created: Option<String>) -> Response {
    if let Some(res) = refuse_non_admins(auth) {
        return res;
    }
    let tenants = match state.store.list_tenants(&auth.session.principal).await {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    let names: Vec<(String, String)> = tenants
        .into_iter()
        .filter(|t| auth.session.principal.role_in(t.id) == Some(Role::Admin))
        .map(|t| (t.id.to_string(), t.name))
        .collect();
    let tokens = match visible(state, auth).await {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    let tenant_name = |id: Option<outpost_certs::TenantId>| match id {
        None => "(every tenant)".to_owned(),
        Some(id) => names
            .iter()
            .find(|(t, _)| *t == id.to_string())
            .map_or_else(|| id.to_string(), |(_, n)| n.clone()),
    };
    let items = tokens
        .into_iter()
        .map(|t| TokenItem {
            tenant: tenant_name(t.tenant),
            scope: t.scope.as_str(),
            expires: when(Some(t.expires_at_ms)),
            last_used: t.last_used_ms.map_or_else(|| "never".to_owned(), |ms| when(Some(ms))),
            revoked: t.revoked_at_ms.is_some(),
            id: t.id,
            name: t.name,
            created_by: t.created_by_name,
        })
        .collect();
    render(
        StatusCode::OK,
        &ApiTokensPage {
            layout: Layout::signed_in(&auth.session),
            csrf: auth.session.csrf_token.clone(),
            msp_wide: auth.session.principal.is_msp_admin(),
            tenants: names,
            tokens: items,
            created,
        },
    )
}

/// `GET /admin/api-tokens`.
pub(crate) async fn page(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    show(&state, &auth, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    /// A tenant id, or empty for every tenant.
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    days: String,
}

impl CsrfProtected for CreateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/api-tokens`: the page again, with the new token shown once.
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<CreateForm>,
) -> Response {
    let Ok(scope) = form.scope.parse::<TokenScope>() else {
        return status_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not saved",
            "Choose read, operate or admin.",
        );
    };
    let max_days = MAX_TTL_MS / 86_400_000;
    let days = match form.days.trim().parse::<i64>() {
        Ok(d) if (1..=max_days).contains(&d) => d,
        _ => {
            return status_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not saved",
                &format!("A token is valid for 1 to {max_days} days."),
            );
        }
    };
    let binding = if form.tenant.is_empty() {
        match auth.session.principal.admin_scope() {
            Some(admin) => TokenBinding::MspWide(*admin),
            None => return crate::access::forbidden_page(),
        }
    } else {
        let Some(tenant) = parse_tenant(&form.tenant) else {
            return missing();
        };
        match auth.scope_for(tenant) {
            // The route needs tenant admin; a token for a tenant needs it there.
            Ok(scope) if auth.session.principal.role_in(tenant) == Some(Role::Admin) => TokenBinding::Tenant(scope),
            Ok(_) => return crate::access::forbidden_page(),
            Err(d) => return page_denied(d, missing),
        }
    };
    let made = state
        .store
        .create_api_token(
            &NewApiToken {
                name: &form.name,
                scope,
                binding,
                created_by: auth.session.principal.user_id(),
                ttl_ms: days * 86_400_000,
            },
            &Actor::user(&auth.session.username, ip),
        )
        .await;
    match made {
        Ok((row, secret)) => {
            tracing::info!(token = %row.id, scope = %scope, user = %auth.session.username, "console: API token created");
            show(&state, &auth, Some(secret)).await
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/api-tokens/{id}/revoke`.
pub(crate) async fn revoke(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let binding = match auth.session.principal.admin_scope() {
        Some(admin) => TokenBinding::MspWide(*admin),
        None => {
            let tenant = match token_tenant(&state, &auth, &id).await {
                Ok(Some(t)) => t,
                Ok(None) => return missing(),
                Err(e) => return store_error(e),
            };
            match auth.scope_for(tenant) {
                Ok(scope) => TokenBinding::Tenant(scope),
                Err(d) => return page_denied(d, missing),
            }
        }
    };
    match state
        .store
        .revoke_api_token(binding, &id, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(_) => {
            tracing::info!(token = %id, user = %auth.session.username, "console: API token revoked");
            Redirect::to("/admin/api-tokens").into_response()
        }
        Err(StoreError::NotFound(_)) => missing(),
        Err(e) => store_error(e),
    }
}
