//! `/admin/users`: users and their roles. MSP administrators manage everyone
//! and make MSP administrators; a tenant admin manages the members of the
//! tenants they administer (the store refuses the rest).
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::members::{NewUser, Role, UserRow};

use super::{parse_tenant, refuse_non_admins, store_error};
use crate::access::page_denied;
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::devices::actions::ActionForm;
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::PageSession;
use crate::state::ConsoleState;
use outpost_store::audit::Actor;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    layout: Layout,
    csrf: String,
    msp_admin: bool,
    /// Tenants the user administers: (id, name).
    tenants: Vec<(String, String)>,
    users: Vec<UserRow>,
    notice: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    done: String,
}

fn tenant_missing() -> Response {
    status_page(StatusCode::NOT_FOUND, "Tenant not found", "There is no such tenant.")
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("/admin/users?done={done}")).into_response()
}

/// `GET /admin/users`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Query(q): Query<Done>,
) -> Response {
    if let Some(res) = refuse_non_admins(&auth) {
        return res;
    }
    let p = &auth.session.principal;
    let (users, tenants) = match (state.store.list_users(p).await, state.store.list_tenants(p).await) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => return store_error(e),
    };
    let tenants = tenants
        .into_iter()
        .filter(|t| auth.scope_for(t.id).is_ok())
        .map(|t| (t.id.to_string(), t.name))
        .collect();
    let notice = match q.done.as_str() {
        "created" => Some("User created."),
        "role" => Some("Role saved."),
        "password" => Some("Password reset; the user's sessions were ended."),
        "disabled" => Some("User disabled."),
        "enabled" => Some("User enabled."),
        "deleted" => Some("User deleted."),
        "totp" => Some("Second factor reset."),
        "msp" => Some("MSP administrator role saved."),
        _ => None,
    };
    render(
        StatusCode::OK,
        &UsersPage {
            layout: Layout::signed_in(&auth.session),
            csrf: auth.session.csrf_token.clone(),
            msp_admin: p.is_msp_admin(),
            tenants,
            users,
            notice,
        },
    )
}

/// The new-user form. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    role: String,
}

impl CsrfProtected for CreateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn bad_role(why: &str) -> Response {
    status_page(StatusCode::UNPROCESSABLE_ENTITY, "Not saved", why)
}

/// `POST /admin/users`.
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<CreateForm>,
) -> Response {
    let kind = if form.tenant.is_empty() {
        NewUser::MspAdmin
    } else {
        let Some(tenant) = parse_tenant(&form.tenant) else {
            return tenant_missing();
        };
        if let Err(d) = auth.scope_for(tenant) {
            return page_denied(d, tenant_missing);
        }
        match form.role.parse::<Role>() {
            Ok(role) => NewUser::Member(tenant, role),
            Err(why) => return bad_role(&why),
        }
    };
    let username = form.username.trim();
    match state
        .store
        .create_user(
            &auth.session.principal,
            username,
            &form.password,
            kind,
            &Actor::user(&auth.session.username, ip),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(new_user = %username, user = %auth.session.username, "console: user created");
            back("created")
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    role: String,
}

impl CsrfProtected for RoleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/users/{id}/role`: sets a role in a tenant, or removes it (empty role).
pub(crate) async fn set_role(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<RoleForm>,
) -> Response {
    let Some(tenant) = parse_tenant(&form.tenant) else {
        return tenant_missing();
    };
    if let Err(d) = auth.scope_for(tenant) {
        return page_denied(d, tenant_missing);
    }
    let role = if form.role.is_empty() {
        None
    } else {
        match form.role.parse::<Role>() {
            Ok(r) => Some(r),
            Err(why) => return bad_role(&why),
        }
    };
    match state
        .store
        .set_role(
            &auth.session.principal,
            &user,
            tenant,
            role,
            &Actor::user(&auth.session.username, ip),
        )
        .await
    {
        Ok(()) => {
            tracing::info!(target_user = %user, %tenant, ?role, user = %auth.session.username, "console: role set");
            back("role")
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OnForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    on: String,
}

impl CsrfProtected for OnForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/users/{id}/msp-admin` (MSP administrators).
pub(crate) async fn set_msp_admin(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<OnForm>,
) -> Response {
    match state
        .store
        .set_msp_admin(
            &auth.session.principal,
            &user,
            form.on == "1",
            &Actor::user(&auth.session.username, ip),
        )
        .await
    {
        Ok(()) => back("msp"),
        Err(e) => store_error(e),
    }
}

/// A new password. No `Debug`.
#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

impl CsrfProtected for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/users/{id}/password`: ends the user's sessions too.
pub(crate) async fn reset_password(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<PasswordForm>,
) -> Response {
    match state
        .store
        .reset_password(
            &auth.session.principal,
            &user,
            &form.password,
            &Actor::user(&auth.session.username, ip),
        )
        .await
    {
        Ok(()) => {
            tracing::info!(target_user = %user, user = %auth.session.username, "console: password reset");
            back("password")
        }
        Err(e) => store_error(e),
    }
}

async fn disabled(
    state: &ConsoleState,
    auth: &crate::session::Authenticated,
    ip: Option<std::net::IpAddr>,
    user: &str,
    on: bool,
) -> Response {
    let by = Actor::user(&auth.session.username, ip);
    match state.store.set_disabled(&auth.session.principal, user, on, &by).await {
        Ok(()) => {
            tracing::info!(target_user = %user, disabled = on, user = %auth.session.username, "console: user disabled/enabled");
            back(if on { "disabled" } else { "enabled" })
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/users/{id}/disable`.
pub(crate) async fn disable(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    disabled(&state, &auth, ip, &user, true).await
}

/// `POST /admin/users/{id}/enable`.
pub(crate) async fn enable(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    disabled(&state, &auth, ip, &user, false).await
}

/// `POST /admin/users/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    match state
        .store
        .delete_user(&auth.session.principal, &user, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(()) => {
            tracing::info!(target_user = %user, user = %auth.session.username, "console: user deleted");
            back("deleted")
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/users/{id}/reset-totp`.
pub(crate) async fn reset_totp(
    State(state): State<ConsoleState>,
    Path(user): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    match state
        .store
        .reset_second_factor(&auth.session.principal, &user, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(()) => {
            tracing::info!(target_user = %user, user = %auth.session.username, "console: second factor reset");
            back("totp")
        }
        Err(e) => store_error(e),
    }
}
