//! The console port's bounds: how long each phase of a connection may take and
//! how many connections there may be.
//!
//! Every number here is in the Limits table of `docs/architecture.md`.
use std::time::Duration;

/// What the console port enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A TLS handshake must finish within this time.
    pub handshake: Duration,
    /// HTTP/1.1: a request's headers must arrive within this time.
    pub header_read: Duration,
    /// A connection with no request in progress (none yet, or the last one
    /// answered) is closed after this time, whatever the protocol: it bounds
    /// unfinished HTTP/1.1 headers, an HTTP/2 connection that never completes a
    /// HEADERS frame, and keep-alive.
    pub idle: Duration,
    /// No connection lives longer, even with a request in progress (an event
    /// stream; browsers reconnect those by themselves).
    pub max_lifetime: Duration,
    /// HTTP/2: a PING after this long without a frame from the client...
    pub h2_keepalive_interval: Duration,
    /// ...must be answered within this time, or the connection is closed.
    pub h2_keepalive_timeout: Duration,
    /// HTTP/2 streams open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Largest header block accepted (HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`;
    /// for HTTP/1.1 the read buffer, which holds the head, is this size too).
    pub max_header_bytes: u32,
    /// HTTP/1.1: headers in one request.
    pub h1_max_headers: usize,
    /// HTTP/2 streams a client may open and reset before the server has seen
    /// them (the "rapid reset" attack) before the connection is closed.
    pub max_pending_reset_streams: usize,
    /// Open connections from one source (an IPv4 address or an IPv6 /64). A
    /// trusted proxy is not bound by it: every client behind it shares its address.
    pub per_source: u32,
    /// Open connections in total; beyond it, accepting waits.
    pub total: usize,
}

/// Browsers open about six HTTP/1.1 connections to a site (one for HTTP/2);
/// an office behind one NAT address has a few dozen people at most.
const PER_SOURCE: u32 = 64;
/// The console is for people; ten thousand open connections is far beyond
/// any real use and costs at most that many descriptors.
const MAX_TOTAL: usize = 10_000;
/// The share of the process's descriptors the console may use: the agent
/// port, the database and the logs keep the rest.
const SHARE_OF_OPEN_FILES: u64 = 4;
/// Without a known descriptor limit, assume the common soft default.
const ASSUMED_OPEN_FILES: u64 = 1024;
/// The total never falls below this, whatever the descriptor limit.
const MIN_TOTAL: usize = 64;

impl Limits {
    /// The console's bounds in a process allowed `open_files` descriptors.
    pub fn for_open_files(open_files: Option<u64>) -> Self {
        let share = open_files.unwrap_or(ASSUMED_OPEN_FILES) / SHARE_OF_OPEN_FILES;
        let total = usize::try_from(share).unwrap_or(MAX_TOTAL).clamp(MIN_TOTAL, MAX_TOTAL);
        Self {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(20),
            max_lifetime: Duration::from_secs(24 * 3600),
            h2_keepalive_interval: Duration::from_secs(20),
            h2_keepalive_timeout: Duration::from_secs(10),
            max_concurrent_streams: 100,
            max_header_bytes: 16 * 1024,
            h1_max_headers: 100,
            max_pending_reset_streams: 20,
            per_source: PER_SOURCE,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_is_a_share_of_the_descriptors_within_bounds() {
        assert_eq!(Limits::for_open_files(Some(4096)).total, 1024);
        assert_eq!(Limits::for_open_files(Some(1 << 20)).total, MAX_TOTAL);
        assert_eq!(Limits::for_open_files(Some(100)).total, MIN_TOTAL);
        assert_eq!(Limits::for_open_files(None).total, 256);
    }
}
