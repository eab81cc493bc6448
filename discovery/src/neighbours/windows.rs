//! The neighbour tables and this host's addresses from the IP Helper API
//! (`GetIpNetTable2`, `GetUnicastIpAddressTable`), on a blocking thread.
#![allow(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use windows_sys::Win32::Foundation::NO_ERROR;
use windows_sys::Win32::NetworkManagement::IpHelper::{
    FreeMibTable, GetIpNetTable2, GetUnicastIpAddressTable, MIB_IPNET_TABLE2, MIB_UNICASTIPADDRESS_TABLE,
};
use windows_sys::Win32::Networking::WinSock::{
    AF_INET, AF_INET6, AF_UNSPEC, NlnsDelay, NlnsProbe, NlnsReachable, NlnsStale, SOCKADDR_INET,
};

use super::Neighbour;
use crate::targets::ConnectedNetwork;

fn ip_of(a: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: every member of the union starts with the family, which says
    // which member the system filled in.
    unsafe {
        match a.si_family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.Ipv4.sin_addr.S_un.S_addr)))),
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(a.Ipv6.sin6_addr.u.Byte))),
            _ => None,
        }
    }
}

fn neighbours() -> std::io::Result<Vec<Neighbour>> {
    let mut table: *mut MIB_IPNET_TABLE2 = std::ptr::null_mut();
    // SAFETY: on success the call stores a table it allocated in `table`,
    // freed below with FreeMibTable and not used after.
    let rc = unsafe { GetIpNetTable2(AF_UNSPEC, &mut table) };
    if rc != NO_ERROR || table.is_null() {
        return Err(std::io::Error::from_raw_os_error(rc as i32));
    }
    let mut out = Vec::new();
    // SAFETY: the table holds NumEntries rows laid out after its header.
    let rows = unsafe { std::slice::from_raw_parts((*table).Table.as_ptr(), (*table).NumEntries as usize) };
    for r in rows {
        let confirmed = if r.State == NlnsReachable {
            true
        } else if [NlnsStale, NlnsDelay, NlnsProbe].contains(&r.State) {
            false
        } else {
            continue;
        };
        if r.PhysicalAddressLength != 6 {
            continue;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&r.PhysicalAddress[..6]);
        if mac == [0; 6] {
            continue;
        }
        if let Some(address) = ip_of(&r.Address) {
            out.push(Neighbour {
                address,
                mac,
                confirmed,
            });
        }
    }
    // SAFETY: the table came from GetIpNetTable2 and is freed once.
    unsafe { FreeMibTable(table as *const _) };
    Ok(out)
}

fn addresses() -> std::io::Result<Vec<ConnectedNetwork>> {
    let mut table: *mut MIB_UNICASTIPADDRESS_TABLE = std::ptr::null_mut();
    // SAFETY: as in `neighbours`.
    let rc = unsafe { GetUnicastIpAddressTable(AF_UNSPEC, &mut table) };
    if rc != NO_ERROR || table.is_null() {
        return Err(std::io::Error::from_raw_os_error(rc as i32));
    }
    let mut out = Vec::new();
    // SAFETY: the table holds NumEntries rows laid out after its header.
    let rows = unsafe { std::slice::from_raw_parts((*table).Table.as_ptr(), (*table).NumEntries as usize) };
    for r in rows {
        let Some(local) = ip_of(&r.Address) else { continue };
        let link_local = match local {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if local.is_loopback() || link_local {
            continue;
        }
        if let Ok(net) = ipnet::IpNet::new(local, r.OnLinkPrefixLength) {
            out.push(ConnectedNetwork {
                net: net.trunc(),
                local,
                interface: r.InterfaceIndex,
            });
        }
    }
    // SAFETY: the table came from GetUnicastIpAddressTable and is freed once.
    unsafe { FreeMibTable(table as *const _) };
    Ok(out)
}

pub(super) async fn read() -> std::io::Result<Vec<Neighbour>> {
    tokio::task::spawn_blocking(neighbours)
        .await
        .map_err(std::io::Error::other)?
}

pub(super) async fn connected_networks() -> std::io::Result<Vec<ConnectedNetwork>> {
    tokio::task::spawn_blocking(addresses)
        .await
        .map_err(std::io::Error::other)?
}
