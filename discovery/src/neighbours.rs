//! The neighbour tables (ARP for IPv4, NDP for IPv6): MAC addresses of hosts
//! on connected networks, and, for hosts that drop ICMP, proof that they are
//! there: after an echo or a connect to an on-link address the kernel asks
//! for its MAC, and an answer leaves a reachable entry.
//!
//! Entries that do not show a live host are left out: incomplete and failed
//! lookups, and static (`PERMANENT`, `NOARP`) entries, which exist whether or
//! not anything answers. On Linux the table is read over rtnetlink.
use std::net::IpAddr;

/// One usable neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// The neighbour's address.
    pub address: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// It answered recently (`REACHABLE`), rather than being remembered
    /// (`STALE`, `DELAY`, `PROBE`).
    pub confirmed: bool,
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Reads the neighbour tables of both families.
#[cfg(target_os = "linux")]
pub async fn read() -> std::io::Result<Vec<Neighbour>> {
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

/// Neighbour tables are read on Linux only so far.
#[cfg(not(target_os = "linux"))]
pub async fn read() -> std::io::Result<Vec<Neighbour>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading the neighbour table is not supported on this platform yet",
    ))
}

/// This host's connected networks (not loopback or link-local), read over
/// rtnetlink: the default scan targets.
#[cfg(target_os = "linux")]
pub async fn connected_networks() -> std::io::Result<Vec<crate::targets::ConnectedNetwork>> {
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
                    out.push(crate::targets::ConnectedNetwork {
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

/// Connected networks are read on Linux only so far.
#[cfg(not(target_os = "linux"))]
pub async fn connected_networks() -> std::io::Result<Vec<crate::targets::ConnectedNetwork>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading this host's networks is not supported on this platform yet: give discovery targets",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tables_can_be_read() {
        // Contents depend on the machine; reading must work and skip junk.
        let n = read().await.expect("neighbour dump");
        assert!(n.iter().all(|e| e.mac != [0; 6]));
        let nets = connected_networks().await.expect("address dump");
        assert!(nets.iter().all(|c| !c.local.is_loopback()));
        assert_eq!(format_mac(&[0x4c, 0x5e, 0x0c, 1, 2, 0xab]), "4c:5e:0c:01:02:ab");
    }
}
