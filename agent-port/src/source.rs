//! Where a connection comes from, as the agent port's per-source limits see it.
//!
//! An IPv4 address is one source. IPv6 is grouped by /64: a subscriber or a
//! site is usually handed a whole /64, so a limit per IPv6 address would be no
//! limit at all. IPv4-mapped IPv6 addresses (a dual-stack listener) count as
//! the IPv4 address they carry.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One source: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    /// The source `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Prefix(prefix) => write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(*prefix) << 64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(s: &str) -> Source {
        Source::of(s.parse().expect("test address"))
    }

    #[test]
    fn ipv6_groups_by_64_and_ipv4_stands_alone() {
        assert_eq!(of("2001:db8:1:2::1"), of("2001:db8:1:2:ffff::9"));
        assert_ne!(of("2001:db8:1:2::1"), of("2001:db8:1:3::1"));
        assert_eq!(of("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_ne!(of("192.0.2.1"), of("192.0.2.2"));
        assert_eq!(of("192.0.2.1").to_string(), "192.0.2.1");
        // A dual-stack listener sees IPv4 clients as mapped addresses.
        assert_eq!(of("::ffff:192.0.2.1"), of("192.0.2.1"));
    }
}
