//! Accepts TCP connections on the agent port and completes the TLS handshake.
//!
//! Handshakes run concurrently (a slow or silent client cannot hold up others)
//! and time out. A failed handshake — unknown CA, expired or revoked
//! certificate — is logged with the peer address and the connection dropped;
//! gRPC never sees it.
//!
//! Before gRPC sees a connection, [`super::admission`] bounds what one source can
//! hold: handshakes in progress, and connections without a client
//! certificate (which also get a watchdog, [`super::anonymous`]). Refusals are
//! logged once per source and kind ([`super::flood_log`]), not per attempt.
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use outpost_certs::AgentCertificate;
use outpost_store::AgentScope;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::Connected;

use super::admission::{Admission, Refusal, Slot};
use super::anonymous::{Activity, Lifetimes};
use super::connections::{ConnHandle, Connections, Registration};
use super::flood_log::{Event, FloodLog, HandshakeFailure};
use super::source::Source;

/// A TLS handshake must finish within this time. TLS 1.3 needs one round
/// trip and the client certificate, so this leaves room for a slow satellite
/// link while a client that sends nothing gives its slot back quickly.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Accepted connections waiting for gRPC to pick them up.
const ACCEPT_QUEUE: usize = 128;
/// Handshakes in progress at once; beyond this, accepting waits, so a flood of
/// idle TCP connections cannot exhaust file descriptors or memory. One source
/// gets at most `handshakes_per_source` of them ([`super::admission::LIMITS`]), so a
/// flood from a few addresses cannot take them all.
const MAX_HANDSHAKES: usize = 512;

/// What the gRPC layer learns about a connection: inserted into every request's
/// extensions by tonic.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The remote address.
    pub remote: SocketAddr,
    /// The agent, if it presented a certificate that verified. `None` means no
    /// client certificate: only `Enroll` is allowed.
    pub agent: Option<VerifiedAgent>,
    /// Closes this connection (not just one stream on it).
    pub conn: ConnHandle,
    /// Calls on a connection without a client certificate, which closes it
    /// once it has enrolled, idled or lived long enough. `None` when verified.
    pub(crate) activity: Option<Activity>,
}

/// An agent whose certificate verified at the handshake, read from that
/// certificate once.
#[derive(Clone, Debug)]
pub struct VerifiedAgent {
    /// Who it is.
    pub scope: AgentScope,
    /// The certificate's serial number (lowercase hex): only the agent's current
    /// certificate (or the one before it) is accepted by the session and `Renew`.
    pub serial: String,
    /// When the certificate expires, Unix seconds: a stream must not outlive
    /// the certificate that opened it.
    pub not_after: i64,
}

/// A connection whose TLS handshake succeeded.
pub struct AgentConn {
    stream: TlsStream<BufReader<TcpStream>>,
    info: PeerInfo,
    /// Resolves when [`PeerInfo::conn`] is closed; every read and write fails from then on.
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    _registration: Option<Registration>,
    /// Counts an anonymous connection until it is dropped.
    _anonymous: Option<Slot>,
}

impl Drop for AgentConn {
    fn drop(&mut self) {
        // Ends the anonymous watchdog at once; closing a connection that is
        // gone has no other effect.
        self.info.conn.close();
    }
}

impl AgentConn {
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        match self.closed.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection closed by the collector",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Connected for AgentConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for AgentConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Poll::Ready(e) = self.poll_closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AgentConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(e) = self.poll_closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(e) = self.poll_closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// What the listener enforces and reports through.
pub(crate) struct Defences {
    /// Per-source and total connection counts.
    pub(crate) admission: Arc<Admission>,
    /// How long anonymous connections may stay.
    pub(crate) lifetimes: Lifetimes,
    /// Where refusals are logged, once per source.
    pub(crate) flood: Arc<FloodLog>,
}

/// Accepts connections until `shutdown`, handing verified ones to the returned channel.
pub(crate) fn accept_loop(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    connections: Arc<Connections>,
    defences: Defences,
    shutdown: CancellationToken,
) -> mpsc::Receiver<std::io::Result<AgentConn>> {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    let acceptor = TlsAcceptor::from(config);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let defences = Arc::new(defences);
    tokio::spawn(async move {
        let mut accept_errors = AcceptErrors::default();
        loop {
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                p = handshakes.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, remote) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        accept_errors.report(&error);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            // Closing at once (dropping `tcp`) costs the source's next attempt
            // a round trip; holding the socket would cost us a descriptor.
            let slot = match defences.admission.handshake(Source::of(remote.ip())) {
                Ok(slot) => slot,
                Err(_) => {
                    defences.flood.record(remote, Event::TooManyHandshakes, None);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let connections = connections.clone();
            let defences = defences.clone();
            tokio::spawn(async move {
                let tcp = BufReader::with_capacity(outpost_proto::SOCKET_READ_BYTES, tcp);
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(permit);
                drop(slot);
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(error)) => {
                        let failure = HandshakeFailure::of(&error);
                        defences
                            .flood
                            .record(remote, Event::HandshakeRefused(failure), Some(&error));
                        return;
                    }
                    Err(_) => {
                        defences.flood.record(remote, Event::HandshakeTimedOut, None);
                        return;
                    }
                };
                let agent = match stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                    None => None,
                    Some(der) => match AgentCertificate::parse(der) {
                        Ok(cert) => Some(VerifiedAgent {
                            scope: AgentScope::from_certificate(&cert),
                            serial: cert.serial,
                            not_after: cert.not_after,
                        }),
                        Err(error) => {
                            // The verifier already checked this; refuse rather than downgrade.
                            tracing::warn!(%remote, %error, "verified client certificate has no identity");
                            return;
                        }
                    },
                };
                let conn = ConnHandle::default();
                // Anonymous connections are counted until they close and get a
                // watchdog; verified ones are neither, so agents keep
                // connecting while anonymous clients are being refused.
                let (anonymous, activity) = if agent.is_some() {
                    (None, None)
                } else {
                    match defences.admission.anonymous(Source::of(remote.ip())) {
                        Ok(slot) => (
                            Some(slot),
                            Some(Activity::watch(conn.clone(), remote, defences.lifetimes)),
                        ),
                        Err(refusal) => {
                            let event = match refusal {
                                Refusal::AnonymousTotal => Event::AnonymousFull,
                                _ => Event::TooManyAnonymous,
                            };
                            defences.flood.record(remote, event, None);
                            return;
                        }
                    }
                };
                let registration = agent
                    .as_ref()
                    .map(|a| connections.register(a.scope.agent(), conn.clone()));
                let closed = Box::pin(conn.token().clone().cancelled_owned());
                let _ = tx
                    .send(Ok(AgentConn {
                        stream,
                        info: PeerInfo {
                            remote,
                            agent,
                            conn,
                            activity,
                        },
                        closed,
                        _registration: registration,
                        _anonymous: anonymous,
                    }))
                    .await;
            });
        }
    });
    rx
}

/// Failed accepts, logged at most once a minute: when descriptors run out,
/// every accept fails until some close.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<std::time::Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn report(&mut self, error: &std::io::Error) {
        let now = std::time::Instant::now();
        if self
            .last_logged
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%error, suppressed = self.suppressed, "accepting an agent connection failed");
        self.last_logged = Some(now);
        self.suppressed = 0;
    }
}
