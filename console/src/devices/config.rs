//! One configuration version: its export and its diff against the version
//! before, opened with the vault. Secret values are masked (`outpost_routeros::export_mask`)
//! unless the viewer posts "reveal", which records a `config_revealed` event
//! naming them.
use crate::rate_limit::ClientIp;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outpost_store::audit::{Actor, AuditEvent, Details};

use outpost_store::devices::DeviceId;
use outpost_store::devices::details::{ConfigVersion, SealedConfig};
use outpost_store::users::Session;

use super::actions::{ActionForm, target};
use super::{device_not_found, format, page_error, parse_id};
use crate::csrf::CsrfForm;
use crate::error::PageError;
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;
use outpost_routeros::export_mask::mask_text as masked;

/// A line of a diff, with its class (`added`, `removed`, `hunk`, or empty).
#[derive(Clone, Debug)]
pub(crate) struct DiffLine {
    pub(crate) class: &'static str,
    pub(crate) text: String,
}

#[derive(Template)]
#[template(path = "devices/config.html")]
pub(crate) struct ConfigPage {
    pub(crate) layout: Layout,
    pub(crate) csrf: String,
    pub(crate) id: String,
    pub(crate) version: ConfigVersion,
    pub(crate) taken: String,
    pub(crate) export: String,
    pub(crate) diff: Option<Vec<DiffLine>>,
    pub(crate) revealed: bool,
    /// Whether masking hid anything (the reveal button shows only then).
    pub(crate) has_secrets: bool,
}

fn diff_lines(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|l| DiffLine {
            class: if l.starts_with("+++") || l.starts_with("---") {
                "file"
            } else if l.starts_with('+') {
                "added"
            } else if l.starts_with('-') {
                "removed"
            } else if l.starts_with("@@") {
                "hunk"
            } else {
                ""
            },
            text: l.to_owned(),
        })
        .collect()
}

/// Opens a sealed version with the device's backup key.
fn open(state: &ConsoleState, id: DeviceId, sealed: &SealedConfig) -> Result<(String, Option<String>), PageError> {
    outpost_vault::open_config_version(
        &state.vault,
        &sealed.tenant.to_string(),
        &id.to_string(),
        &sealed.sealed_export,
        sealed.sealed_diff.as_deref(),
    )
    .map_err(|e| PageError::internal("opening a configuration backup failed", &e))
}

async fn show(state: &ConsoleState, session: &Session, id: DeviceId, taken_at_ms: i64, reveal: bool) -> Response {
    let sealed = match state.store.config_version(&session.viewer, id, taken_at_ms).await {
        Ok(s) => s,
        Err(e) => return page_error(e),
    };
    let (export, diff) = match open(state, id, &sealed) {
        Ok(opened) => opened,
        Err(e) => return e.into_response(),
    };
    let (masked_export, export_secrets) = masked(&export);
    let (masked_diff, diff_secrets) = diff.as_deref().map(masked).map_or((None, false), |(d, s)| (Some(d), s));
    let (export, diff) = if reveal {
        (export, diff)
    } else {
        (masked_export, masked_diff)
    };
    render(
        StatusCode::OK,
        &ConfigPage {
            layout: Layout::signed_in(session),
            csrf: session.csrf_token.clone(),
            id: id.to_string(),
            taken: format::utc(Some(sealed.version.taken_at_ms)),
            version: sealed.version,
            export,
            diff: diff.as_deref().map(diff_lines),
            revealed: reveal,
            has_secrets: export_secrets || diff_secrets,
        },
    )
}

/// `GET /devices/{id}/config/{taken_at_ms}`: secrets masked.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path((raw_id, taken)): Path<(String, String)>,
) -> Response {
    let (Some(id), Ok(taken_at_ms)) = (parse_id(&raw_id), taken.parse::<i64>()) else {
        return device_not_found();
    };
    show(&state, &auth.session, id, taken_at_ms, false).await
}

/// `POST /devices/{id}/config/{taken_at_ms}/reveal`: secrets shown, and a
/// `config_revealed` event records who saw them.
pub(crate) async fn reveal(
    State(state): State<ConsoleState>,
    Path((raw_id, taken)): Path<(String, String)>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let (id, scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let Ok(taken_at_ms) = taken.parse::<i64>() else {
        return device_not_found();
    };
    // The version must exist before anyone is said to have seen it.
    if let Err(e) = state.store.config_version(&auth.session.viewer, id, taken_at_ms).await {
        return page_error(e);
    }
    let detail = format!(
        "{} revealed the secrets of the configuration of {}",
        auth.session.username,
        format::utc(Some(taken_at_ms))
    );
    let audit = AuditEvent::success(Some(scope.tenant()), "device.config_reveal", format!("device {id}"))
        .with(Details::new().number("taken_at_ms", taken_at_ms));
    if let Err(e) = state
        .store
        .record_device_event(
            &scope,
            id,
            "config_revealed",
            &detail,
            (&Actor::user(&auth.session.username, ip), audit),
        )
        .await
    {
        return page_error(e);
    }
    tracing::info!(device = %id, taken_at_ms, user = %auth.session.username, "console: configuration secrets revealed");
    show(&state, &auth.session, id, taken_at_ms, true).await
}
