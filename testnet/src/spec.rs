//! What a test host is: which address families, which TCP services, SNMP,
//! or nothing at all.

/// The SSH banner hosts send on a port with [`Banner::Ssh`].
pub const SSH_BANNER: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2";

/// The `Server:` header hosts send on a port with [`Banner::Http`].
pub const HTTP_SERVER: &str = "nginx/1.22.1";

/// What a TCP listener says after accepting a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Banner {
    /// Nothing: waits (briefly) for the client to close.
    None,
    /// Sends [`SSH_BANNER`] and CRLF at once, as an SSH server does.
    Ssh,
    /// Waits for a request head (or the client's half-close), then answers
    /// `HTTP/1.1 200 OK` with `Server:` [`HTTP_SERVER`].
    Http,
    /// Sends these bytes at once.
    Text(String),
}

impl Banner {
    /// The banner a well-known port usually has: SSH on 22, HTTP on 80 and
    /// 8080, nothing elsewhere.
    pub fn for_port(port: u16) -> Self {
        match port {
            22 => Self::Ssh,
            80 | 8080 => Self::Http,
            _ => Self::None,
        }
    }
}

/// How a host behaves; made by the constructors of [`HostSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostKind {
    /// Its own namespace: answers ICMP and ARP/ND, and whatever services it has.
    Live,
    /// No namespace: only a permanent neighbour entry on the scan side, so
    /// packets to it leave the bridge and nobody answers.
    Silent,
}

/// One host of a [`TestNet`](crate::TestNet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub(crate) kind: HostKind,
    pub(crate) ipv4: bool,
    pub(crate) ipv6: bool,
    pub(crate) tcp: Vec<(u16, Banner)>,
    pub(crate) snmpd: bool,
    pub(crate) drop_tcp: bool,
}

impl HostSpec {
    /// A live host with no services: answers ping, refuses TCP. Add
    /// services and address families with the other methods; without
    /// [`ipv4`](Self::ipv4) or [`ipv6`](Self::ipv6) it gets IPv4 only.
    pub fn new() -> Self {
        Self {
            kind: HostKind::Live,
            ipv4: false,
            ipv6: false,
            tcp: Vec::new(),
            snmpd: false,
            drop_tcp: false,
        }
    }

    /// A host that answers ICMP (and ARP/NDP) and nothing else: an
    /// nftables rule in its namespace drops every TCP segment it receives,
    /// so a connect gets neither a SYN-ACK nor a reset, as behind a
    /// firewall that drops. Needs `nft` (Debian package nftables).
    pub fn icmp_only() -> Self {
        Self {
            drop_tcp: true,
            ..Self::new()
        }
    }

    /// A host that is in the scan side's neighbour table but answers
    /// nothing: no ICMP, no TCP reset, no ARP.
    pub fn silent() -> Self {
        Self {
            kind: HostKind::Silent,
            ..Self::new()
        }
    }

    /// A host running Debian's `snmpd` on UDP 161: v2c community
    /// [`SNMP_COMMUNITY`](crate::SNMP_COMMUNITY) and the SNMPv3 users in
    /// [`SNMP_V3_USERS`](crate::SNMP_V3_USERS).
    pub fn snmpd() -> Self {
        Self::new().with_snmpd()
    }

    /// Adds `snmpd` to this host.
    pub fn with_snmpd(mut self) -> Self {
        self.snmpd = true;
        self
    }

    /// Gives the host an IPv4 address (10.77.n.x).
    pub fn ipv4(mut self) -> Self {
        self.ipv4 = true;
        self
    }

    /// Gives the host an IPv6 address (fd77:n::x); alone, an IPv6-only host.
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Listens on these TCP ports, each with [`Banner::for_port`].
    pub fn tcp_ports(mut self, ports: &[u16]) -> Self {
        self.tcp.extend(ports.iter().map(|&p| (p, Banner::for_port(p))));
        self
    }

    /// Listens on one TCP port with the given banner.
    pub fn tcp_port(mut self, port: u16, banner: Banner) -> Self {
        self.tcp.push((port, banner));
        self
    }

    pub(crate) fn has_ipv4(&self) -> bool {
        self.ipv4 || !self.ipv6
    }

    pub(crate) fn has_ipv6(&self) -> bool {
        self.ipv6
    }
}

impl Default for HostSpec {
    fn default() -> Self {
        Self::new()
    }
}
