//! One console connection, from accept to close, in its own task.
//!
//! The TLS handshake runs here (never in the accept loop), bounded by
//! [`Limits::handshake`](super::limits::Limits::handshake). ALPN picks the
//! protocol: `h2` is served as HTTP/2 only, `http/1.1` as HTTP/1.1 only;
//! without ALPN (and in plain HTTP) hyper tells them apart by the HTTP/2
//! preface.
//!
//! Requests in progress are counted through the agent port's
//! [`Activity`] watchdog: a request counts from the moment its head is complete
//! until its response body has been sent (an event stream counts for as long
//! as it is open). With none in progress for
//! [`Limits::idle`](super::limits::Limits::idle) the connection is closed, so
//! a client that never finishes a request head, on either protocol, holds its
//! descriptor for that long at most.
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::Shared;
use super::admission::Slot;
use outpost_agent_port::anonymous::{Activity, Call};
use outpost_agent_port::connections::ConnHandle;

/// After the watchdog or shutdown asks a connection to close, how long it
/// gets to finish (HTTP/2 GOAWAY, a response being written) before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The protocol the TLS handshake agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// No ALPN: decided by the first bytes.
    Either,
}

/// Serves one accepted connection until it closes. `permit` and `slot` are
/// its places in the total and per-source counts, given back when it ends.
pub(super) async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    slot: Slot,
    shutdown: CancellationToken,
) {
    let _held = (permit, slot);
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = shared.tls.clone() else {
        serve(tcp, Protocol::Either, peer, &shared, &shutdown).await;
        return;
    };
    let handshake = tokio::select! {
        () = shutdown.cancelled() => return,
        r = tokio::time::timeout(
            shared.limits.handshake,
            acceptor.accept(BufReader::with_capacity(outpost_proto::SOCKET_READ_BYTES, tcp)),
        ) => r,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            shared.stats.handshake_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, %error, "console TLS handshake failed");
            return;
        }
        Err(_) => {
            shared.stats.handshake_timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "console TLS handshake timed out");
            return;
        }
    };
    let protocol = match stream.get_ref().1.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        Some(b"http/1.1") => Protocol::Http1,
        _ => Protocol::Either,
    };
    serve(stream, protocol, peer, &shared, &shutdown).await;
}

async fn serve<I>(io: I, protocol: Protocol, peer: SocketAddr, shared: &Shared, shutdown: &CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let closer = ConnHandle::default();
    let service = Requests {
        router: shared.router.clone(),
        peer,
        proxies: shared.proxies.clone(),
        activity: Activity::watch(closer.clone(), peer, shared.lifetimes),
    };
    let builder = match protocol {
        Protocol::Http1 => &shared.http1,
        Protocol::Http2 => &shared.http2,
        Protocol::Either => &shared.auto,
    };
    // With upgrades, so the terminal's WebSocket can take the connection over.
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let closing = tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "console connection ended with an error");
            }
            false
        }
        () = closer.token().cancelled() => {
            shared.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
            true
        }
        () = shutdown.cancelled() => true,
    };
    if closing {
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
    }
    // Ends the watchdog now rather than at its next deadline.
    closer.close();
}

/// The per-connection service: tells the router who the client is and counts
/// the request as in progress until its response body is done.
#[derive(Clone)]
struct Requests {
    router: axum::Router,
    peer: SocketAddr,
    proxies: Arc<super::client_addr::TrustedProxies>,
    activity: Activity,
}

impl hyper::service::Service<Request<Incoming>> for Requests {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let client = self.proxies.client(self.peer, req.headers());
        req.extensions_mut().insert(ConnectInfo(client));
        let call = self.activity.call(false);
        let router = self.router.clone();
        Box::pin(async move {
            let res = router.oneshot(req).await?;
            Ok(res.map(|body| Tracked { body, _call: call }))
        })
    }
}

/// A response body that keeps its request counted as in progress until it
/// has been sent or dropped.
struct Tracked {
    body: axum::body::Body,
    _call: Call,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
