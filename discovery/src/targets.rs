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
        "the targets hold {count} addresses, more than the cap of {cap}: split them into smaller networks or raise \
         the cap (discovery_max_addresses in agent.toml, --max-addresses for discover)"
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
    /// No targets, and this host has no network to scan by default.
    #[error("this host has no connected networks to scan: give targets, e.g. 192.168.1.0/24")]
    NoConnectedNetworks,
}

/// The networks and addresses of one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// As given (single addresses as /32 or /128), for reports.
    pub nets: Vec<IpNet>,
    /// Every address probed, sorted and without duplicates.
    pub addresses: Vec<IpAddr>,
    /// Networks not swept whose hosts are still taken from the neighbour
    /// table and MNDP (the default job's IPv6 prefixes).
    pub neighbours_only: Vec<IpNet>,
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
        neighbours_only: Vec::new(),
    })
}

/// Whether `addr` lies in one of `nets`.
pub fn covers(nets: &[IpNet], addr: &IpAddr) -> bool {
    nets.iter().any(|n| n.contains(addr))
}

/// A connected network of this host, as the default scan target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedNetwork {
    /// The network as configured on the interface.
    pub net: IpNet,
    /// This host's address on it.
    pub local: IpAddr,
    /// Interface index.
    pub interface: u32,
}

/// What the default job covers: the connected networks fitted to the cap
/// (see [`default_targets`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultTargets {
    /// Networks swept address by address, together at most the cap.
    pub sweep: Vec<IpNet>,
    /// Networks too large to sweep (IPv6 prefixes): their hosts come from
    /// the neighbour table and MNDP only.
    pub neighbours_only: Vec<IpNet>,
    /// What was narrowed or left out, one sentence each.
    pub warnings: Vec<String>,
}

/// The block of `net` around `local` with the most addresses that still
/// fits `budget`, if any does.
fn narrow(net: &IpNet, local: IpAddr, budget: u128) -> Option<IpNet> {
    (net.prefix_len()..=net.max_prefix_len())
        .filter_map(|prefix| IpNet::new(local, prefix).ok().map(|n| n.trunc()))
        .find(|block| size(block) <= budget)
}

/// Fits this host's connected networks into `cap` addresses in all.
///
/// An IPv6 prefix cannot be swept (a /64 holds 2^64 addresses): IPv6
/// networks are swept only when they fit what the IPv4 networks leave,
/// otherwise their hosts are taken from the neighbour table and MNDP, and
/// one warning says so. IPv4 networks are taken smallest first (the site's
/// LAN before a container bridge's /16), each whole while it fits; the
/// first that does not is narrowed to the largest block around this host's
/// own address that fits what is left, and those after it get what remains
/// the same way, or are skipped when nothing is left. Every narrowed or
/// skipped network is named in a warning.
pub fn default_targets(connected: &[ConnectedNetwork], cap: usize) -> DefaultTargets {
    let mut out = DefaultTargets::default();
    let mut seen = BTreeSet::new();
    let mut v4: Vec<&ConnectedNetwork> = Vec::new();
    let mut v6: Vec<&ConnectedNetwork> = Vec::new();
    for c in connected {
        let net = c.net.trunc();
        if !seen.insert(net) {
            continue;
        }
        match net {
            IpNet::V4(_) => v4.push(c),
            IpNet::V6(_) => v6.push(c),
        }
    }
    // Stable: equal sizes keep the interfaces' order.
    v4.sort_by_key(|c| size(&c.net.trunc()));
    v6.sort_by_key(|c| size(&c.net.trunc()));
    let mut left = cap as u128;
    for c in v4 {
        let net = c.net.trunc();
        let n = size(&net);
        if n <= left {
            out.sweep.push(net);
            left -= n;
            continue;
        }
        match narrow(&net, c.local, left) {
            Some(block) => {
                out.warnings.push(format!(
                    "connected network {net} holds {n} addresses, more than the {left} left of the cap of {cap}: \
                     scanning {block} around this host's {} only; add discovery targets for the rest or raise \
                     the cap (discovery_max_addresses, --max-addresses)",
                    c.local
                ));
                left -= size(&block);
                out.sweep.push(block);
            }
            _ => out.warnings.push(format!(
                "connected network {net} skipped: the cap of {cap} addresses is used up by the smaller networks; \
                 add discovery targets for it or raise the cap (discovery_max_addresses, --max-addresses)"
            )),
        }
    }
    for c in v6 {
        let net = c.net.trunc();
        let n = size(&net);
        if n <= left {
            out.sweep.push(net);
            left -= n;
        } else {
            out.neighbours_only.push(net);
        }
    }
    if !out.neighbours_only.is_empty() {
        let list = out
            .neighbours_only
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        out.warnings.push(format!(
            "IPv6 networks {list} are too large to sweep address by address: their hosts are taken from the \
             neighbour table and MNDP only; add IPv6 targets such as a /120 to sweep part of one"
        ));
    }
    out
}

