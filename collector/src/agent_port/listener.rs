//! Accepts TCP connections on the agent port and completes the TLS handshake.
//!
//! Handshakes run concurrently (a slow or silent client cannot hold up others)
//! and time out. A failed handshake — unknown CA, expired or revoked
//! certificate — is logged with the peer address and the connection dropped;
//! gRPC never sees it.
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use outpost_certs::AgentCertificate;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::Connected;

use super::connections::{ConnHandle, Connections, Registration};
use crate::store::AgentScope;

/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Accepted connections waiting for gRPC to pick them up.
const ACCEPT_QUEUE: usize = 128;
/// Handshakes in progress at once; beyond this, accepting waits, so a flood of
/// idle TCP connections cannot exhaust file descriptors or memory.
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
    stream: TlsStream<TcpStream>,
    info: PeerInfo,
    /// Resolves when [`PeerInfo::conn`] is closed; every read and write fails from then on.
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    _registration: Option<Registration>,
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

/// Accepts connections until `shutdown`, handing verified ones to the returned channel.
pub fn accept_loop(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<std::io::Result<AgentConn>> {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    let acceptor = TlsAcceptor::from(config);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
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
                        tracing::warn!(%error, "accepting an agent connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(permit);
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(error)) => {
                        tracing::warn!(%remote, %error, "agent TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%remote, "agent TLS handshake timed out");
                        return;
                    }
                };
                let agent = match stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                    None => None,
                    Some(der) => match AgentCertificate::parse(der) {
                        Ok(cert) => Some(VerifiedAgent {
                            scope: AgentScope::verified(cert.identity),
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
                let registration = agent
                    .as_ref()
                    .map(|a| connections.register(a.scope.agent(), conn.clone()));
                let closed = Box::pin(conn.token().clone().cancelled_owned());
                let _ = tx
                    .send(Ok(AgentConn {
                        stream,
                        info: PeerInfo { remote, agent, conn },
                        closed,
                        _registration: registration,
                    }))
                    .await;
            });
        }
    });
    rx
}
