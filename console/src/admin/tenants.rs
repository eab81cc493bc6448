//! `/admin/tenants`: tenants with their sites; MSP administrators create and
//! rename tenants and set whether TOTP is required, tenant admins add and
//! delete their tenants' sites.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_certs::SiteId;

use super::{NameForm, parse_tenant, refuse_non_admins, store_error};
use crate::access::page_denied;
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::devices::actions::ActionForm;
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::PageSession;
use crate::state::ConsoleState;
use outpost_store::audit::Actor;

pub(crate) struct TenantItem {
    pub(crate) id: String,
    pub(crate) name: String,
    /// (site id, site name).
    pub(crate) sites: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct TenantsPage {
    layout: Layout,
    csrf: String,
    msp_admin: bool,
    totp_required: bool,
    tenants: Vec<TenantItem>,
}

fn tenant_missing() -> Response {
    status_page(StatusCode::NOT_FOUND, "Tenant not found", "There is no such tenant.")
}

fn site_missing() -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "Site not found",
        "There is no such site, or it was deleted.",
    )
}

/// `GET /admin/tenants`.
pub(crate) async fn page(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    if let Some(res) = refuse_non_admins(&auth) {
        return res;
    }
    let p = &auth.session.principal;
    let loaded = async {
        let tenants = state.store.list_tenants(p).await?;
        let sites = state.store.sites(&auth.session.viewer).await?;
        let required = state.store.totp_required().await?;
        Ok::<_, outpost_store::StoreError>((tenants, sites, required))
    }
    .await;
    let (tenants, sites, totp_required) = match loaded {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    let tenants = tenants
        .into_iter()
        .filter(|t| auth.scope_for(t.id).is_ok())
        .map(|t| TenantItem {
            id: t.id.to_string(),
            sites: sites
                .iter()
                .filter(|s| s.tenant == t.id)
                .map(|s| (s.site.to_string(), s.site_name.clone()))
                .collect(),
            name: t.name,
        })
        .collect();
    render(
        StatusCode::OK,
        &TenantsPage {
            layout: Layout::signed_in(&auth.session),
            csrf: auth.session.csrf_token.clone(),
            msp_admin: p.is_msp_admin(),
            totp_required,
            tenants,
        },
    )
}

/// `POST /admin/tenants` (MSP administrators).
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<NameForm>,
) -> Response {
    let Some(admin) = auth.session.principal.admin_scope() else {
        return crate::access::forbidden_page();
    };
    match state
        .store
        .create_tenant(admin, form.name.trim(), &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(id) => {
            tracing::info!(tenant = %id, user = %auth.session.username, "console: tenant created");
            Redirect::to("/admin/tenants").into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/tenants/{id}/rename` (MSP administrators).
pub(crate) async fn rename(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<NameForm>,
) -> Response {
    let Some(admin) = auth.session.principal.admin_scope() else {
        return crate::access::forbidden_page();
    };
    let Some(tenant) = parse_tenant(&raw) else {
        return tenant_missing();
    };
    match state
        .store
        .rename_tenant(
            admin,
            tenant,
            form.name.trim(),
            &Actor::user(&auth.session.username, ip),
        )
        .await
    {
        Ok(()) => Redirect::to("/admin/tenants").into_response(),
        Err(e) => store_error(e),
    }
}

/// `POST /admin/tenants/{id}/sites`.
pub(crate) async fn add_site(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<NameForm>,
) -> Response {
    let Some(tenant) = parse_tenant(&raw) else {
        return tenant_missing();
    };
    let scope = match auth.scope_for(tenant) {
        Ok(s) => s,
        Err(d) => return page_denied(d, tenant_missing),
    };
    match state
        .store
        .create_site(&scope, form.name.trim(), &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(site) => {
            tracing::info!(%site, user = %auth.session.username, "console: site created");
            Redirect::to("/admin/tenants").into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/sites/{id}/delete`.
pub(crate) async fn delete_site(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let Ok(site) = raw.parse::<SiteId>() else {
        return site_missing();
    };
    let sites = match state.store.sites(&auth.session.viewer).await {
        Ok(s) => s,
        Err(e) => return store_error(e),
    };
    let Some(row) = sites.into_iter().find(|s| s.site == site) else {
        return site_missing();
    };
    let scope = match auth.scope_for(row.tenant) {
        Ok(s) => s,
        Err(d) => return page_denied(d, site_missing),
    };
    match state
        .store
        .delete_site_in(&scope, site, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(revoked) => {
            tracing::info!(%site, revoked, user = %auth.session.username, "console: site deleted");
            Redirect::to("/admin/tenants").into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    require_totp: String,
}

impl CsrfProtected for SettingsForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/settings` (MSP administrators): require TOTP or not.
pub(crate) async fn settings(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<SettingsForm>,
) -> Response {
    let Some(admin) = auth.session.principal.admin_scope() else {
        return crate::access::forbidden_page();
    };
    let on = form.require_totp == "1";
    match state
        .store
        .set_totp_required(admin, on, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(()) => {
            tracing::info!(require_totp = on, user = %auth.session.username, "console: TOTP requirement set");
            Redirect::to("/admin/tenants").into_response()
        }
        Err(e) => store_error(e),
    }
}
