//! TCP connect scan. A connect that completes means open, a refusal closed,
//! silence filtered (after one retry at the longest timeout). Every connect
//! takes a slot from the scan's rate limiter and a permit from its bound on
//! connects in flight (each holds a file descriptor); sockets close with
//! `SO_LINGER 0`, so thousands of probes leave no TIME_WAIT behind.
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::rate::RateLimiter;
use crate::timing::{self, RttEstimate};

/// What a connect found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// The connection was accepted.
    Open,
    /// Refused (RST): the host is there, the port is not.
    Closed,
    /// No answer within the timeout.
    Filtered,
    /// The host or network is unreachable (no ARP answer, no route).
    Unreachable,
}

/// Shared limits of one scan's connects.
#[derive(Debug, Clone)]
pub struct ConnectLimits {
    /// Probes per second.
    pub rate: Arc<RateLimiter>,
    /// Connects in flight.
    pub in_flight: Arc<Semaphore>,
}

/// Connects once to `addr`: the state and how long the answer took.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> (PortState, Duration, Option<TcpStream>) {
    let start = Instant::now();
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot open a socket for a TCP probe");
            return (PortState::Filtered, start.elapsed(), None);
        }
    };
    // No TIME_WAIT: a scan closes thousands of these. (A zero linger resets
    // at once; it never blocks on close.)
    let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(stream)) => (PortState::Open, start.elapsed(), Some(stream)),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => (PortState::Closed, start.elapsed(), None),
        Ok(Err(e))
            if matches!(e.kind(), ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable)
                || e.raw_os_error() == Some(113) =>
        {
            (PortState::Unreachable, start.elapsed(), None)
        }
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TCP probe failed");
            (PortState::Filtered, start.elapsed(), None)
        }
        Err(_) => (PortState::Filtered, timeout, None),
    }
}

/// The ports of one host found open, each with its connected stream for a
/// banner; and whether the host answered at all (open or closed ports).
#[derive(Debug, Default)]
pub struct HostPorts {
    /// Open ports, ascending.
    pub open: Vec<u16>,
    /// Some port answered (open or refused): the host is up.
    pub answered: bool,
    /// Probes sent.
    pub probes: u64,
    /// The host's probe timeout at the end: a measure of how far away it is.
    pub timeout: Duration,
}

/// Scans `ports` of `host` with adaptive timeouts (see [`timing`]); at most
/// `per_host` connects to this host at once.
pub async fn scan_host(host: IpAddr, ports: &[u16], limits: &ConnectLimits, per_host: usize) -> HostPorts {
    let estimate = Arc::new(Mutex::new(RttEstimate::default()));
    let timeout = |e: &Arc<Mutex<RttEstimate>>| e.lock().unwrap_or_else(|p| p.into_inner()).timeout();
    let results: Vec<(u16, PortState, u64)> = futures::stream::iter(ports.iter().copied())
        .map(|port| {
            let estimate = estimate.clone();
            async move {
                let addr = SocketAddr::new(host, port);
                let mut probes = 0;
                let mut state = PortState::Filtered;
                // One retry for silence, at the longest timeout: a lost SYN
                // must not hide an open port.
                for attempt in 0..2 {
                    let wait = if attempt == 0 { timeout(&estimate) } else { timing::MAX };
                    let _permit = limits.in_flight.acquire().await;
                    limits.rate.acquire().await;
                    probes += 1;
                    let (s, took, _stream) = probe(addr, wait).await;
                    state = s;
                    if matches!(s, PortState::Open | PortState::Closed) {
                        estimate.lock().unwrap_or_else(|p| p.into_inner()).observe(took);
                    }
                    if s != PortState::Filtered {
                        break;
                    }
                }
                (port, state, probes)
            }
        })
        .buffer_unordered(per_host.max(1))
        .collect()
        .await;
    let mut out = HostPorts::default();
    for (port, state, probes) in results {
        out.probes += probes;
        match state {
            PortState::Open => {
                out.open.push(port);
                out.answered = true;
            }
            PortState::Closed => out.answered = true,
            PortState::Filtered | PortState::Unreachable => {}
        }
    }
    out.open.sort_unstable();
    out.timeout = timeout(&estimate);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectLimits {
        ConnectLimits {
            rate: Arc::new(RateLimiter::new(10_000)),
            in_flight: Arc::new(Semaphore::new(64)),
        }
    }

    #[tokio::test]
    async fn open_and_closed_ports_on_loopback_are_told_apart() {
        let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        // A port just freed is closed.
        let closed = {
            let c = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            c.local_addr().unwrap().port()
        };
        let host: IpAddr = "127.0.0.1".parse().unwrap();
        let found = scan_host(host, &[pb, closed, pa], &limits(), 8).await;
        let mut want = vec![pa, pb];
        want.sort_unstable();
        assert_eq!(found.open, want);
        assert!(found.answered);
        assert_eq!(found.probes, 3);
    }
}
