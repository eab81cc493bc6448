//! `/devices/{id}`: one device: facts, the latest lists of its polls, log,
//! events, configuration history, and the charts' and live view's anchors
//! (drawn by `console.js` with uPlot).
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use outpost_store::devices::details::{ConfigVersion, DeviceDetails};
use outpost_store::devices::views::DeviceRow;
use outpost_store::devices::{DeviceId, DeviceState};
use outpost_store::members::Role;
use outpost_store::scope::Viewer;
use outpost_store::{Store, StoreError};

use super::list::{state_class, version_words};
use super::topology::ManagedIndex;
use super::{device_not_found, format, page_error, parse_id};
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;

/// An interface row in words.
#[derive(Clone, Debug)]
pub(crate) struct InterfaceView {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) status: &'static str,
    pub(crate) status_class: &'static str,
    pub(crate) mac: String,
    pub(crate) rx: String,
    pub(crate) tx: String,
    pub(crate) link_downs: i64,
}

/// A neighbour, linked when it is a managed device.
#[derive(Clone, Debug)]
pub(crate) struct NeighborView {
    pub(crate) href: Option<String>,
    pub(crate) identity: String,
    pub(crate) interface: String,
    pub(crate) address: String,
    pub(crate) mac: String,
    pub(crate) platform: String,
    pub(crate) board: String,
    pub(crate) discovered_by: String,
}

/// A wireless client in words.
#[derive(Clone, Debug)]
pub(crate) struct ClientView {
    pub(crate) interface: String,
    pub(crate) mac: String,
    pub(crate) signal: String,
    pub(crate) tx_rate: String,
    pub(crate) rx_rate: String,
    pub(crate) ccq: String,
    pub(crate) uptime: String,
}

/// A line of a table of time and words (log, events).
#[derive(Clone, Debug)]
pub(crate) struct TimedLine {
    pub(crate) time: String,
    pub(crate) kind: String,
    pub(crate) text: String,
}

#[derive(Template)]
#[template(path = "devices/page.html")]
pub(crate) struct DevicePage {
    pub(crate) layout: Layout,
    pub(crate) csrf: String,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) row: DeviceRow,
    pub(crate) details: DeviceDetails,
    pub(crate) state_class: &'static str,
    pub(crate) pin_mismatch: bool,
    /// A backup was just requested from this page.
    pub(crate) backup_requested: bool,
    /// The user is an admin of the device's tenant: terminal recordings.
    pub(crate) can_replay: bool,
    pub(crate) since: String,
    pub(crate) last_poll: String,
    pub(crate) version: String,
    pub(crate) uptime: String,
    pub(crate) cpu: String,
    pub(crate) memory: String,
    pub(crate) storage: String,
    pub(crate) interfaces: Vec<InterfaceView>,
    pub(crate) neighbors: Vec<NeighborView>,
    pub(crate) clients: Vec<ClientView>,
    pub(crate) log: Vec<TimedLine>,
    pub(crate) events: Vec<TimedLine>,
    pub(crate) versions: Vec<(ConfigVersion, String)>,
}

fn rate(bps: Option<f64>) -> String {
    bps.map_or_else(|| "—".into(), format::bits_per_second)
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "—".into() } else { s.to_owned() }
}

/// Everything the page shows, read as `viewer`.
pub(crate) async fn load(
    store: &Store,
    viewer: &Viewer,
    id: DeviceId,
) -> Result<(DeviceRow, DeviceDetails, Vec<ConfigVersion>, ManagedIndex), StoreError> {
    let row = store.device(viewer, id).await?;
    let details = store.device_details(viewer, id).await?;
    let versions = store.config_versions(viewer, id).await?;
    let devices = store.list_devices(viewer).await?;
    let addresses = store.topology_rows(viewer).await?.addresses;
    Ok((row, details, versions, ManagedIndex::new(&devices, &addresses)))
}

