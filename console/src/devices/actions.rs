//! Buttons on the device page: delete the device, accept the certificate or
//! SSH host key it now presents, back it up now. Each is a CSRF-protected
//! POST that redirects back.
use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::audit::Actor;
use outpost_store::devices::DeviceId;
use outpost_store::members::Denied;
use outpost_store::{Store, StoreError, TenantScope};

use super::{device_not_found, page_error, parse_id};
use crate::access::page_denied;
use crate::agent_control::RefusedAccess;
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::error::status_page;
use crate::rate_limit::ClientIp;
use crate::session::Authenticated;
use crate::state::ConsoleState;

/// A form carrying nothing but its token.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
}

impl CsrfProtected for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The device and the scope to act on it with, or the 404 page.
pub(crate) async fn target(
    store: &Store,
    auth: &Authenticated,
    raw_id: &str,
) -> Result<(DeviceId, TenantScope), Response> {
    let id = parse_id(raw_id).ok_or_else(device_not_found)?;
    let row = store.device(&auth.session.viewer, id).await.map_err(page_error)?;
    let scope = auth
        .scope_for(row.tenant)
        .map_err(|d| page_denied(d, device_not_found))?;
    Ok((id, scope))
}

/// [`target`] for a way into the device (a tunnel, the terminal): a refusal
/// is also written to the audit log ([`RefusedAccess`]).
pub(crate) async fn remote_target(
    store: &Store,
    auth: &Authenticated,
    raw_id: &str,
    source: Option<IpAddr>,
    via: &'static str,
) -> Result<(DeviceId, TenantScope), Response> {
    let id = parse_id(raw_id).ok_or_else(device_not_found)?;
    let (tenant, denied) = match store.device(&auth.session.viewer, id).await {
        Ok(row) => match auth.scope_for(row.tenant) {
            Ok(scope) => return Ok((id, scope)),
            Err(Denied::Forbidden) => (Some(row.tenant), Denied::Forbidden),
            Err(Denied::NotFound) => (None, Denied::NotFound),
        },
        Err(StoreError::NotFound(_)) => (None, Denied::NotFound),
        Err(e) => return Err(page_error(e)),
    };
    RefusedAccess {
        user: &auth.session.username,
        source,
        tenant,
        device: id,
        port: None,
        via,
        reason: match denied {
            Denied::Forbidden => "permission denied",
            Denied::NotFound => "device not found",
        },
    }
    .audit(store)
    .await;
    Err(page_denied(denied, device_not_found))
}

/// `POST /devices/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let (id, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    match state
        .store
        .delete_device(&scope, id, &Actor::user(&auth.session.username, ip))
        .await
    {
        Ok(()) => {
            tracing::info!(device = %id, user = %auth.session.username, "console: device deleted");
            Redirect::to("/devices").into_response()
        }
        Err(e) => page_error(e),
    }
}

/// What a device presents that an operator may accept as its new pin.
#[derive(Clone, Copy, Debug)]
enum Acceptable {
    Certificate,
    HostKey,
}

async fn accept(
    state: &ConsoleState,
    raw_id: &str,
    auth: &Authenticated,
    ip: Option<IpAddr>,
    what: Acceptable,
) -> Response {
    let session = &auth.session;
    let (id, scope) = match target(&state.store, auth, raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let actor = Actor::user(&session.username, ip);
    let accepted = match what {
        Acceptable::Certificate => state.store.accept_device_certificate(&scope, id, &actor).await,
        Acceptable::HostKey => state.store.accept_device_host_key(&scope, id, &actor).await,
    };
    match accepted {
        Ok(fingerprint) => {
            tracing::info!(device = %id, %fingerprint, user = %session.username, what = ?what, "console: presented credential accepted");
            Redirect::to(&format!("/devices/{id}")).into_response()
        }
        // Nothing waiting (accepted in another tab): the page says so.
        Err(outpost_store::StoreError::Conflict(_)) => Redirect::to(&format!("/devices/{id}")).into_response(),
        Err(e) => page_error(e),
    }
}

/// `POST /devices/{id}/accept-certificate`.
pub(crate) async fn accept_certificate(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    accept(&state, &raw_id, &auth, ip, Acceptable::Certificate).await
}

/// `POST /devices/{id}/accept-host-key`.
pub(crate) async fn accept_host_key(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    accept(&state, &raw_id, &auth, ip, Acceptable::HostKey).await
}

/// `POST /devices/{id}/backup`: asks the agent polling the device for a
/// configuration backup now.
pub(crate) async fn backup_now(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let (id, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    match state.agents.backup_now(scope, id).await {
        Ok(()) => {
            tracing::info!(device = %id, user = %auth.session.username, "console: backup requested");
            Redirect::to(&format!("/devices/{id}?backup=requested#config")).into_response()
        }
        Err(reason) => status_page(StatusCode::SERVICE_UNAVAILABLE, "Backup not requested", &reason),
    }
}

/// The "open a tunnel on the collector" form: which device port.
#[derive(Debug, Deserialize)]
pub(crate) struct TunnelForm {
    #[serde(default)]
    csrf: String,
    /// `winbox`, `ssh`, `http`, `https` or a number; WinBox when absent.
    #[serde(default)]
    port: String,
}

impl CsrfProtected for TunnelForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The device port a form names.
fn tunnel_port(name: &str) -> Option<u16> {
    match name {
        "" | "winbox" => Some(8291),
        "ssh" => Some(22),
        "http" => Some(80),
        "https" => Some(443),
        n => n.parse().ok().filter(|p| *p != 0),
    }
}

/// `POST /devices/{id}/tunnel`: a short-lived listener on the collector that
/// accepts only this user's address and tunnels each connection to the
/// device (for WinBox without the command line).
pub(crate) async fn open_tunnel_listener(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<TunnelForm>,
) -> Response {
    use crate::agent_control::{TunnelAsk, TunnelRefused};
    let (id, scope) = match remote_target(&state.store, &auth, &raw_id, ip, "port").await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let Some(port) = tunnel_port(form.port.trim()) else {
        return status_page(
            StatusCode::BAD_REQUEST,
            "Not a port",
            "Name winbox, ssh, http, https or a port number.",
        );
    };
    let Some(ip) = ip else {
        return status_page(
            StatusCode::BAD_REQUEST,
            "No client address",
            "The console cannot tell your address, so it cannot open a listener only you may use.",
        );
    };
    let ask = TunnelAsk {
        scope,
        device: id,
        port,
        user: auth.session.username.clone(),
        source: Some(ip),
        via: "port",
    };
    match state.agents.listen_tunnel(ask, ip).await {
        Ok(l) => {
            let until = time::OffsetDateTime::from_unix_timestamp(l.expires_at_ms / 1000)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            let message = format!(
                "Connect to {} (for WinBox: paste it as the address). Only connections from {} are accepted. \
                 The listener closes after {} s without a connection, and at {until} at the latest.",
                l.addr, l.allowed, l.idle_secs
            );
            status_page(StatusCode::OK, "Tunnel open", &message)
        }
        Err(TunnelRefused::NotFound(_)) => device_not_found(),
        Err(TunnelRefused::Denied(m)) => status_page(StatusCode::FORBIDDEN, "Tunnel refused", &m),
        Err(TunnelRefused::Limit(m)) => status_page(StatusCode::TOO_MANY_REQUESTS, "Too many tunnels", &m),
        Err(TunnelRefused::Unavailable(m)) => status_page(StatusCode::SERVICE_UNAVAILABLE, "Tunnel not opened", &m),
    }
}
