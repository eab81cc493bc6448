//! Logging refusals once per source, not once per attempt.
//!
//! A flood is thousands of refused connections or calls a minute; a warning
//! for each would bury everything else in the log and cost more than the
//! refusal itself. So the first [`Event`] of each kind from a [`Source`] is
//! logged as a warning with its details, later ones are only counted, and
//! [`FloodLog::summarize`] (called every few seconds) logs one line per source
//! with the counts once a [`SUMMARY_EVERY`] window has passed. A source quiet
//! for [`FORGET_AFTER`] is forgotten, so a new flood from it warns again.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] sources are tracked; events from
//! further sources share one entry, logged as "other sources".
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::source::Source;

/// How often a source's counts are logged while it keeps going.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// A source with no event for this long is forgotten.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(300);
/// Sources tracked one by one.
pub(crate) const MAX_SOURCES: usize = 4096;

/// Why a TLS handshake failed, coarsely: the first failure of each kind from a
/// source is logged in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// The client certificate belongs to a revoked agent.
    Revoked,
    /// The client certificate expired (or is not yet valid).
    Expired,
    /// Any other certificate problem: another CA, a bad signature, wrong usage.
    Untrusted,
    /// Any other TLS error: not TLS at all, an alert from the client, a version mismatch.
    Protocol,
    /// The client closed or reset the connection before the handshake ended.
    Aborted,
}

impl HandshakeFailure {
    /// Classifies the error a tokio-rustls accept returned.
    pub(crate) fn of(error: &std::io::Error) -> Self {
        use rustls::CertificateError as C;
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
            return Self::Aborted;
        };
        match tls {
            rustls::Error::InvalidCertificate(C::Revoked) => Self::Revoked,
            rustls::Error::InvalidCertificate(
                C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
            ) => Self::Expired,
            rustls::Error::InvalidCertificate(_) => Self::Untrusted,
            _ => Self::Protocol,
        }
    }
}

/// Something the agent port refused or cut, attributed to a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Closed at accept: the source has too many handshakes in progress.
    TooManyHandshakes,
    /// The TLS handshake did not finish in time.
    HandshakeTimedOut,
    /// The TLS handshake failed.
    HandshakeRefused(HandshakeFailure),
    /// Closed after the handshake: the source holds too many anonymous connections.
    TooManyAnonymous,
    /// Closed after the handshake: too many anonymous connections in total.
    AnonymousFull,
    /// An `Enroll` call over the source's rate limit.
    EnrollRateLimited,
}

/// Number of distinct event kinds.
const KINDS: usize = 10;
/// Names of the kinds in summaries, by [`Event::index`].
const NAMES: [&str; KINDS] = [
    "too_many_handshakes",
    "handshake_timed_out",
    "revoked_certificate",
    "expired_certificate",
    "untrusted_certificate",
    "tls_error",
    "closed_during_handshake",
    "too_many_anonymous",
    "anonymous_total_full",
    "enroll_rate_limited",
];

impl Event {
    fn index(self) -> usize {
        match self {
            Self::TooManyHandshakes => 0,
            Self::HandshakeTimedOut => 1,
            Self::HandshakeRefused(HandshakeFailure::Revoked) => 2,
            Self::HandshakeRefused(HandshakeFailure::Expired) => 3,
            Self::HandshakeRefused(HandshakeFailure::Untrusted) => 4,
            Self::HandshakeRefused(HandshakeFailure::Protocol) => 5,
            Self::HandshakeRefused(HandshakeFailure::Aborted) => 6,
            Self::TooManyAnonymous => 7,
            Self::AnonymousFull => 8,
            Self::EnrollRateLimited => 9,
        }
    }

    /// The first warning's message.
    fn message(self) -> &'static str {
        match self {
            Self::TooManyHandshakes => {
                "agent port: too many TLS handshakes in progress from one source; closing its new connections"
            }
            Self::HandshakeTimedOut => "agent TLS handshake timed out",
            Self::HandshakeRefused(_) => "agent TLS handshake refused",
            Self::TooManyAnonymous => {
                "agent port: too many connections without a client certificate from one source; closing its new ones"
            }
            Self::AnonymousFull => {
                "agent port: too many connections without a client certificate in total; closing new ones"
            }
            Self::EnrollRateLimited => "agent port: Enroll calls from one source over its rate limit; refusing them",
        }
    }
}

