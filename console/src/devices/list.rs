//! `/devices`: every device the viewer may see, by tenant and site, as a page
//! and as the JSON (`/api/devices`) that keeps the page current.
use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use outpost_store::devices::DeviceState;
use outpost_store::devices::views::DeviceRow;
use outpost_store::scope::Viewer;
use outpost_store::{Store, StoreError, now_ms};

use super::format;
use crate::error::{ApiError, PageError};
use crate::layout::{Layout, render};
use crate::session::{ApiSession, PageSession};
use crate::state::ConsoleState;

/// The list as the page and its JSON show it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DeviceList {
    pub(crate) generated_at_ms: i64,
    pub(crate) groups: Vec<SiteGroup>,
}

/// The devices of one site.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SiteGroup {
    pub(crate) tenant_name: String,
    pub(crate) site_name: String,
    pub(crate) devices: Vec<DeviceItem>,
}

/// One row, every value already in words.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DeviceItem {
    pub(crate) id: String,
    /// The identity, or the address until the first poll.
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) state: &'static str,
    /// `ok`, `warn`, `bad` or `muted`: the badge's colour.
    pub(crate) state_class: &'static str,
    pub(crate) state_words: &'static str,
    pub(crate) state_reason: String,
    pub(crate) since: String,
    pub(crate) cpu: String,
    pub(crate) memory: String,
    pub(crate) uptime: String,
    pub(crate) version: String,
    pub(crate) firmware: String,
    pub(crate) update_available: bool,
    pub(crate) latest_version: String,
    pub(crate) last_poll: String,
}

/// The colour of a state's badge.
pub(crate) fn state_class(state: DeviceState) -> &'static str {
    match state {
        DeviceState::Up => "ok",
        DeviceState::Pending => "muted",
        DeviceState::TlsPinMismatch | DeviceState::TlsUnsupported | DeviceState::NoApiPolicy => "warn",
        DeviceState::Unreachable | DeviceState::AuthFailed | DeviceState::ProtocolError => "bad",
    }
}

/// `7.16.1 (stable)`, or a dash before the first poll.
pub(crate) fn version_words(row: &DeviceRow) -> String {
    match (row.version.is_empty(), row.channel.is_empty()) {
        (true, _) => "—".into(),
        (false, true) => row.version.clone(),
        (false, false) => format!("{} ({})", row.version, row.channel),
    }
}

impl From<&DeviceRow> for DeviceItem {
    fn from(d: &DeviceRow) -> Self {
        Self {
            id: d.id.to_string(),
            name: if d.identity.is_empty() {
                d.address.clone()
            } else {
                d.identity.clone()
            },
            address: format!("{}:{}", d.address, d.api_port),
            state: d.state.as_str(),
            state_class: state_class(d.state),
            state_words: d.state.describe(),
            state_reason: d.state_reason.clone(),
            since: format::utc(Some(d.state_since_ms)),
            cpu: d.cpu_load.map_or_else(|| "—".into(), |c| format!("{c}%")),
            memory: format::used_of(d.free_memory, d.total_memory),
            uptime: d.uptime_secs.map_or_else(|| "—".into(), format::uptime),
            version: version_words(d),
            firmware: if d.current_firmware.is_empty() {
                "—".into()
            } else {
                d.current_firmware.clone()
            },
            update_available: d.update_available,
            latest_version: d.latest_version.clone(),
            last_poll: format::utc(d.last_poll_ms),
        }
    }
}

impl DeviceList {
    /// Groups rows (ordered by tenant, site and address) by site.
    pub(crate) fn build(rows: &[DeviceRow], generated_at_ms: i64) -> Self {
        let mut groups: Vec<SiteGroup> = Vec::new();
        let mut last_site = None;
        for row in rows {
            if last_site != Some(row.site) {
                groups.push(SiteGroup {
                    tenant_name: row.tenant_name.clone(),
                    site_name: row.site_name.clone(),
                    devices: Vec::new(),
                });
                last_site = Some(row.site);
            }
            if let Some(group) = groups.last_mut() {
                group.devices.push(DeviceItem::from(row));
            }
        }
        Self {
            generated_at_ms,
            groups,
        }
    }
}

pub(crate) async fn load(store: &Store, viewer: &Viewer) -> Result<DeviceList, StoreError> {
    Ok(DeviceList::build(&store.list_devices(viewer).await?, now_ms()))
}

#[derive(Template)]
#[template(path = "devices/list.html")]
pub(crate) struct ListPage {
    pub(crate) layout: Layout,
    pub(crate) list: DeviceList,
}

/// `GET /devices`.
pub(crate) async fn page(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    match load(&state.store, &auth.session.viewer).await {
        Ok(list) => render(
            StatusCode::OK,
            &ListPage {
                layout: Layout::signed_in(&auth.session),
                list,
            },
        ),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// `GET /api/devices`.
pub(crate) async fn api(
    State(state): State<ConsoleState>,
    ApiSession(auth): ApiSession,
) -> Result<Json<DeviceList>, ApiError> {
    Ok(Json(load(&state.store, &auth.session.viewer).await?))
}
