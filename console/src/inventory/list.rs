//! `/inventory`: the hosts of the viewer's tenants, grouped by site, sorted
//! and filtered as the query string says, with badges for what needs an
//! operator (a conflict, a router to adopt); and the same as JSON
//! (`/api/inventory`, same parameters).
use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use outpost_store::inventory::HostId;
use outpost_store::inventory::addr::PortList;
use outpost_store::inventory::views::HostRow;
use outpost_store::scope::Viewer;
use outpost_store::tenants::SiteRow;
use outpost_store::{Store, StoreError, now_ms};

use super::query::{ListParams, ListQuery, QueryError};
use super::site_not_found;
use crate::devices::format;
use crate::error::{ApiError, PageError, json_error, status_page};
use crate::layout::{Layout, render};
use crate::session::{ApiSession, PageSession};
use crate::state::ConsoleState;

/// Most hosts one listing shows; a narrower filter finds the rest.
pub(crate) const HOST_LIMIT: u32 = 5_000;

/// One host as the list shows it, every value already in words.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HostItem {
    pub(crate) id: String,
    pub(crate) address: String,
    pub(crate) mac: String,
    pub(crate) vendor: String,
    pub(crate) name: String,
    pub(crate) names: Vec<String>,
    pub(crate) os_guess: String,
    /// Open ports, `22,80,8728-8729` then other protocols as `161/udp`.
    pub(crate) ports: String,
    pub(crate) first_seen_ms: i64,
    pub(crate) first_seen: String,
    pub(crate) last_seen_ms: i64,
    pub(crate) last_seen: String,
    pub(crate) missed_scans: i64,
    pub(crate) gone: bool,
    /// Why its conflict flag is set.
    pub(crate) conflict: Option<String>,
    /// The managed device it is, when it was adopted.
    pub(crate) device: Option<String>,
    /// It looks like RouterOS and is not managed yet.
    pub(crate) adoptable: bool,
    /// Why it looks like RouterOS, in words ("" when it does not).
    pub(crate) adopt_why: String,
}

/// `22,80,8728-8729,161/udp`.
pub(crate) fn ports_text(h: &HostRow) -> String {
    let tcp = PortList::from_ports(h.tcp_ports()).to_string();
    std::iter::once(tcp)
        .chain(
            h.open_ports
                .iter()
                .filter(|p| p.protocol != "tcp")
                .map(|p| format!("{}/{}", p.port, p.protocol)),
        )
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

impl HostItem {
    fn new(h: &HostRow, adopt_why: Option<&Vec<String>>) -> Self {
        Self {
            id: h.id.to_string(),
            address: h.address.clone(),
            mac: h.mac.clone(),
            vendor: h.vendor.clone(),
            name: h.name.clone(),
            names: h.names.clone(),
            os_guess: h.os_guess.clone(),
            ports: ports_text(h),
            first_seen_ms: h.first_seen_ms,
            first_seen: format::utc(Some(h.first_seen_ms)),
            last_seen_ms: h.last_seen_ms,
            last_seen: format::utc(Some(h.last_seen_ms)),
            missed_scans: h.missed_scans,
            gone: h.gone_at_ms.is_some(),
            conflict: h.conflict.clone(),
            device: h.device.map(|d| d.to_string()),
            adoptable: adopt_why.is_some(),
            adopt_why: adopt_why.map(|w| w.join(", ")).unwrap_or_default(),
        }
    }
}

/// The hosts of one site.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SiteGroup {
    pub(crate) tenant_name: String,
    pub(crate) site_id: String,
    pub(crate) site_name: String,
    pub(crate) hosts: Vec<HostItem>,
}

/// A site in the filter and the list of sites' discovery pages.
#[derive(Clone, Debug)]
pub(crate) struct SiteChoice {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// The listing as the page and its JSON show it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InventoryList {
    pub(crate) generated_at_ms: i64,
    pub(crate) query: ListQuery,
    /// More hosts match than [`HOST_LIMIT`].
    pub(crate) truncated: bool,
    pub(crate) groups: Vec<SiteGroup>,
    #[serde(skip)]
    pub(crate) sites: Vec<SiteChoice>,
}

/// Why the listing could not be made.
pub(crate) enum LoadError {
    Query(QueryError),
    Store(StoreError),
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Groups `hosts` (in listing order) by site, sites in `sites`' order.
fn group(sites: &[SiteRow], hosts: &[HostRow], why: &HashMap<HostId, Vec<String>>) -> Vec<SiteGroup> {
    sites
        .iter()
        .filter_map(|s| {
            let items: Vec<HostItem> = hosts
                .iter()
                .filter(|h| h.site == s.site)
                .map(|h| HostItem::new(h, why.get(&h.id)))
                .collect();
            (!items.is_empty()).then(|| SiteGroup {
                tenant_name: s.tenant_name.clone(),
                site_id: s.site.to_string(),
                site_name: s.site_name.clone(),
                hosts: items,
            })
        })
        .collect()
}

pub(crate) async fn load(store: &Store, viewer: &Viewer, params: &ListParams) -> Result<InventoryList, LoadError> {
    let sites = store.sites(viewer).await?;
    let query = params.check(&sites).map_err(LoadError::Query)?;
    let mut hosts = store.list_hosts(viewer, &query.host_query(HOST_LIMIT + 1)).await?;
    let truncated = hosts.len() > HOST_LIMIT as usize;
    hosts.truncate(HOST_LIMIT as usize);
    let site = query.site_row.as_ref().map(|s| s.site);
    let why: HashMap<HostId, Vec<String>> = store
        .adoption_candidates(viewer, site)
        .await?
        .into_iter()
        .map(|c| (c.host.id, c.why))
        .collect();
    let choices = sites
        .iter()
        .map(|s| SiteChoice {
            id: s.site.to_string(),
            label: format!("{} / {}", s.tenant_name, s.site_name),
            selected: Some(s.site) == site,
        })
        .collect();
    Ok(InventoryList {
        generated_at_ms: now_ms(),
        groups: group(&sites, &hosts, &why),
        query,
        truncated,
        sites: choices,
    })
}

#[derive(Template)]
#[template(path = "inventory/list.html")]
pub(crate) struct ListPage {
    pub(crate) layout: Layout,
    pub(crate) list: InventoryList,
}

/// `GET /inventory`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Query(params): Query<ListParams>,
) -> Response {
    match load(&state.store, &auth.session.viewer, &params).await {
        Ok(list) => render(
            StatusCode::OK,
            &ListPage {
                layout: Layout::signed_in(&auth.session),
                list,
            },
        ),
        Err(LoadError::Query(QueryError::Bad(why))) => status_page(StatusCode::BAD_REQUEST, "Bad request", &why),
        Err(LoadError::Query(QueryError::UnknownSite)) => site_not_found(),
        Err(LoadError::Store(e)) => PageError::from(e).into_response(),
    }
}

/// `GET /api/inventory`.
pub(crate) async fn api(
    State(state): State<ConsoleState>,
    ApiSession(auth): ApiSession,
    Query(params): Query<ListParams>,
) -> Response {
    match load(&state.store, &auth.session.viewer, &params).await {
        Ok(list) => Json(list).into_response(),
        Err(LoadError::Query(QueryError::Bad(why))) => json_error(StatusCode::BAD_REQUEST, &why),
        Err(LoadError::Query(QueryError::UnknownSite)) => json_error(StatusCode::NOT_FOUND, "site not found"),
        Err(LoadError::Store(e)) => ApiError::from(e).into_response(),
    }
}
