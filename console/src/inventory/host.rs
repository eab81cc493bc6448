//! `/inventory/hosts/{id}`: one discovered host: its facts, open ports with
//! what answered on them, SNMP and MNDP facts, the OS guess and its history;
//! with the buttons an operator needs (adopt a router with its site's
//! credential profile, clear a conflict) and a link to the managed device it
//! became.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use outpost_store::inventory::history::HostChange;
use outpost_store::inventory::views::HostDetail;
use outpost_store::inventory::{ChangeKind, HostId};
use outpost_store::{Store, StoreError};

use super::list::ports_text;
use super::{host_not_found, or_dash, page_error};
use crate::devices::format;
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;
use outpost_store::members::{Principal, Role};

/// An address the host answers at, in words.
#[derive(Clone, Debug)]
pub(crate) struct AddressView {
    pub(crate) address: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
}

/// An open port, in words.
#[derive(Clone, Debug)]
pub(crate) struct PortView {
    pub(crate) port: String,
    pub(crate) service: String,
    pub(crate) product: String,
    pub(crate) version: String,
    pub(crate) banner: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
}

/// An interface SNMP listed, in words.
#[derive(Clone, Debug)]
pub(crate) struct InterfaceView {
    pub(crate) index: i64,
    pub(crate) name: String,
    pub(crate) descr: String,
    pub(crate) mac: String,
    pub(crate) status: &'static str,
    pub(crate) status_class: &'static str,
    pub(crate) speed: String,
}

/// A change of a host, in words.
#[derive(Clone, Debug)]
pub(crate) struct ChangeView {
    pub(crate) id: i64,
    pub(crate) time: String,
    pub(crate) kind: &'static str,
    pub(crate) kind_class: &'static str,
    pub(crate) detail: String,
    pub(crate) scan: String,
    pub(crate) host: String,
    pub(crate) host_label: String,
}

/// The colour of a change's badge.
pub(crate) fn change_class(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::NewHost | ChangeKind::HostBack | ChangeKind::Adopted => "ok",
        ChangeKind::HostGone | ChangeKind::PortClosed => "muted",
        ChangeKind::MacConflict | ChangeKind::MacMoved => "bad",
        _ => "warn",
    }
}

impl From<&HostChange> for ChangeView {
    fn from(c: &HostChange) -> Self {
        Self {
            id: c.id,
            time: format::utc(Some(c.at_ms)),
            kind: c.kind.as_str(),
            kind_class: change_class(c.kind),
            detail: c.detail.clone(),
            scan: c.scan_id.clone(),
            host: c.host.to_string(),
            host_label: match (c.host_name.is_empty(), c.host_address.is_empty()) {
                (false, false) => format!("{} ({})", c.host_address, c.host_name),
                (true, false) => c.host_address.clone(),
                (false, true) => c.host_name.clone(),
                (true, true) => c.host.to_string(),
            },
        }
    }
}

/// Whether and how the host can be adopted as a managed device.
#[derive(Clone, Debug)]
pub(crate) struct Adoption {
    /// Why it looks like RouterOS.
    pub(crate) why: String,
    /// `API-SSL on port 8729` or `API on port 8728`.
    pub(crate) api: String,
    /// The user of the site's credential profile, when it has one.
    pub(crate) profile_user: Option<String>,
}

#[derive(Template)]
#[template(path = "inventory/host.html")]
pub(crate) struct HostPage {
    pub(crate) layout: Layout,
    pub(crate) csrf: String,
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) d: HostDetail,
    pub(crate) site_id: String,
    pub(crate) mac: String,
    pub(crate) vendor: String,
    pub(crate) names: String,
    pub(crate) seen_by: String,
    pub(crate) ports_summary: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
    pub(crate) gone_at: Option<String>,
    pub(crate) rtt: String,
    pub(crate) os: String,
    pub(crate) addresses: Vec<AddressView>,
    pub(crate) ports: Vec<PortView>,
    pub(crate) snmp_uptime: String,
    pub(crate) interfaces: Vec<InterfaceView>,
    pub(crate) mndp_uptime: String,
    pub(crate) changes: Vec<ChangeView>,
    pub(crate) adoption: Option<Adoption>,
}

/// A host id from a URL; anything else names no host.
pub(crate) fn parse_host(raw: &str) -> Option<HostId> {
    raw.parse().ok()
}

