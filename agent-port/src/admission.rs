//! How many connections a source may hold before it has proven anything.
//!
//! Two phases are counted per [`Source`]:
//!
//! * **handshakes**: from accept until the TLS handshake ends. A source over
//!   its limit has the new TCP connection closed at once, so idle sockets from
//!   one address cannot take every handshake slot (the listener's semaphore
//!   bounds the total).
//! * **anonymous connections** (no client certificate): from the end of the
//!   handshake until the connection closes, per source and in total. Over
//!   either limit, the new connection is closed right after its handshake;
//!   whether a client is anonymous is only known then.
//!
//! Connections with a verified client certificate are not counted once their
//! handshake is done, so agents keep connecting while anonymous clients are
//! refused. Each admitted connection holds a [`Slot`] that gives its place back
//! when dropped. A source has an entry only while it holds a slot, so the map
//! is bounded by the slots themselves.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::source::Source;

/// The bounds [`Admission`] enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// TLS handshakes in progress from one source.
    pub(crate) handshakes_per_source: u32,
    /// Open connections without a client certificate from one source.
    pub(crate) anonymous_per_source: u32,
    /// Open connections without a client certificate in total.
    pub(crate) anonymous_total: u32,
}

/// The agent port's bounds. A site behind one NAT address may reconnect dozens
/// of agents at once after a collector restart; handshakes take milliseconds,
/// so 32 at a time from one address is plenty. Anonymous connections only
/// enroll, which one agent does once in its life.
pub(crate) const LIMITS: Limits = Limits {
    handshakes_per_source: 32,
    anonymous_per_source: 8,
    anonymous_total: 256,
};

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The source already has `handshakes_per_source` handshakes in progress.
    HandshakesPerSource,
    /// The source already holds `anonymous_per_source` anonymous connections.
    AnonymousPerSource,
    /// `anonymous_total` anonymous connections are open.
    AnonymousTotal,
}

#[derive(Debug, Default)]
struct Counts {
    handshakes: u32,
    anonymous: u32,
}

#[derive(Debug, Default)]
struct State {
    by_source: HashMap<Source, Counts>,
    anonymous_total: u32,
}

/// Per-source and total connection counts.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshake,
    Anonymous,
}

/// A place held by one connection in one phase; given back on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    source: Source,
    phase: Phase,
}

impl Admission {
    /// Counts against `limits`.
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Counts are updated whole under the lock; a panic elsewhere cannot
        // leave them half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handshake slot for a connection just accepted from `source`.
    pub(crate) fn handshake(self: &Arc<Self>, source: Source) -> Result<Slot, Refusal> {
        let mut state = self.lock();
        let counts = state.by_source.entry(source).or_default();
        if counts.handshakes >= self.limits.handshakes_per_source {
            drop_if_unused(&mut state, source);
            return Err(Refusal::HandshakesPerSource);
        }
        counts.handshakes += 1;
        Ok(self.slot(source, Phase::Handshake))
    }

    /// A slot for a connection from `source` that finished its handshake
    /// without a client certificate.
    pub(crate) fn anonymous(self: &Arc<Self>, source: Source) -> Result<Slot, Refusal> {
        let mut state = self.lock();
        let total_full = state.anonymous_total >= self.limits.anonymous_total;
        let counts = state.by_source.entry(source).or_default();
        let refusal = if counts.anonymous >= self.limits.anonymous_per_source {
            Refusal::AnonymousPerSource
        } else if total_full {
            Refusal::AnonymousTotal
        } else {
            counts.anonymous += 1;
            state.anonymous_total += 1;
            return Ok(self.slot(source, Phase::Anonymous));
        };
        drop_if_unused(&mut state, source);
        Err(refusal)
    }

    fn slot(self: &Arc<Self>, source: Source, phase: Phase) -> Slot {
        Slot {
            admission: self.clone(),
            source,
            phase,
        }
    }

    /// Sources currently holding a slot (for tests and diagnostics).
    #[cfg(test)]
    fn sources(&self) -> usize {
        self.lock().by_source.len()
    }
}

fn drop_if_unused(state: &mut State, source: Source) {
    if state
        .by_source
        .get(&source)
        .is_some_and(|c| c.handshakes == 0 && c.anonymous == 0)
    {
        state.by_source.remove(&source);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        if let Some(counts) = state.by_source.get_mut(&self.source) {
            match self.phase {
                Phase::Handshake => counts.handshakes = counts.handshakes.saturating_sub(1),
                Phase::Anonymous => counts.anonymous = counts.anonymous.saturating_sub(1),
            }
        }
        if self.phase == Phase::Anonymous {
            state.anonymous_total = state.anonymous_total.saturating_sub(1);
        }
        drop_if_unused(&mut state, self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Source {
        Source::of(s.parse().expect("test address"))
    }

    const SMALL: Limits = Limits {
        handshakes_per_source: 2,
        anonymous_per_source: 2,
        anonymous_total: 3,
    };

    #[test]
    fn handshakes_are_bounded_per_source_and_given_back() {
        let a = Admission::new(SMALL);
        let (x, y) = (src("192.0.2.1"), src("192.0.2.2"));
        let h1 = a.handshake(x).expect("first");
        let _h2 = a.handshake(x).expect("second");
        assert_eq!(a.handshake(x).err(), Some(Refusal::HandshakesPerSource));
        // Another source is unaffected.
        let _hy = a.handshake(y).expect("other source");
        drop(h1);
        let _h3 = a.handshake(x).expect("a slot was given back");
    }

    #[test]
    fn anonymous_connections_are_bounded_per_source_and_in_total() {
        let a = Admission::new(SMALL);
        let (x, y, z) = (src("192.0.2.1"), src("192.0.2.2"), src("2001:db8::1"));
        let x1 = a.anonymous(x).expect("x1");
        let _x2 = a.anonymous(x).expect("x2");
        assert_eq!(a.anonymous(x).err(), Some(Refusal::AnonymousPerSource));
        let _y1 = a.anonymous(y).expect("y1");
        // Three open in total: a fresh source is refused too.
        assert_eq!(a.anonymous(z).err(), Some(Refusal::AnonymousTotal));
        // Anonymous connections do not use handshake slots.
        let _hz = a.handshake(z).expect("handshake still allowed");
        drop(x1);
        let _z1 = a.anonymous(z).expect("room again");
    }

    #[test]
    fn sources_are_forgotten_when_their_last_slot_goes() {
        let a = Admission::new(SMALL);
        let slots: Vec<Slot> = (1..=50)
            .map(|i| a.handshake(src(&format!("192.0.2.{i}"))).expect("slot"))
            .collect();
        assert_eq!(a.sources(), 50);
        let full: Vec<Slot> = (1..=3)
            .map(|i| a.anonymous(src(&format!("192.0.2.{i}"))).expect("anonymous"))
            .collect();
        // Refusals do not leave entries behind.
        assert_eq!(a.anonymous(src("198.51.100.1")).err(), Some(Refusal::AnonymousTotal));
        assert_eq!(a.sources(), 50);
        drop(slots);
        assert_eq!(a.sources(), 3);
        drop(full);
        assert_eq!(a.sources(), 0);
    }
}
