//! The neighbour tables (ARP for IPv4, NDP for IPv6): MAC addresses of hosts
//! on connected networks, and, for hosts that drop ICMP, proof that they are
//! there: after an echo or a connect to an on-link address the kernel asks
//! for its MAC, and an answer leaves a reachable entry.
//!
//! Entries that do not show a live host are left out: incomplete and failed
//! lookups, and static (`PERMANENT`, `NOARP`) entries, which exist whether or
//! not anything answers. On Linux the table is read over rtnetlink, on
//! Windows with `GetIpNetTable2`; the host's own networks likewise (rtnetlink,
//! `GetUnicastIpAddressTable`).
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

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

/// Reads the neighbour tables of both families.
#[cfg(any(target_os = "linux", windows))]
pub async fn read() -> std::io::Result<Vec<Neighbour>> {
    platform::read().await
}

/// This host's connected networks (not loopback or link-local): the
/// default scan targets.
#[cfg(any(target_os = "linux", windows))]
pub async fn connected_networks() -> std::io::Result<Vec<crate::targets::ConnectedNetwork>> {
    platform::connected_networks().await
}

/// Neighbour tables are read on Linux and Windows only.
#[cfg(not(any(target_os = "linux", windows)))]
pub async fn read() -> std::io::Result<Vec<Neighbour>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading the neighbour table is not supported on this platform",
    ))
}

/// Connected networks are read on Linux and Windows only.
#[cfg(not(any(target_os = "linux", windows)))]
pub async fn connected_networks() -> std::io::Result<Vec<crate::targets::ConnectedNetwork>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading this host's networks is not supported on this platform: give discovery targets",
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
