//! Receiving MNDP announcements on a UDP socket.
//!
//! The socket is bound with `SO_REUSEADDR`, so the listener shares port 5678
//! with other MNDP tools on the same host (Winbox, MAC-Telnet, a second
//! agent), and with `SO_BROADCAST`, so it can send the refresh request to a
//! broadcast address. Malformed packets are counted and skipped; at most one
//! warning about them is logged per [`WARN_EVERY`], so a noisy sender cannot
//! flood the log.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::codec::{self, Announcement, MndpError};

/// The MNDP port.
pub const PORT: u16 = 5678;
/// Where the listener binds unless told otherwise: every IPv4 interface.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT));
/// Least time between two warnings about malformed packets.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// Largest datagram read whole. Announcements are a few hundred bytes; a
/// longer datagram is cut by the kernel and then fails to parse as malformed.
const MAX_PACKET: usize = 4096;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Creating, configuring or binding the socket failed.
    #[error("cannot listen for MNDP on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
}

/// Rate limit state for the malformed-packet warning.
#[derive(Debug, Default)]
struct WarnState {
    last: Option<Instant>,
    /// Malformed packets not warned about since the last warning.
    suppressed: u64,
}

/// A UDP socket receiving MNDP announcements.
///
/// Methods take `&self`, so one task can receive while another sends
/// refresh requests through an `Arc`.
#[derive(Debug)]
pub struct MndpListener {
    socket: UdpSocket,
    malformed: AtomicU64,
    warn: Mutex<WarnState>,
}

impl MndpListener {
    /// Binds to `addr` (usually [`DEFAULT_BIND`]). Must run inside a Tokio
    /// runtime.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ListenError> {
        let socket = open(addr).map_err(|source| ListenError::Bind { addr, source })?;
        Ok(Self {
            socket,
            malformed: AtomicU64::new(0),
            warn: Mutex::new(WarnState::default()),
        })
    }

    /// The address actually bound (with the port picked when asked for 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for the next valid announcement and returns it with the address
    /// it came from. Malformed packets are counted ([`Self::malformed`]) and
    /// skipped; refresh requests (including our own, looped back by a
    /// broadcast) are skipped silently.
    pub async fn recv(&self) -> io::Result<(SocketAddr, Announcement)> {
        let mut buf = [0u8; MAX_PACKET];
        loop {
            let (len, source) = match self.socket.recv_from(&mut buf).await {
                Ok(got) => got,
                // Windows reports an ICMP port-unreachable for an earlier send
                // as a reset on the next receive; the socket is still fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            match codec::parse(&buf[..len]) {
                Ok(a) => return Ok((source, a)),
                Err(MndpError::RefreshRequest) => {}
                Err(error) => self.malformed_packet(source, &error),
            }
        }
    }

    /// Asks the devices reachable at `to` to announce themselves now. In
    /// production `to` is a broadcast address (`255.255.255.255:5678` or a
    /// subnet's); devices answer to port 5678, so a listener bound elsewhere
    /// sees the answers only through their periodic announcements.
    pub async fn send_refresh(&self, to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(&codec::REFRESH_REQUEST, to).await.map(|_| ())
    }

    /// Malformed packets received so far.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    fn malformed_packet(&self, source: SocketAddr, error: &MndpError) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut w = self.warn.lock().unwrap_or_else(|p| p.into_inner());
        if w.last.is_some_and(|last| now.duration_since(last) < WARN_EVERY) {
            w.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut w.suppressed);
        w.last = Some(now);
        drop(w);
        tracing::warn!(%source, %error, suppressed, "skipped a malformed MNDP packet");
    }
}

fn open(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mndp::codec::encode;

    const LOOPBACK: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

    async fn within<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("within 10 s")
    }

    #[tokio::test]
    async fn yields_announcements_with_their_source_and_skips_the_rest() {
        let listener = MndpListener::bind(LOOPBACK).await.unwrap();
        let to = listener.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let from = sender.local_addr().unwrap();

        let a = Announcement {
            seq: 9,
            identity: Some("core-1".into()),
            mac: Some([0x4C, 0x5E, 0x0C, 1, 2, 3]),
            ipv4: Some(Ipv4Addr::LOCALHOST),
            ..Announcement::default()
        };
        sender.send_to(&[0, 0, 0, 1, 0, 1, 0, 2, 1], to).await.unwrap(); // overrun
        sender.send_to(&[0, 0, 0, 0], to).await.unwrap(); // refresh request
        sender.send_to(&[1, 2], to).await.unwrap(); // too short
        sender.send_to(&encode(&a), to).await.unwrap();

        let (source, got) = within(listener.recv()).await.unwrap();
        assert_eq!(source, from);
        assert_eq!(got, a);
        assert_eq!(listener.malformed(), 2, "the refresh request is not malformed");
    }

    #[tokio::test]
    async fn sends_refresh_requests() {
        let listener = MndpListener::bind(LOOPBACK).await.unwrap();
        let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        listener.send_refresh(device.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = within(device.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..len], &[0, 0, 0, 0]);
        assert_eq!(from, listener.local_addr().unwrap());
    }

    #[tokio::test]
    async fn shares_its_port_with_another_listener() {
        let first = MndpListener::bind(LOOPBACK).await.unwrap();
        let addr = first.local_addr().unwrap();
        let second = MndpListener::bind(addr).await.unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        // A socket without SO_REUSEADDR keeps the port to itself.
        let plain = std::net::UdpSocket::bind(LOOPBACK).unwrap();
        let addr = plain.local_addr().unwrap();
        let e = MndpListener::bind(addr).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot listen for MNDP on {addr}: ")),
            "{e}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn warnings_are_rate_limited_but_every_packet_counts() {
        let listener = MndpListener::bind(LOOPBACK).await.unwrap();
        let source: SocketAddr = "127.0.0.9:5678".parse().unwrap();
        let error = MndpError::TooShort { len: 1 };
        listener.malformed_packet(source, &error);
        listener.malformed_packet(source, &error);
        listener.malformed_packet(source, &error);
        assert_eq!(listener.warn.lock().unwrap().suppressed, 2);
        tokio::time::advance(WARN_EVERY).await;
        listener.malformed_packet(source, &error);
        assert_eq!(
            listener.warn.lock().unwrap().suppressed,
            0,
            "warned again, with the count"
        );
        assert_eq!(listener.malformed(), 4);
    }
}