/// Counts of one source's events since its last summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// `None`: the sources beyond [`MAX_SOURCES`].
    pub(crate) source: Option<Source>,
    /// By kind, see [`NAMES`].
    counts: [u64; KINDS],
}

impl Summary {
    /// All events counted.
    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Events of `event`'s kind counted.
    #[cfg(test)]
    fn count(&self, event: Event) -> u64 {
        self.counts[event.index()]
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, n) in NAMES.iter().zip(self.counts) {
            if n > 0 {
                write!(f, "{}{name}={n}", if first { "" } else { " " })?;
                first = false;
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct SourceLog {
    /// Kinds already warned about, by bit [`Event::index`].
    warned: u16,
    /// Events after the first of their kind, since `window_start`.
    counts: [u64; KINDS],
    window_start: Instant,
    last_event: Instant,
}

impl SourceLog {
    fn new(now: Instant) -> Self {
        Self {
            warned: 0,
            counts: [0; KINDS],
            window_start: now,
            last_event: now,
        }
    }

    /// Whether this is the first event of its kind.
    fn record(&mut self, now: Instant, event: Event) -> bool {
        self.last_event = now;
        let bit = 1u16 << event.index();
        if self.warned & bit == 0 {
            self.warned |= bit;
            return true;
        }
        self.counts[event.index()] += 1;
        false
    }

    /// The counts when a window has passed and something was counted (then
    /// starts a new window); whether to forget this source.
    fn summarize(&mut self, now: Instant, source: Option<Source>) -> (Option<Summary>, bool) {
        if now.saturating_duration_since(self.window_start) < SUMMARY_EVERY {
            return (None, false);
        }
        let counted = self.counts.iter().any(|&n| n > 0);
        let summary = counted.then(|| Summary {
            source,
            counts: std::mem::replace(&mut self.counts, [0; KINDS]),
        });
        self.window_start = now;
        let forget = !counted && now.saturating_duration_since(self.last_event) >= FORGET_AFTER;
        (summary, forget)
    }
}

#[derive(Debug, Default)]
struct State {
    sources: HashMap<Source, SourceLog>,
    others: Option<SourceLog>,
}

/// Per-source refusal log; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct FloodLog {
    state: Mutex<State>,
}

impl FloodLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Entries are replaced whole; a panic elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `event` from `remote`; logs a warning (with `error`, if any)
    /// when it is the first of its kind from that source. Returns whether it logged.
    pub(crate) fn record(&self, remote: SocketAddr, event: Event, error: Option<&dyn fmt::Display>) -> bool {
        self.record_at(Instant::now(), remote, event, error)
    }

    pub(crate) fn record_at(
        &self,
        now: Instant,
        remote: SocketAddr,
        event: Event,
        error: Option<&dyn fmt::Display>,
    ) -> bool {
        let source = Source::of(remote.ip());
        let first = {
            let mut state = self.lock();
            let state = &mut *state;
            if let Some(log) = state.sources.get_mut(&source) {
                log.record(now, event)
            } else if state.sources.len() < MAX_SOURCES {
                state
                    .sources
                    .entry(source)
                    .or_insert_with(|| SourceLog::new(now))
                    .record(now, event)
            } else {
                state
                    .others
                    .get_or_insert_with(|| SourceLog::new(now))
                    .record(now, event)
            }
        };
        if first {
            let message = event.message();
            match error {
                Some(error) => tracing::warn!(
                    %source,
                    %remote,
                    %error,
                    "{message} (further ones from {source} are counted and summarized once a minute)"
                ),
                None => tracing::warn!(
                    %source,
                    %remote,
                    "{message} (further ones from {source} are counted and summarized once a minute)"
                ),
            }
        }
        first
    }

    /// Logs (and returns) the counts of every source whose summary window has
    /// passed with something counted, and forgets sources gone quiet.
    pub(crate) fn summarize(&self, now: Instant) -> Vec<Summary> {
        let mut out = Vec::new();
        {
            let mut state = self.lock();
            state.sources.retain(|source, log| {
                let (summary, forget) = log.summarize(now, Some(*source));
                out.extend(summary);
                !forget
            });
            if let Some(log) = state.others.as_mut() {
                let (summary, forget) = log.summarize(now, None);
                out.extend(summary);
                if forget {
                    state.others = None;
                }
            }
        }
        for s in &out {
            let source = s.source.map_or_else(|| "other sources".to_owned(), |s| s.to_string());
            tracing::warn!(
                %source,
                total = s.total(),
                counts = %s,
                "agent port: {} more refused or cut from {source} in the last minute or so",
                s.total()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn warns_once_per_source_and_kind_then_summarizes() {
        let log = FloodLog::default();
        let t0 = Instant::now();
        let a = addr("192.0.2.1:1000");
        assert!(log.record_at(t0, a, Event::TooManyHandshakes, None));
        for port in 1..=500 {
            let from = addr(&format!("192.0.2.1:{port}"));
            assert!(!log.record_at(t0, from, Event::TooManyHandshakes, None));
        }
        // A different kind from the same source warns once too.
        assert!(log.record_at(t0, a, Event::EnrollRateLimited, None));
        assert!(!log.record_at(t0, a, Event::EnrollRateLimited, None));
        // Another source warns on its own.
        assert!(log.record_at(t0, addr("192.0.2.2:1"), Event::TooManyHandshakes, None));

        // Nothing before a window has passed.
        assert!(log.summarize(t0 + Duration::from_secs(30)).is_empty());
        let s = log.summarize(t0 + SUMMARY_EVERY);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].source, Some(Source::of(a.ip())));
        assert_eq!(s[0].count(Event::TooManyHandshakes), 500);
        assert_eq!(s[0].count(Event::EnrollRateLimited), 1);
        assert_eq!(s[0].to_string(), "too_many_handshakes=500 enroll_rate_limited=1");

        // The flood goes on: still no new warning, a new summary a window later.
        let t1 = t0 + SUMMARY_EVERY + Duration::from_secs(1);
        assert!(!log.record_at(t1, a, Event::TooManyHandshakes, None));
        assert!(log.summarize(t1).is_empty());
        let s = log.summarize(t0 + 2 * SUMMARY_EVERY);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].total(), 1);
    }