/// The default job's targets: this host's connected networks fitted to
/// `cap` ([`default_targets`]), expanded, with the warnings to show.
pub fn expand_connected(connected: &[ConnectedNetwork], cap: usize) -> Result<(Targets, Vec<String>), TargetError> {
    let plan = default_targets(connected, cap);
    if plan.sweep.is_empty() && plan.neighbours_only.is_empty() {
        return Err(TargetError::NoConnectedNetworks);
    }
    let mut targets = if plan.sweep.is_empty() {
        Targets {
            nets: Vec::new(),
            addresses: Vec::new(),
            neighbours_only: Vec::new(),
        }
    } else {
        expand_nets(plan.sweep, cap)?
    };
    targets.neighbours_only = plan.neighbours_only;
    Ok((targets, plan.warnings))
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

    fn connected(net: &str, local: &str, interface: u32) -> ConnectedNetwork {
        ConnectedNetwork {
            net: net.parse().unwrap(),
            local: ip(local),
            interface,
        }
    }

    #[test]
    fn a_lan_an_ipv6_prefix_and_a_container_bridge_fit_the_cap_together() {
        // eth0 with a /24 and a /64, docker0 with a /16, as on many hosts.
        let hosts = [
            connected("192.168.1.0/24", "192.168.1.2", 2),
            connected("2001:db8:1::/64", "2001:db8:1::2", 2),
            connected("172.17.0.0/16", "172.17.0.1", 3),
        ];
        let plan = default_targets(&hosts, DEFAULT_MAX_ADDRESSES);
        let sweep: Vec<String> = plan.sweep.iter().map(ToString::to_string).collect();
        // 4096 - 254 = 3842 left: a /21 (2046) fits, a /20 (4094) does not.
        assert_eq!(sweep, ["192.168.1.0/24", "172.17.0.0/21"]);
        assert_eq!(plan.neighbours_only, vec!["2001:db8:1::/64".parse::<IpNet>().unwrap()]);
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
        assert!(
            plan.warnings[0].contains("172.17.0.0/16") && plan.warnings[0].contains("172.17.0.0/21"),
            "{:?}",
            plan.warnings
        );
        assert!(
            plan.warnings[1].contains("2001:db8:1::/64") && plan.warnings[1].contains("neighbour table"),
            "{:?}",
            plan.warnings
        );

        let (t, warnings) = expand_connected(&hosts, DEFAULT_MAX_ADDRESSES).unwrap();
        assert_eq!(t.addresses.len(), 254 + 2046);
        assert_eq!(warnings, plan.warnings);
        assert_eq!(t.neighbours_only, plan.neighbours_only);
        assert!(covers(&t.nets, &ip("172.17.7.254")) && !covers(&t.nets, &ip("172.17.8.1")));
    }

    #[test]
    fn networks_after_the_cap_is_used_up_are_skipped_by_name() {
        let hosts = [
            connected("10.0.0.0/16", "10.0.77.9", 2),
            connected("10.1.0.0/16", "10.1.0.9", 3),
            connected("192.168.1.0/24", "192.168.1.2", 4),
            connected("192.168.1.0/24", "192.168.1.3", 4),
            connected("fd00::/120", "fd00::1", 4),
        ];
        let plan = default_targets(&hosts, 1024);
        let sweep: Vec<String> = plan.sweep.iter().map(ToString::to_string).collect();
        // 1024 - 254 = 770: a /23 (510); 260 left: a /24 (254); 6 left.
        assert_eq!(sweep, ["192.168.1.0/24", "10.0.76.0/23", "10.1.0.0/24"]);
        assert!(plan.neighbours_only.iter().any(|n| n.to_string() == "fd00::/120"));
        let (t, _) = expand_connected(&hosts, 1024).unwrap();
        assert!(t.addresses.len() <= 1024);

        let plan = default_targets(&hosts, 254);
        assert_eq!(plan.sweep.len(), 1, "{plan:?}");
        assert!(
            plan.warnings.iter().any(|w| w.contains("10.1.0.0/16 skipped")),
            "{:?}",
            plan.warnings
        );
        assert_eq!(
            expand_connected(&hosts, 254).unwrap().0.addresses.len(),
            254,
            "the cap holds"
        );
        // A small IPv6 network that fits what is left is swept.
        let plan = default_targets(&hosts[4..], 1024);
        assert_eq!(plan.sweep[0].to_string(), "fd00::/120");
        assert!(plan.warnings.is_empty());
        assert_eq!(expand_connected(&[], 1024), Err(TargetError::NoConnectedNetworks));
    }

    #[test]
    fn explicit_targets_over_the_cap_name_it_and_how_to_raise_it() {
        let err = expand(&["192.168.1.0/24", "172.17.0.0/16"], DEFAULT_MAX_ADDRESSES).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("65788 addresses") && text.contains("cap of 4096"),
            "{text}"
        );
        assert!(
            text.contains("discovery_max_addresses") && text.contains("--max-addresses"),
            "{text}"
        );
    }
}
