//! Open console connections per source.
//!
//! Each admitted connection holds a [`Slot`] until it closes. A source over
//! [`Limits::per_source`](super::limits::Limits::per_source) has its new
//! connection closed at once, before any TLS work. Trusted proxies are
//! exempt (all their clients share the proxy's address); the total bound,
//! a semaphore in the accept loop, still applies to them. As on the agent
//! port ([`outpost_agent_port::source`]), IPv6 counts by /64, and a source has an
//! entry only while it holds a slot, so the map is bounded by the slots.
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use outpost_agent_port::source::Source;

/// Per-source connection counts.
#[derive(Debug)]
pub(crate) struct Admission {
    per_source: u32,
    exempt: HashSet<IpAddr>,
    counts: Mutex<HashMap<Source, u32>>,
}

/// One open connection's place; given back on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    /// `None` for an exempt peer, which is not counted.
    source: Option<Source>,
}

impl Admission {
    /// At most `per_source` connections from one source, except from `exempt` addresses.
    pub(crate) fn new(per_source: u32, exempt: &[IpAddr]) -> Arc<Self> {
        Arc::new(Self {
            per_source,
            exempt: exempt.iter().map(|ip| ip.to_canonical()).collect(),
            counts: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Source, u32>> {
        // Counts change whole under the lock; a panic elsewhere cannot leave
        // them half-written.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection just accepted from `peer`, or `None` when its
    /// source holds its limit already.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.exempt.contains(&peer.to_canonical()) {
            return Some(Slot {
                admission: self.clone(),
                source: None,
            });
        }
        let source = Source::of(peer);
        let mut counts = self.lock();
        let n = counts.entry(source).or_default();
        if *n >= self.per_source {
            return None;
        }
        *n += 1;
        Some(Slot {
            admission: self.clone(),
            source: Some(source),
        })
    }

    #[cfg(test)]
    fn sources(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(source) = self.source else { return };
        let mut counts = self.admission.lock();
        if let Some(n) = counts.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn bounded_per_source_given_back_and_forgotten() {
        let a = Admission::new(2, &[]);
        let x1 = a.admit(ip("192.0.2.1")).expect("first");
        let _x2 = a.admit(ip("192.0.2.1")).expect("second");
        assert!(a.admit(ip("192.0.2.1")).is_none());
        // Another address, and an address in another /64, are other sources.
        let _y = a.admit(ip("192.0.2.2")).expect("other source");
        let _v6 = a.admit(ip("2001:db8:0:1::1")).expect("v6");
        let _v6b = a.admit(ip("2001:db8:0:1::2")).expect("same /64");
        assert!(a.admit(ip("2001:db8:0:1::3")).is_none(), "the /64 is one source");
        // A dual-stack listener's mapped address is the IPv4 source.
        assert!(a.admit(ip("::ffff:192.0.2.1")).is_none());
        drop(x1);
        let _x3 = a.admit(ip("192.0.2.1")).expect("a slot was given back");
        assert_eq!(a.sources(), 3);
    }

    #[test]
    fn trusted_proxies_are_not_counted() {
        let a = Admission::new(1, &[ip("127.0.0.1")]);
        let held: Vec<Slot> = (0..10).map(|_| a.admit(ip("127.0.0.1")).expect("exempt")).collect();
        assert_eq!(a.sources(), 0);
        let _other = a.admit(ip("127.0.0.2")).expect("first");
        assert!(a.admit(ip("127.0.0.2")).is_none());
        drop(held);
    }
}