/// The host, and whether and how it can be adopted, read as `principal`
/// (adoption is offered to operators).
async fn load(store: &Store, principal: &Principal, id: HostId) -> Result<(HostDetail, Option<Adoption>), StoreError> {
    let viewer = &principal.viewer();
    let detail = store.host(viewer, id).await?;
    let host = &detail.host;
    let candidate = store
        .adoption_candidates(viewer, Some(host.site))
        .await?
        .into_iter()
        .find(|c| c.host.id == id);
    let adoption = match (candidate, principal.authorize(host.tenant, Role::Operator)) {
        (Some(c), Ok(scope)) => Some(Adoption {
            why: c.why.join(", "),
            api: format!("{} on port {}", if c.api_tls { "API-SSL" } else { "API" }, c.api_port),
            profile_user: store.site_credential(&scope, host.site).await?.map(|p| p.username),
        }),
        _ => None,
    };
    Ok((detail, adoption))
}

fn uptime_ticks(ticks: Option<i64>) -> String {
    ticks.map_or_else(|| "—".into(), |t| format::uptime(t / 100))
}

/// `GET /inventory/hosts/{id}`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_id): Path<String>,
) -> Response {
    let Some(id) = parse_host(&raw_id) else {
        return host_not_found();
    };
    let (d, adoption) = match load(&state.store, &auth.session.principal, id).await {
        Ok(loaded) => loaded,
        Err(e) => return page_error(e, host_not_found),
    };
    let h = &d.host;
    let addresses = d
        .addresses
        .iter()
        .map(|a| AddressView {
            address: a.address.clone(),
            first_seen: format::utc(Some(a.first_seen_ms)),
            last_seen: format::utc(Some(a.last_seen_ms)),
        })
        .collect();
    let ports = d
        .ports
        .iter()
        .map(|p| PortView {
            port: format!("{}/{}", p.port, p.protocol),
            service: or_dash(&p.service),
            product: or_dash(&p.product),
            version: or_dash(&p.version),
            banner: p.banner.clone(),
            first_seen: format::utc(Some(p.first_seen_ms)),
            last_seen: format::utc(Some(p.last_seen_ms)),
        })
        .collect();
    let interfaces = d
        .snmp
        .iter()
        .flat_map(|s| &s.interfaces)
        .map(|i| InterfaceView {
            index: i.index,
            name: or_dash(&i.name),
            descr: [i.descr.as_str(), i.alias.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" · "),
            mac: or_dash(&i.mac),
            status: if i.oper_up { "up" } else { "down" },
            status_class: if i.oper_up { "ok" } else { "muted" },
            speed: if i.speed_mbps > 0 {
                format::bits_per_second(i.speed_mbps as f64 * 1e6)
            } else {
                "—".into()
            },
        })
        .collect();
    let os = if h.os_guess.is_empty() {
        "—".to_owned()
    } else if d.os_accuracy > 0 {
        format!("{} ({}% accuracy)", h.os_guess, d.os_accuracy)
    } else {
        h.os_guess.clone()
    };
    let page = HostPage {
        layout: Layout::signed_in(&auth.session),
        csrf: auth.session.csrf_token.clone(),
        id: id.to_string(),
        title: if h.name.is_empty() {
            h.address.clone()
        } else {
            format!("{} ({})", h.name, h.address)
        },
        site_id: h.site.to_string(),
        mac: or_dash(&h.mac),
        vendor: or_dash(&h.vendor),
        names: or_dash(&h.names.join(", ")),
        seen_by: or_dash(&h.seen_by.join(", ")),
        ports_summary: or_dash(&ports_text(h)),
        first_seen: format::utc(Some(h.first_seen_ms)),
        last_seen: format::utc(Some(h.last_seen_ms)),
        gone_at: h.gone_at_ms.map(|ms| format::utc(Some(ms))),
        rtt: d
            .rtt_us
            .map_or_else(|| "—".into(), |us| format!("{:.1} ms", us as f64 / 1000.0)),
        os,
        addresses,
        ports,
        snmp_uptime: uptime_ticks(d.snmp.as_ref().and_then(|s| s.uptime_ticks)),
        interfaces,
        mndp_uptime: d
            .mndp
            .as_ref()
            .map_or_else(|| "—".into(), |m| format::uptime(m.uptime_secs)),
        changes: d.changes.iter().map(ChangeView::from).collect(),
        adoption,
        d,
    };
    render(StatusCode::OK, &page)
}
