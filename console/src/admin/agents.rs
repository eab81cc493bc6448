//! `/admin/agents`: the agents of the tenants the user administers; revoking
//! one refuses it at its next handshake and closes its connection.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use outpost_certs::AgentId;
use outpost_store::agents::AgentRow;

use super::{refuse_non_admins, store_error};
use crate::access::page_denied;
use crate::csrf::CsrfForm;
use crate::devices::actions::ActionForm;
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::PageSession;
use crate::state::ConsoleState;
use outpost_store::audit::Actor;

#[derive(Template)]
#[template(path = "admin/agents.html")]
struct AgentsPage {
    layout: Layout,
    csrf: String,
    agents: Vec<AgentRow>,
}

fn missing() -> Response {
    status_page(StatusCode::NOT_FOUND, "Agent not found", "There is no such agent.")
}

/// `GET /admin/agents`.
pub(crate) async fn page(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    if let Some(res) = refuse_non_admins(&auth) {
        return res;
    }
    let agents = match state.store.list_agents(&auth.session.viewer).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
    render(
        StatusCode::OK,
        &AgentsPage {
            layout: Layout::signed_in(&auth.session),
            csrf: auth.session.csrf_token.clone(),
            agents: agents
                .into_iter()
                .filter(|a| auth.scope_for(a.tenant).is_ok())
                .collect(),
        },
    )
}

/// `POST /admin/agents/{id}/revoke`.
pub(crate) async fn revoke(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let Ok(agent) = raw.parse::<AgentId>() else {
        return missing();
    };
    let agents = match state.store.list_agents(&auth.session.viewer).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
    let Some(row) = agents.into_iter().find(|a| a.agent == agent) else {
        return missing();
    };
    let scope = match auth.scope_for(row.tenant) {
        Ok(s) => s,
        Err(d) => return page_denied(d, missing),
    };
    match state
        .store
        .revoke_agent_in(&scope, agent, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(_) => {
            tracing::info!(%agent, user = %auth.session.username, "console: agent revoked");
            Redirect::to("/admin/agents").into_response()
        }
        Err(e) => store_error(e),
    }
}
