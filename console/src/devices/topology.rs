//! `/topology`: the viewer's devices as nodes and the neighbours they report
//! as edges, drawn server-side as SVG on a circle (ordered by tenant, site and
//! name, so the drawing stays put between visits). Neighbours that are not
//! managed devices are grey nodes.
use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use outpost_store::devices::DeviceId;
use outpost_store::devices::details::TopologyRows;
use outpost_store::devices::reports::NeighborRow;
use outpost_store::devices::views::DeviceRow;

use super::list::state_class;
use crate::error::PageError;
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;

/// Finds the managed device a neighbour is: by address (the device's own,
/// or one of its IP addresses), then by identity when only one device has it.
#[derive(Debug, Default)]
pub(crate) struct ManagedIndex {
    by_address: HashMap<String, DeviceId>,
    by_identity: HashMap<String, Option<DeviceId>>,
}

impl ManagedIndex {
    pub(crate) fn new(devices: &[DeviceRow], addresses: &[(DeviceId, String)]) -> Self {
        let mut index = Self::default();
        for d in devices {
            index.by_address.insert(d.address.clone(), d.id);
            if !d.identity.is_empty() {
                index
                    .by_identity
                    .entry(d.identity.clone())
                    // Two devices of one name: the name identifies neither.
                    .and_modify(|slot| *slot = None)
                    .or_insert(Some(d.id));
            }
        }
        let live: std::collections::HashSet<DeviceId> = devices.iter().map(|d| d.id).collect();
        for (id, address) in addresses {
            if live.contains(id) {
                let ip = address.split('/').next().unwrap_or(address);
                index.by_address.entry(ip.to_owned()).or_insert(*id);
            }
        }
        index
    }

    pub(crate) fn find(&self, n: &NeighborRow) -> Option<DeviceId> {
        if !n.address.is_empty()
            && let Some(id) = self.by_address.get(&n.address)
        {
            return Some(*id);
        }
        self.by_identity.get(&n.identity).copied().flatten()
    }
}

/// A node as drawn.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The device page, for managed devices.
    pub(crate) href: Option<String>,
    pub(crate) label: String,
    pub(crate) title: String,
    /// Badge colour of its state; `unmanaged` for neighbours.
    pub(crate) class: &'static str,
    pub(crate) x: i64,
    pub(crate) y: i64,
    /// Where the label goes (outside the circle).
    pub(crate) label_x: i64,
    pub(crate) label_y: i64,
    pub(crate) anchor: &'static str,
}

/// An edge between two nodes (indices into the node list).
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    pub(crate) x1: i64,
    pub(crate) y1: i64,
    pub(crate) x2: i64,
    pub(crate) y2: i64,
    pub(crate) title: String,
    pub(crate) managed: bool,
}

/// The whole drawing.
#[derive(Clone, Debug, Default)]
pub(crate) struct Drawing {
    pub(crate) width: i64,
    pub(crate) height: i64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
}

