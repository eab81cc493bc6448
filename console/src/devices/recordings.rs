//! Recordings of a device's terminal sessions, for tenant admins:
//! `GET /devices/{id}/recordings` lists them, `…/recordings/{recording}`
//! replays one in the browser (xterm.js, `assets/replay.js`) and
//! `…/recordings/{recording}/cast` is the asciicast v2 file itself. Each
//! read of a recording's text is audited (`recording.view`): it holds
//! everything the technician typed.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use outpost_store::audit::{Actor, AuditEvent, Details};
use outpost_store::devices::DeviceId;
use outpost_store::terminal_recordings::{Recording, RecordingInfo};
use outpost_store::{StoreError, TenantScope};

use super::actions::target;
use super::format;
use super::page_error;
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::{Authenticated, PageSession};
use crate::state::ConsoleState;

/// Recordings listed on the page, newest first.
const LISTED: i64 = 200;

/// One row of the list.
pub(crate) struct RecordingRow {
    pub(crate) id: String,
    pub(crate) started: String,
    pub(crate) username: String,
    pub(crate) duration: String,
    pub(crate) size: String,
    pub(crate) running: bool,
}

impl From<&RecordingInfo> for RecordingRow {
    fn from(r: &RecordingInfo) -> Self {
        Self {
            id: r.id.clone(),
            started: format::utc(Some(r.started_at_ms)),
            username: r.username.clone(),
            duration: r.ended_at_ms.map_or_else(
                || "—".into(),
                |end| format::uptime((end - r.started_at_ms).max(0) / 1000),
            ),
            size: format::bytes(r.size_bytes),
            running: r.ended_at_ms.is_none(),
        }
    }
}

#[derive(Template)]
#[template(path = "devices/recordings.html")]
struct ListPage {
    layout: Layout,
    id: String,
    name: String,
    rows: Vec<RecordingRow>,
}

#[derive(Template)]
#[template(path = "devices/replay.html")]
struct ReplayPage {
    layout: Layout,
    id: String,
    name: String,
    row: RecordingRow,
}

fn recording_not_found() -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "Recording not found",
        "There is no such recording of this device.",
    )
}

/// The device's name as the pages show it.
async fn device_name(state: &ConsoleState, auth: &Authenticated, id: DeviceId) -> String {
    match state.store.device(&auth.session.viewer, id).await {
        Ok(d) if !d.identity.is_empty() => d.identity,
        Ok(d) => d.address,
        Err(_) => id.to_string(),
    }
}

/// The recording, when it is this device's; 404 otherwise.
async fn of_device(
    state: &ConsoleState,
    scope: &TenantScope,
    device: DeviceId,
    recording: &str,
) -> Result<Recording, Response> {
    match state.store.recording(scope, recording).await {
        Ok(r) if r.info.device == device.to_string() => Ok(r),
        Ok(_) | Err(StoreError::NotFound(_)) => Err(recording_not_found()),
        Err(e) => Err(page_error(e)),
    }
}

/// `GET /devices/{id}/recordings`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_id): Path<String>,
) -> Response {
    let (id, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let rows = match state.store.device_recordings(&scope, id, LISTED).await {
        Ok(list) => list.iter().map(RecordingRow::from).collect(),
        Err(e) => return page_error(e),
    };
    render(
        StatusCode::OK,
        &ListPage {
            layout: Layout::signed_in(&auth.session),
            id: id.to_string(),
            name: device_name(&state, &auth, id).await,
            rows,
        },
    )
}

/// `GET /devices/{id}/recordings/{recording}`: the player; the text comes
/// from `…/cast`.
pub(crate) async fn replay(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path((raw_id, recording)): Path<(String, String)>,
) -> Response {
    let (id, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let info = match state.store.recording_info(&scope, &recording).await {
        Ok(info) if info.device == id.to_string() => info,
        Ok(_) | Err(StoreError::NotFound(_)) => return recording_not_found(),
        Err(e) => return page_error(e),
    };
    let mut res = render(
        StatusCode::OK,
        &ReplayPage {
            layout: Layout::signed_in(&auth.session),
            id: id.to_string(),
            name: device_name(&state, &auth, id).await,
            row: RecordingRow::from(&info),
        },
    );
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::terminal::CSP),
    );
    res
}

/// `GET /devices/{id}/recordings/{recording}/cast`: the asciicast v2 text.
pub(crate) async fn cast(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path((raw_id, recording)): Path<(String, String)>,
    ClientIp(ip): ClientIp,
) -> Response {
    let (id, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let r = match of_device(&state, &scope, id, &recording).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let event = AuditEvent::success(
        Some(scope.tenant()),
        "recording.view",
        format!("recording {}", r.info.id),
    )
    .with(
        Details::new()
            .text("device", id.to_string())
            .text("tunnel", r.info.tunnel_id.clone())
            .text("typed_by", r.info.username.clone()),
    );
    // What was read must be on the record before it is handed out.
    if let Err(e) = state
        .store
        .record_audit(&Actor::user(&auth.session.username, ip), event)
        .await
    {
        return page_error(e);
    }
    let filename = format!("attachment; filename=\"{}.cast\"", r.info.id);
    let mut res = (StatusCode::OK, r.cast).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-asciicast"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}