/// Query of the device page.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct PageQuery {
    /// `requested` after "Back up now".
    #[serde(default)]
    backup: Option<String>,
}

/// `GET /devices/{id}`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(id) = parse_id(&raw_id) else {
        return device_not_found();
    };
    let (row, details, versions, index) = match load(&state.store, &auth.session.viewer, id).await {
        Ok(loaded) => loaded,
        Err(e) => return page_error(e),
    };
    let interfaces = details
        .interfaces
        .iter()
        .map(|i| {
            let (status, status_class) = match (i.disabled, i.running) {
                (true, _) => ("disabled", "muted"),
                (false, true) => ("running", "ok"),
                (false, false) => ("not running", "bad"),
            };
            InterfaceView {
                name: i.name.clone(),
                kind: i.kind.clone(),
                status,
                status_class,
                mac: or_dash(&i.mac_address),
                rx: rate(i.rx_bps),
                tx: rate(i.tx_bps),
                link_downs: i.link_downs,
            }
        })
        .collect();
    let neighbors = details
        .neighbors
        .iter()
        .map(|n| NeighborView {
            href: index.find(n).filter(|d| *d != id).map(|d| format!("/devices/{d}")),
            identity: or_dash(&n.identity),
            interface: n.interface.clone(),
            address: or_dash(&n.address),
            mac: or_dash(&n.mac_address),
            platform: [n.platform.as_str(), n.version.as_str()].join(" ").trim().to_owned(),
            board: n.board.clone(),
            discovered_by: n.discovered_by.clone(),
        })
        .collect();
    let clients = details
        .wireless
        .iter()
        .map(|w| ClientView {
            interface: w.interface.clone(),
            mac: w.mac_address.clone(),
            signal: w.signal_dbm.map_or_else(|| "—".into(), |s| format!("{s} dBm")),
            tx_rate: format::bits_per_second(w.tx_rate_bps as f64),
            rx_rate: format::bits_per_second(w.rx_rate_bps as f64),
            ccq: w.tx_ccq.map_or_else(|| "—".into(), |c| format!("{c}%")),
            uptime: format::uptime(w.uptime_secs),
        })
        .collect();
    let log = details
        .log
        .iter()
        .map(|l| TimedLine {
            time: l.line.time.clone(),
            kind: l.line.topics.clone(),
            text: l.line.message.clone(),
        })
        .collect();
    let events = details
        .events
        .iter()
        .map(|e| TimedLine {
            time: format::utc(Some(e.at_ms)),
            kind: e.kind.clone(),
            text: e.detail.clone(),
        })
        .collect();
    let versions = versions
        .into_iter()
        .map(|v| {
            let at = format::utc(Some(v.taken_at_ms));
            (v, at)
        })
        .collect();
    let page = DevicePage {
        layout: Layout::signed_in(&auth.session),
        csrf: auth.session.csrf_token.clone(),
        id: id.to_string(),
        name: if row.identity.is_empty() {
            row.address.clone()
        } else {
            row.identity.clone()
        },
        state_class: state_class(row.state),
        pin_mismatch: row.state == DeviceState::TlsPinMismatch && row.presented_tls_fingerprint.is_some(),
        backup_requested: query.backup.as_deref() == Some("requested"),
        can_replay: auth.session.principal.authorize(row.tenant, Role::Admin).is_ok(),
        since: format::utc(Some(row.state_since_ms)),
        last_poll: format::utc(row.last_poll_ms),
        version: version_words(&row),
        uptime: row.uptime_secs.map_or_else(|| "—".into(), format::uptime),
        cpu: row.cpu_load.map_or_else(|| "—".into(), |c| format!("{c}%")),
        memory: format::used_of(row.free_memory, row.total_memory),
        storage: format::used_of(details.facts.free_hdd, details.facts.total_hdd),
        interfaces,
        neighbors,
        clients,
        log,
        events,
        versions,
        row,
        details,
    };
    render(StatusCode::OK, &page)
}