/// Lays out `devices` (ordered by tenant, site, address) and their neighbours.
pub(crate) fn draw(devices: &[DeviceRow], rows: &TopologyRows) -> Drawing {
    let index = ManagedIndex::new(devices, &rows.addresses);
    let mut order: Vec<&DeviceRow> = devices.iter().collect();
    order.sort_by(|a, b| {
        (&a.tenant_name, &a.site_name, &a.identity, &a.address).cmp(&(
            &b.tenant_name,
            &b.site_name,
            &b.identity,
            &b.address,
        ))
    });
    let slot: HashMap<DeviceId, usize> = order.iter().enumerate().map(|(i, d)| (d.id, i)).collect();

    // Unmanaged neighbours, keyed by what names them best, in name order.
    let mut unmanaged: BTreeMap<String, String> = BTreeMap::new();
    let mut links: BTreeMap<(usize, Target), Vec<String>> = BTreeMap::new();
    for (device, n) in &rows.neighbors {
        let Some(&from) = slot.get(device) else { continue };
        let via = if n.interface.is_empty() {
            n.discovered_by.clone()
        } else {
            n.interface.clone()
        };
        let target = match index.find(n).and_then(|id| slot.get(&id)) {
            Some(&to) if to == from => continue,
            Some(&to) => Target::Managed(to.min(from), to.max(from)),
            None => {
                let key = [&n.identity, &n.address, &n.mac_address]
                    .into_iter()
                    .find(|s| !s.is_empty())
                    .cloned()
                    .unwrap_or_else(|| "unknown".into());
                let title = format!("{} {} {} {}", n.identity, n.address, n.mac_address, n.board);
                unmanaged
                    .entry(key.clone())
                    .or_insert_with(|| title.split_whitespace().collect::<Vec<_>>().join(" "));
                Target::Unmanaged(key)
            }
        };
        let key_from = match target {
            Target::Managed(a, _) => a,
            Target::Unmanaged(_) => from,
        };
        links.entry((key_from, target)).or_default().push(via);
    }

    let total = order.len() + unmanaged.len();
    let radius = (total as f64 * 22.0).max(140.0);
    let margin = 170.0;
    let (cx, cy) = (radius + margin, radius + 60.0);
    let at = |i: usize| {
        let angle = std::f64::consts::TAU * i as f64 / total.max(1) as f64 - std::f64::consts::FRAC_PI_2;
        (angle.cos(), angle.sin())
    };
    let node = |i: usize, href, label: String, title, class| {
        let (c, s) = at(i);
        Node {
            href,
            label,
            title,
            class,
            x: (cx + radius * c).round() as i64,
            y: (cy + radius * s).round() as i64,
            label_x: (cx + (radius + 16.0) * c).round() as i64,
            label_y: (cy + (radius + 16.0) * s + 4.0).round() as i64,
            anchor: if c > 0.2 {
                "start"
            } else if c < -0.2 {
                "end"
            } else {
                "middle"
            },
        }
    };
    let mut nodes: Vec<Node> = order
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let name = if d.identity.is_empty() {
                d.address.clone()
            } else {
                d.identity.clone()
            };
            node(
                i,
                Some(format!("/devices/{}", d.id)),
                name,
                format!(
                    "{} / {} — {} ({})",
                    d.tenant_name,
                    d.site_name,
                    d.address,
                    d.state.describe()
                ),
                state_class(d.state),
            )
        })
        .collect();
    let mut unmanaged_slot = HashMap::new();
    for (j, (key, title)) in unmanaged.into_iter().enumerate() {
        let i = order.len() + j;
        unmanaged_slot.insert(key.clone(), i);
        nodes.push(node(i, None, key, format!("not managed: {title}"), "unmanaged"));
    }
    let edges = links
        .into_iter()
        .filter_map(|((from, target), vias)| {
            let (a, b, managed) = match target {
                Target::Managed(a, b) => (a, b, true),
                Target::Unmanaged(key) => (from, *unmanaged_slot.get(&key)?, false),
            };
            let (na, nb) = (&nodes[a], &nodes[b]);
            Some(Edge {
                x1: na.x,
                y1: na.y,
                x2: nb.x,
                y2: nb.y,
                title: format!("{} — {} via {}", na.label, nb.label, vias.join(", ")),
                managed,
            })
        })
        .collect();
    Drawing {
        width: (2.0 * (radius + margin)).round() as i64,
        height: (2.0 * radius + 120.0).round() as i64,
        nodes,
        edges,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// Two managed devices, lower slot first (an edge is reported by both ends).
    Managed(usize, usize),
    Unmanaged(String),
}

#[derive(Template)]
#[template(path = "devices/topology.html")]
pub(crate) struct TopologyPage {
    pub(crate) layout: Layout,
    pub(crate) drawing: Drawing,
}

/// `GET /topology`.
pub(crate) async fn page(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    let viewer = &auth.session.viewer;
    let loaded = async {
        let devices = state.store.list_devices(viewer).await?;
        let rows = state.store.topology_rows(viewer).await?;
        Ok::<_, outpost_store::StoreError>(draw(&devices, &rows))
    };
    match loaded.await {
        Ok(drawing) => render(
            StatusCode::OK,
            &TopologyPage {
                layout: Layout::signed_in(&auth.session),
                drawing,
            },
        ),
        Err(e) => PageError::from(e).into_response(),
    }
}
