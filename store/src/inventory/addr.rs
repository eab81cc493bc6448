//! Addresses as discovery uses them: MAC addresses, scan targets (CIDRs or
//! single addresses, IPv4 and IPv6), port lists, and the sort key that makes
//! the text order of addresses their numeric order.
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A MAC address (EUI-48).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    /// Its six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = String;
    /// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, either case.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("MAC address {:?} is not 6 octets like aa:bb:cc:dd:ee:ff", short(s));
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(&parts) {
            if p.len() != 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The sort key of an address: `4` or `6`, then the address as fixed-width
/// hex, so IPv4 sorts before IPv6 and each in numeric order.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("4{:08x}", v4.to_bits()),
        IpAddr::V6(v6) => format!("6{:032x}", v6.to_bits()),
    }
}

/// 4 or 6.
pub fn family(ip: IpAddr) -> i64 {
    if ip.is_ipv4() { 4 } else { 6 }
}

/// A scan target: a network in CIDR form or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    network: IpAddr,
    prefix: u8,
}

impl Target {
    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                a.to_bits() & mask == n.to_bits()
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                a.to_bits() & mask == n.to_bits()
            }
            _ => false,
        }
    }

    /// The network `s` lies in, host bits cleared: how a scan reports what
    /// it covered (an interface's `192.0.2.10/24` covers `192.0.2.0/24`).
    pub fn covering(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("target {:?}: {:?} is not an IP address", short(s), short(addr)))?;
        let canonical = if prefix.is_empty() {
            ip.to_string()
        } else {
            let host: u8 = if ip.is_ipv4() { 32 } else { 128 };
            match prefix.parse::<u8>() {
                Ok(n) if n <= host => format!("{}/{n}", mask(ip, n)),
                _ => return Err(format!("target {:?}: prefix length must be 0 to {host}", short(s))),
            }
        };
        canonical.parse()
    }

    /// How many addresses it covers.
    pub fn size(&self) -> u128 {
        let bits = match self.network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        } - u32::from(self.prefix);
        1u128.checked_shl(bits).unwrap_or(u128::MAX)
    }
}

impl Target {
    /// How many addresses an agent probes for it, counted as the agent's
    /// scan counts them: all of a /31, /32, /127 or /128, the others without
    /// their network address (and, for IPv4, broadcast).
    pub fn probed(&self) -> u128 {
        match self.size() {
            n if n <= 2 => n,
            n if self.network.is_ipv4() => n - 2,
            n => n - 1,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if self.prefix == host {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

impl FromStr for Target {
    type Err = String;
    /// `10.0.0.0/24`, `fd00::/120`, `192.0.2.7`. Host bits must be zero, so
    /// a typo such as `10.0.0.1/8` does not silently scan a /8.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("target {:?}: {:?} is not an IP address", short(s), short(addr)))?;
        let host: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => host,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= host => n,
                _ => return Err(format!("target {:?}: prefix length must be 0 to {host}", short(s))),
            },
        };
        let target = Self { network, prefix };
        let canonical = Self {
            network: mask(network, prefix),
            prefix,
        };
        if canonical != target {
            return Err(format!(
                "target {:?} has host bits set: did you mean {canonical}?",
                short(s)
            ));
        }
        Ok(target)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((v4.to_bits() & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((v6.to_bits() & m).into())
        }
    }
}

/// Parses a comma-separated target list; empty entries are ignored.
pub fn parse_targets(s: &str) -> Result<Vec<Target>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Target::from_str)
        .collect()
}

/// Writes targets as [`parse_targets`] reads them.
pub fn format_targets(targets: &[Target]) -> String {
    targets.iter().map(Target::to_string).collect::<Vec<_>>().join(",")
}

/// A set of TCP ports, kept as sorted, merged ranges (`22,80,8000-8100`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList(Vec<(u16, u16)>);

impl PortList {
    /// A list of these ports (zeros are ignored).
    pub fn from_ports(ports: impl IntoIterator<Item = u16>) -> Self {
        Self::merged(ports.into_iter().filter(|p| *p != 0).map(|p| (p, p)).collect())
    }

    fn merged(mut ranges: Vec<(u16, u16)>) -> Self {
        ranges.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Self(out)
    }

    /// No ports: the agent's default list.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        self.0.iter().map(|(lo, hi)| usize::from(hi - lo) + 1).sum()
    }

    /// Every port, ascending.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }
}

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for PortList {
    type Err = String;
    /// `22,80,443,8000-8100`; empty: the agent's default list.
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |p: &str| match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("port {:?} is not a number from 1 to 65535", short(p.trim()))),
        };
        let mut ranges = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (lo, hi) = match item.split_once('-') {
                Some((lo, hi)) => (port(lo)?, port(hi)?),
                None => (port(item)?, port(item)?),
            };
            if lo > hi {
                return Err(format!("port range {:?} runs backwards", short(item)));
            }
            ranges.push((lo, hi));
        }
        Ok(Self::merged(ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn macs_round_trip_and_refuse_what_is_not_six_octets() {
        let m: MacAddr = "AA-bb-0C-dd-ee-01".parse().expect("mac");
        assert_eq!(m.to_string(), "aa:bb:0c:dd:ee:01");
        assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:gg",
            "aabb.ccdd.eeff",
            "a:bb:cc:dd:ee:ff0",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_parse_contain_and_refuse_host_bits() {
        let t: Target = "10.0.0.0/24".parse().expect("cidr");
        assert!(t.contains(ip("10.0.0.255")) && !t.contains(ip("10.0.1.0")) && !t.contains(ip("fd00::1")));
        assert_eq!(t.size(), 256);
        let one: Target = "192.0.2.7".parse().expect("address");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert_eq!(one.to_string(), "192.0.2.7");
        let v6: Target = "fd00::/120".parse().expect("v6");
        assert!(v6.contains(ip("fd00::ff")) && !v6.contains(ip("fd00::100")));
        assert_eq!(v6.to_string(), "fd00::/120");
        let all: Target = "0.0.0.0/0".parse().expect("everything");
        assert!(all.contains(ip("203.0.113.9")));
        assert!(
            "10.0.0.1/8"
                .parse::<Target>()
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
        assert!("10.0.0.0/33".parse::<Target>().is_err());
        assert!("host.example".parse::<Target>().is_err());
        assert_eq!(
            format_targets(&parse_targets("10.0.0.0/24, fd00::/120,,").expect("list")),
            "10.0.0.0/24,fd00::/120"
        );
    }

    #[test]
    fn address_keys_sort_numerically() {
        let mut v = ["10.0.0.10", "10.0.0.9", "::1", "9.255.255.255", "fd00::2"];
        v.sort_by_key(|a| address_key(ip(a)));
        assert_eq!(v, ["9.255.255.255", "10.0.0.9", "10.0.0.10", "::1", "fd00::2"]);
    }

    #[test]
    fn port_lists_merge_and_round_trip() {
        let p: PortList = "8080, 22,80-81,82, 8000-8100".parse().expect("ports");
        assert_eq!(p.to_string(), "22,80-82,8000-8100");
        assert_eq!(p.len(), 1 + 3 + 101);
        assert_eq!(p.to_string().parse::<PortList>(), Ok(p.clone()));
        assert_eq!(PortList::from_ports([443, 22, 0, 23]).to_string(), "22-23,443");
        assert!("".parse::<PortList>().expect("empty").is_empty());
        for bad in ["0", "65536", "22-", "90-80", "ssh"] {
            assert!(bad.parse::<PortList>().is_err(), "{bad}");
        }
        assert_eq!("1-65535".parse::<PortList>().expect("all").len(), 65_535);
    }
}
