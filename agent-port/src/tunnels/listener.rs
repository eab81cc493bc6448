//! The console's listeners on the collector: for a technician without the
//! command line, a port that accepts only the asking user's address and
//! turns each connection into a tunnel.
use std::sync::Arc;

use outpost_console::agent_control::{FromDevice, ToDevice, TunnelAsk, TunnelListener, TunnelPipe, TunnelRefused};
use outpost_store::StoreError;
use outpost_store::audit::{Actor, AuditEvent, Details};
use outpost_store::scope::Viewer;
use tokio::time::Instant;

use super::TunnelHub;

impl TunnelHub {
    /// A listener on the collector for `ask`'s user, accepting only
    /// `allowed`; each connection becomes a tunnel like the command line's
    /// (same policy, limits and audit). It closes when unused for
    /// `listen_idle`, at `listen_lifetime`, or when the collector stops.
    pub async fn listen(
        self: Arc<Self>,
        ask: TunnelAsk,
        allowed: std::net::IpAddr,
    ) -> Result<TunnelListener, TunnelRefused> {
        // Fail now rather than at the first connection: the device and port.
        match self.store.device(&Viewer::Tenant(ask.scope), ask.device).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => return Err(TunnelRefused::NotFound("device not found".into())),
            Err(e) => return Err(TunnelRefused::Unavailable(format!("looking up the device failed: {e}"))),
        }
        if !self.policy.ports.contains(&ask.port) {
            let refused = TunnelRefused::Denied(format!("port {} is not allowed for tunnels", ask.port));
            return Err(refused);
        }
        let listener = tokio::net::TcpListener::bind((self.policy.listen_ip, 0))
            .await
            .map_err(|e| TunnelRefused::Unavailable(format!("cannot open a listener: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TunnelRefused::Unavailable(format!("cannot open a listener: {e}")))?;
        let (idle, lifetime) = (self.policy.listen_idle, self.policy.listen_lifetime);
        let opened = TunnelListener {
            addr,
            allowed,
            expires_at_ms: outpost_store::now_ms() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX),
            idle_secs: idle.as_secs(),
        };
        tracing::info!(%addr, %allowed, device = %ask.device, user = %ask.user, "tunnel listener open");
        let shutdown = self.shutdown.clone();
        tokio::spawn(self.serve_listener(listener, ask, allowed, shutdown));
        Ok(opened)
    }

    async fn serve_listener(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        ask: TunnelAsk,
        allowed: std::net::IpAddr,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let end = Instant::now() + self.policy.listen_lifetime;
        let idle = self.policy.listen_idle;
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut last_use = Instant::now();
        loop {
            // Unused: nothing open, and nothing accepted for `idle`.
            let idle_at = last_use + idle;
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    if peer.ip() != allowed {
                        tracing::warn!(%peer, %allowed, "tunnel listener: a connection from another address refused");
                        let event = AuditEvent::failure(Some(ask.scope.tenant()), "tunnel.refused", format!("device {}", ask.device))
                            .with(Details::new()
                                .text("device", ask.device.to_string())
                                .number("port", i64::from(ask.port))
                                .text("via", "port")
                                .text("reason", format!("a connection from {} to a listener for {allowed}", peer.ip())));
                        self.audit(&Actor::user(&ask.user, Some(peer.ip())), event).await;
                        continue;
                    }
                    last_use = Instant::now();
                    let (hub, ask, active) = (self.clone(), TunnelAsk { via: "port", ..ask.clone() }, active.clone());
                    active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(async move {
                        match hub.open(ask).await {
                            Ok(pipe) => carry(tcp, pipe).await,
                            Err(refused) => tracing::warn!(%peer, "tunnel listener: {refused}"),
                        }
                        active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
                () = tokio::time::sleep_until(idle_at) => {
                    if active.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                        tracing::info!(addr = ?listener.local_addr().ok(), "tunnel listener closed: unused");
                        return;
                    }
                    last_use = Instant::now();
                }
                () = tokio::time::sleep_until(end) => {
                    tracing::info!(addr = ?listener.local_addr().ok(), "tunnel listener closed: expired");
                    return;
                }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Copies between a local TCP connection and a tunnel until both sides are
/// done: the listener's connections, like the command line's.
async fn carry(tcp: tokio::net::TcpStream, pipe: TunnelPipe) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.set_nodelay(true);
    let (mut rd, mut wr) = tcp.into_split();
    let TunnelPipe {
        to_device,
        mut from_device,
        ..
    } = pipe;
    let up = async move {
        loop {
            let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = to_device.send(ToDevice::Fin).await;
                    // Held until the tunnel ends, so the device's answer still arrives.
                    to_device.closed().await;
                    return;
                }
                Ok(_) => {
                    if to_device.send(ToDevice::Data(buf.freeze())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let down = async move {
        while let Some(m) = from_device.recv().await {
            match m {
                FromDevice::Data(b) => {
                    if wr.write_all(&b).await.is_err() {
                        return;
                    }
                }
                FromDevice::Fin => {
                    let _ = wr.shutdown().await;
                }
                FromDevice::Closed(_) => return,
            }
        }
    };
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut down => {}
        () = &mut up => down.await,
    }
}
