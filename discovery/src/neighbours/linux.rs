//! The neighbour tables and this host's addresses over rtnetlink.
use std::net::IpAddr;

use super::Neighbour;
use crate::targets::ConnectedNetwork;

/// Reads the neighbour tables of both families.
pub(super) async fn read() -> std::io::Result<Vec<Neighbour>> {
    use futures::TryStreamExt as _;
    use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};

    let (connection, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(connection);
    let mut dump = handle.neighbours().get().execute();
    let mut out = Vec::new();
    let result = loop {
        match dump.try_next().await {
            Ok(Some(msg)) => {
                let confirmed = match msg.header.state {
                    NeighbourState::Reachable => true,
                    NeighbourState::Stale | NeighbourState::Delay | NeighbourState::Probe => false,
                    _ => continue,
                };
                let mut address = None;
                let mut mac = None;
                for attr in &msg.attributes {
                    match attr {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => address = Some(IpAddr::V4(*a)),
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => address = Some(IpAddr::V6(*a)),
                        NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
                        _ => {}
                    }
                }
                if let (Some(address), Some(mac)) = (address, mac)
                    && mac != [0; 6]
                {
                    out.push(Neighbour {
                        address,
                        mac,
                        confirmed,
                    });
                }
            }
            Ok(None) => break Ok(out),
            Err(e) => break Err(std::io::Error::other(format!("reading the neighbour table: {e}"))),
        }
    };
    task.abort();
    result
}

/// This host's connected networks (not loopback or link-local), read over
/// rtnetlink: the default scan targets.
pub(super) async fn connected_networks() -> std::io::Result<Vec<ConnectedNetwork>> {
    use futures::TryStreamExt as _;
    use rtnetlink::packet_route::address::{AddressAttribute, AddressScope};

    let (connection, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(connection);
    let mut dump = handle.address().get().execute();
    let mut out = Vec::new();
    let result = loop {
        match dump.try_next().await {
            Ok(Some(msg)) => {
                if msg.header.scope != AddressScope::Universe {
                    continue;
                }
                let local = msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                });
                let address = msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                });
                let Some(local) = local.or(address) else { continue };
                if local.is_loopback() {
                    continue;
                }
                if let Ok(net) = ipnet::IpNet::new(local, msg.header.prefix_len) {
                    out.push(ConnectedNetwork {
                        net: net.trunc(),
                        local,
                        interface: msg.header.index,
                    });
                }
            }
            Ok(None) => break Ok(out),
            Err(e) => break Err(std::io::Error::other(format!("reading this host's addresses: {e}"))),
        }
    };
    task.abort();
    result
}
