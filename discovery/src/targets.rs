//! What a scan covers: CIDRs and single addresses, expanded to the addresses
//! probed, never more than a cap (a mistyped /8 must not become 16 million
//! probes), and the agent host's own connected networks as the default.
use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// Addresses one scan probes at most, unless the operator raises it.
pub const DEFAULT_MAX_ADDRESSES: usize = 4096;

/// A target that cannot be scanned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// Neither a CIDR nor an address.
    #[error("'{0}' is not a CIDR (10.0.0.0/24, fd00::/120) or an IP address")]
    Invalid(String),
    /// The targets hold more addresses than the cap.
    #[error(
        "the targets hold {count} addresses, more than the cap of {cap}: split them into smaller networks or raise the cap"
    )]
    TooLarge {
        /// Addresses asked for (saturating).
        count: u128,
        /// The cap.
        cap: usize,
    },
    /// Nothing to scan.
    #[error("no targets given")]
    Empty,
}

/// The networks and addresses of one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// As given (single addresses as /32 or /128), for reports.
    pub nets: Vec<IpNet>,
    /// Every address probed, sorted and without duplicates.
    pub addresses: Vec<IpAddr>,
}

/// Parses one target.
pub fn parse_target(s: &str) -> Result<IpNet, TargetError> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| TargetError::Invalid(s.to_owned()))
}

/// First and last address a network contributes, as integers: all of a
/// /31, /32, /127 or /128; the others without their network address (and,
/// for IPv4, broadcast), as hosts are counted.
fn range(net: &IpNet) -> (u128, u128) {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let (network, broadcast) = match net {
        IpNet::V4(n) => (u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast()))),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    };
    match net {
        _ if bits < 2 => (network, broadcast),
        IpNet::V4(_) => (network + 1, broadcast - 1),
        IpNet::V6(_) => (network + 1, broadcast),
    }
}

/// How many addresses a network contributes (saturating for ::/0).
fn size(net: &IpNet) -> u128 {
    let (first, last) = range(net);
    (last - first).saturating_add(1)
}

/// Expands `targets` (CIDRs or addresses), refusing more than `cap`
/// addresses in all before allocating any.
pub fn expand<S: AsRef<str>>(targets: &[S], cap: usize) -> Result<Targets, TargetError> {
    let nets = targets
        .iter()
        .map(|t| parse_target(t.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    expand_nets(nets, cap)
}

/// [`expand`] for parsed networks.
pub fn expand_nets(nets: Vec<IpNet>, cap: usize) -> Result<Targets, TargetError> {
    if nets.is_empty() {
        return Err(TargetError::Empty);
    }
    let count = nets.iter().map(size).fold(0u128, u128::saturating_add);
    if count > cap as u128 {
        return Err(TargetError::TooLarge { count, cap });
    }
    let mut addresses = BTreeSet::new();
    for net in &nets {
        let (first, last) = range(net);
        let mut a = first;
        loop {
            addresses.insert(match net {
                IpNet::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(a as u32)),
                IpNet::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(a)),
            });
            if a >= last {
                break;
            }
            a += 1;
        }
    }
    Ok(Targets {
        nets,
        addresses: addresses.into_iter().collect(),
    })
}

/// Whether `addr` lies in one of `nets`.
pub fn covers(nets: &[IpNet], addr: &IpAddr) -> bool {
    nets.iter().any(|n| n.contains(addr))
}

/// A connected network of this host, as the default scan target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedNetwork {
    /// The network, possibly narrowed to the cap (see [`default_targets`]).
    pub net: IpNet,
    /// This host's address on it.
    pub local: IpAddr,
    /// Interface index.
    pub interface: u32,
}

/// Narrows each connected network larger than `cap` to the block of `cap`
/// addresses around this host's own address, and says so.
pub fn default_targets(connected: &[ConnectedNetwork], cap: usize) -> (Vec<IpNet>, Vec<String>) {
    let mut nets = Vec::new();
    let mut warnings = Vec::new();
    // Largest prefix length whose block fits the cap (at least /30 or /126).
    for c in connected {
        if size(&c.net) <= cap as u128 {
            nets.push(c.net);
            continue;
        }
        let host_bits = (usize::BITS - cap.max(4).leading_zeros() - 1) as u8;
        let prefix = c.net.max_prefix_len().saturating_sub(host_bits);
        match IpNet::new(c.local, prefix) {
            Ok(narrow) => {
                let narrow = narrow.trunc();
                warnings.push(format!(
                    "connected network {} is larger than {cap} addresses: scanning {narrow} around this host's {} only; add discovery targets to cover the rest",
                    c.net, c.local
                ));
                nets.push(narrow);
            }
            Err(_) => warnings.push(format!("connected network {} skipped: cannot narrow it", c.net)),
        }
    }
    (nets, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_expand_like_nmap_reports_them() {
        let t = expand(&["10.1.2.0/24"], DEFAULT_MAX_ADDRESSES).unwrap();
        assert_eq!(t.addresses.len(), 254);
        assert_eq!(t.addresses[0], ip("10.1.2.1"));
        assert_eq!(t.addresses[253], ip("10.1.2.254"));
        let t = expand(&["10.1.2.7", "10.1.2.6/31", " 10.1.2.7 "], 10).unwrap();
        assert_eq!(
            t.addresses,
            vec![ip("10.1.2.6"), ip("10.1.2.7")],
            "deduplicated, sorted"
        );
        let t = expand(&["fd00::/126"], 10).unwrap();
        assert_eq!(t.addresses, vec![ip("fd00::1"), ip("fd00::2"), ip("fd00::3")]);
        let t = expand(&["10.1.2.5/24"], 300).unwrap();
        assert_eq!(t.nets[0].to_string(), "10.1.2.0/24", "host bits dropped");
    }

    #[test]
    fn bad_and_oversized_targets_are_refused_before_anything_is_allocated() {
        assert_eq!(
            expand(&["10.0.0.0/33"], 10),
            Err(TargetError::Invalid("10.0.0.0/33".into()))
        );
        assert_eq!(
            expand(&["example.org"], 10),
            Err(TargetError::Invalid("example.org".into()))
        );
        assert_eq!(expand::<&str>(&[], 10), Err(TargetError::Empty));
        let err = expand(&["10.0.0.0/8"], DEFAULT_MAX_ADDRESSES).unwrap_err();
        assert!(err.to_string().contains("16777214 addresses"), "{err}");
        assert!(matches!(
            expand(&["::/0"], DEFAULT_MAX_ADDRESSES),
            Err(TargetError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_large_connected_network_is_narrowed_around_this_host_with_a_warning() {
        let connected = [
            ConnectedNetwork {
                net: "10.0.0.0/16".parse().unwrap(),
                local: ip("10.0.77.9"),
                interface: 2,
            },
            ConnectedNetwork {
                net: "192.168.1.0/24".parse().unwrap(),
                local: ip("192.168.1.2"),
                interface: 3,
            },
        ];
        let (nets, warnings) = default_targets(&connected, 1024);
        assert_eq!(nets[0].to_string(), "10.0.76.0/22");
        assert_eq!(nets[1].to_string(), "192.168.1.0/24");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("10.0.0.0/16") && warnings[0].contains("10.0.76.0/22"),
            "{warnings:?}"
        );
        assert!(covers(&nets, &ip("10.0.79.255")) && !covers(&nets, &ip("10.0.80.1")));
    }
}