    #[test]
    fn quiet_sources_are_forgotten_and_warn_again() {
        let log = FloodLog::default();
        let t0 = Instant::now();
        let a = addr("[2001:db8::1]:5");
        assert!(log.record_at(t0, a, Event::HandshakeTimedOut, None));
        // Same /64: same source.
        assert!(!log.record_at(t0, addr("[2001:db8::2]:5"), Event::HandshakeTimedOut, None));
        let mut t = t0;
        while t < t0 + FORGET_AFTER + SUMMARY_EVERY {
            t += Duration::from_secs(10);
            log.summarize(t);
        }
        assert!(log.lock().sources.is_empty());
        assert!(
            log.record_at(t, a, Event::HandshakeTimedOut, None),
            "a new flood warns again"
        );
    }

    #[test]
    fn sources_beyond_the_bound_share_one_entry() {
        let log = FloodLog::default();
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            let ip = std::net::Ipv4Addr::from_bits(0x0a00_0000 + i);
            log.record_at(t0, SocketAddr::from((ip, 1)), Event::AnonymousFull, None);
        }
        assert!(log.record_at(t0, addr("192.0.2.1:1"), Event::AnonymousFull, None));
        assert!(!log.record_at(t0, addr("192.0.2.2:1"), Event::AnonymousFull, None));
        assert_eq!(log.lock().sources.len(), MAX_SOURCES);
        let s = log.summarize(t0 + SUMMARY_EVERY);
        assert_eq!(
            s.iter().filter(|s| s.source.is_none()).map(Summary::total).sum::<u64>(),
            1
        );
    }

    #[test]
    fn handshake_errors_are_classified() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let cert = |c: rustls::CertificateError| io(rustls::Error::InvalidCertificate(c));
        assert_eq!(
            HandshakeFailure::of(&cert(rustls::CertificateError::Revoked)),
            HandshakeFailure::Revoked
        );
        assert_eq!(
            HandshakeFailure::of(&cert(rustls::CertificateError::Expired)),
            HandshakeFailure::Expired
        );
        assert_eq!(
            HandshakeFailure::of(&cert(rustls::CertificateError::UnknownIssuer)),
            HandshakeFailure::Untrusted
        );
        assert_eq!(
            HandshakeFailure::of(&io(rustls::Error::DecryptError)),
            HandshakeFailure::Protocol
        );
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(HandshakeFailure::of(&eof), HandshakeFailure::Aborted);
    }
}
