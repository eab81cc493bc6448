//! A built host: its addresses, MAC and namespace.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::spec::HostKind;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    /// Lower-case and colon-separated, as `ip neigh` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// One host of a built [`TestNet`](crate::TestNet).
#[derive(Debug, Clone)]
pub struct Host {
    pub(crate) index: usize,
    pub(crate) kind: HostKind,
    pub(crate) namespace: Option<String>,
    pub(crate) ipv4: Option<Ipv4Addr>,
    pub(crate) ipv6: Option<Ipv6Addr>,
    pub(crate) mac: MacAddr,
    pub(crate) tcp_ports: Vec<u16>,
    pub(crate) snmpd: bool,
    pub(crate) drops_tcp: bool,
}

impl Host {
    /// Position in the builder's order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Live or silent.
    pub fn kind(&self) -> HostKind {
        self.kind
    }

    /// The host's own namespace; `None` for a silent host, which has none.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Its IPv4 address, if it has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4
    }

    /// Its IPv6 address, if it has one.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.ipv6
    }

    /// All its addresses, IPv4 first.
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
            .collect()
    }

    /// The first of [`addrs`](Self::addrs): every host has at least one.
    pub fn addr(&self) -> IpAddr {
        match (self.ipv4, self.ipv6) {
            (Some(v4), _) => IpAddr::V4(v4),
            (None, Some(v6)) => IpAddr::V6(v6),
            // The builder gives every host IPv4 unless IPv6 was asked for.
            (None, None) => unreachable!("a host without addresses"),
        }
    }

    /// Its MAC: the address of its `eth0`, or the one in the silent host's
    /// neighbour entry.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// TCP ports it listens on.
    pub fn tcp_ports(&self) -> &[u16] {
        &self.tcp_ports
    }

    /// Whether it runs `snmpd`.
    pub fn has_snmpd(&self) -> bool {
        self.snmpd
    }

    /// Whether its kernel drops every TCP segment ([`HostSpec::icmp_only`](crate::HostSpec::icmp_only)).
    pub fn drops_tcp(&self) -> bool {
        self.drops_tcp
    }
}
