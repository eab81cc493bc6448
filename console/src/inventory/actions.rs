//! Buttons on a host's page: adopt it as a managed device with its site's
//! credential profile, clear its conflict flag. Each is a CSRF-protected
//! POST that redirects.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use outpost_certs::TenantId;
use outpost_store::audit::Actor;
use outpost_store::inventory::HostId;
use outpost_store::{Store, StoreError, TenantScope};

use super::host::parse_host;
use super::{host_not_found, page_error};
use crate::csrf::CsrfForm;
use crate::devices::actions::ActionForm;
use crate::error::status_page;
use crate::rate_limit::ClientIp;
use crate::session::Authenticated;
use crate::state::ConsoleState;

/// The host, its tenant and the scope to act on it with, or the 404 page.
async fn target(
    store: &Store,
    auth: &Authenticated,
    raw_id: &str,
) -> Result<(HostId, TenantId, TenantScope), Response> {
    let id = parse_host(raw_id).ok_or_else(host_not_found)?;
    let host = store
        .host(&auth.session.viewer, id)
        .await
        .map_err(|e| page_error(e, host_not_found))?
        .host;
    let scope = auth
        .scope_for(host.tenant)
        .map_err(|d| crate::access::page_denied(d, host_not_found))?;
    Ok((id, host.tenant, scope))
}

/// `POST /inventory/hosts/{id}/adopt`: the new device's page on success.
pub(crate) async fn adopt(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let (id, tenant, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let key = state.vault.tenant(&tenant.to_string());
    let adopted = state
        .store
        .adopt_host(&scope, id, &Actor::user(&auth.session.username, ip), |r| {
            key.reseal_site_password_for_device(&r.site.to_string(), &r.device.to_string(), r.sealed)
                .map_err(|e| format!("the site's credential profile password cannot be opened: {e}"))
        })
        .await;
    match adopted {
        Ok(device) => {
            tracing::info!(host = %id, %device, user = %auth.session.username, "console: host adopted");
            Redirect::to(&format!("/devices/{device}")).into_response()
        }
        // Already managed, not a router, or no profile: the message says which.
        Err(StoreError::Conflict(why)) => status_page(StatusCode::CONFLICT, "Host not adopted", &why),
        Err(StoreError::Vault(why)) => {
            tracing::error!(host = %id, error = %why, "console: adopting a host failed");
            status_page(
                StatusCode::CONFLICT,
                "Host not adopted",
                "The site's credential profile password cannot be opened with this collector's vault key. \
                 Set the site's credential profile again, then adopt.",
            )
        }
        Err(e) => page_error(e, host_not_found),
    }
}

/// `POST /inventory/hosts/{id}/clear-conflict`.
pub(crate) async fn clear_conflict(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let (id, _, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    match state.store.clear_host_conflict(&scope, id).await {
        Ok(()) => {
            tracing::info!(host = %id, user = %auth.session.username, "console: host conflict cleared");
            Redirect::to(&format!("/inventory/hosts/{id}")).into_response()
        }
        Err(e) => page_error(e, host_not_found),
    }
}
