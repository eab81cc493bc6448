//! Who the client is, when the console sits behind a reverse proxy.
//!
//! The TCP peer is the client unless it is a trusted proxy (`--trusted-proxy`).
//! Then `X-Forwarded-For` names the client, but only partly: each proxy
//! *appends* the address it saw, and everything to the left of what our own
//! proxies appended was written by the client and can be anything. So the
//! header is read right to left, skipping addresses of trusted proxies (a
//! chain of them), and the first other address is the client. A header that
//! is missing, or whose entry at that point is not an address, leaves the
//! proxy's own address: those clients share one rate-limit bucket, which errs
//! on the safe side. A peer that is not trusted has its header ignored.
//!
//! The result reaches handlers as `axum::extract::ConnectInfo<SocketAddr>`
//! (the port is 0 when the address came from the header), so the console's
//! login rate limiting counts per client, not per proxy.
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The `X-Forwarded-For` header.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The peers allowed to name the client in `X-Forwarded-For`.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    ips: HashSet<IpAddr>,
}

impl TrustedProxies {
    /// Trusts exactly `ips`.
    pub fn new(ips: &[IpAddr]) -> Self {
        Self {
            ips: ips.iter().map(|ip| ip.to_canonical()).collect(),
        }
    }

    /// The trusted addresses.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ips.iter().copied()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ips.contains(&ip.to_canonical())
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let hops = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Not an address: nothing further left can be believed.
                return peer;
            };
            if !self.contains(ip) {
                return SocketAddr::new(ip, 0);
            }
        }
        // Only trusted proxies (or no header): the request started at one of them.
        peer
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[v6]:port`,
/// `v4:port`) as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(X_FORWARDED_FOR, v.parse().expect("header value"));
        }
        h
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(&["127.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip")])
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let peer = addr("192.0.2.9:5000");
        assert_eq!(proxies().client(peer, &headers(&["203.0.113.1"])), peer);
        assert_eq!(TrustedProxies::default().client(peer, &headers(&["203.0.113.1"])), peer);
    }

    #[test]
    fn a_trusted_peer_names_the_client_rightmost_first() {
        let peer = addr("127.0.0.1:4000");
        // The client forged the leftmost entry; the proxy appended the real one.
        let h = headers(&["198.51.100.66, 203.0.113.5"]);
        assert_eq!(proxies().client(peer, &h), addr("203.0.113.5:0"));
        // A chain of trusted proxies is skipped.
        let h = headers(&["198.51.100.66, 203.0.113.5, 10.0.0.2"]);
        assert_eq!(proxies().client(peer, &h), addr("203.0.113.5:0"));
        // Several header lines form one list.
        let h = headers(&["198.51.100.66", "203.0.113.7"]);
        assert_eq!(proxies().client(peer, &h), addr("203.0.113.7:0"));
        // Ports and IPv6, as some proxies write them.
        let h = headers(&["203.0.113.8:1234"]);
        assert_eq!(proxies().client(peer, &h), addr("203.0.113.8:0"));
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(proxies().client(peer, &h), addr("[2001:db8::1]:0"));
        let h = headers(&["2001:db8::2"]);
        assert_eq!(proxies().client(peer, &h), addr("[2001:db8::2]:0"));
    }

    #[test]
    fn without_a_usable_entry_the_proxy_is_the_client() {
        let peer = addr("127.0.0.1:4000");
        assert_eq!(proxies().client(peer, &HeaderMap::new()), peer);
        assert_eq!(proxies().client(peer, &headers(&["unknown"])), peer);
        // Garbage to the right of a real address: the address is not believed.
        assert_eq!(proxies().client(peer, &headers(&["203.0.113.5, nonsense"])), peer);
        assert_eq!(proxies().client(peer, &headers(&["10.0.0.2"])), peer);
        assert_eq!(proxies().client(peer, &headers(&[""])), peer);
    }

    #[test]
    fn mapped_addresses_match_their_ipv4_form() {
        let peer = addr("[::ffff:127.0.0.1]:4000");
        assert_eq!(
            proxies().client(peer, &headers(&["203.0.113.5"])),
            addr("203.0.113.5:0")
        );
    }
}
