//! Tunnels: on the collector's `OpenTunnel`, a TCP connection to a device
//! carried on a `Tunnel` stream of its own (over the same connection to the
//! collector, which the agent dialled: nothing listens on the agent).
//!
//! The agent's own policy comes first: it connects only to the address of a
//! device it manages or to an address inside its site's discovery networks,
//! whatever the collector asks; anything else is refused, logged and
//! reported on the stream. Bytes go both ways in chunks of up to 64 KiB
//! (read straight into their message, [`tunnel_wire`]), with the stream's
//! flow control as back-pressure; `fin` half-closes (a FIN from
//! the device becomes `fin`, a `fin` from the collector shuts the socket's
//! write side), a reset or error ends the tunnel with `closed` and the
//! reason.
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use outpost_proto::agent_v1::{Empty, OpenTunnel, TunnelClosed, TunnelFrame, TunnelHello, tunnel_frame};
use outpost_proto::tunnel_wire::{self, ChunkBuf, Out};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Frames queued towards the collector.
const QUEUE: usize = 8;
/// Tunnels open at once on this agent, whatever the collector asks.
pub const MAX_OPEN: usize = 256;

/// Where tunnels may go: managed devices and the site's discovery networks,
/// as the collector last assigned them.
#[derive(Debug, Default)]
pub struct TunnelPolicy {
    allowed: RwLock<Allowed>,
    open: std::sync::atomic::AtomicUsize,
}

/// A place among the agent's open tunnels, given back when dropped.
struct OpenSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for OpenSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Allowed {
    devices: HashSet<String>,
    networks: Vec<IpNet>,
}

impl TunnelPolicy {
    /// The managed devices' addresses (from `AssignDevices`).
    pub fn set_devices(&self, addresses: impl IntoIterator<Item = String>) {
        self.write().devices = addresses.into_iter().map(|a| a.to_ascii_lowercase()).collect();
    }

    /// The discovery jobs' targets (from `AssignDiscovery`); unparsable ones are skipped.
    pub fn set_networks<'a>(&self, targets: impl IntoIterator<Item = &'a str>) {
        self.write().networks = targets
            .into_iter()
            .filter_map(|t| outpost_discovery::targets::parse_target(t).ok())
            .collect();
    }

    fn slot(&self) -> Option<OpenSlot<'_>> {
        use std::sync::atomic::Ordering;
        let taken = self.open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_OPEN).then_some(n + 1)
        });
        // Lazily: a slot built and dropped here would give back one never taken.
        taken.is_ok().then(|| OpenSlot(&self.open))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Allowed> {
        self.allowed.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Why `host` may not be reached, if it may not.
    pub fn check(&self, host: &str) -> Result<(), String> {
        let allowed = self.allowed.read().unwrap_or_else(|e| e.into_inner());
        if allowed.devices.contains(&host.to_ascii_lowercase()) {
            return Ok(());
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && allowed.networks.iter().any(|n| n.contains(&ip))
        {
            return Ok(());
        }
        Err(format!(
            "{host} is neither a device this agent manages nor inside its site's discovery networks"
        ))
    }
}

fn frame(kind: tunnel_frame::Kind) -> Out<TunnelFrame> {
    Out::Message(TunnelFrame { kind: Some(kind) })
}

fn closed(reason: &str, detail: impl Into<String>) -> Out<TunnelFrame> {
    frame(tunnel_frame::Kind::Closed(TunnelClosed {
        reason: reason.into(),
        detail: detail.into(),
    }))
}

/// The path of `AgentService.Tunnel`.
const TUNNEL_PATH: &str = "/outpost.agent.v1.AgentService/Tunnel";

/// Carries one tunnel until it ends.
pub async fn run(mut channel: Channel, policy: Arc<TunnelPolicy>, open: OpenTunnel) {
    let id = open.tunnel_id.clone();
    let (tx, rx) = mpsc::channel(QUEUE);
    let hello = frame(tunnel_frame::Kind::Hello(TunnelHello {
        tunnel_id: open.tunnel_id.clone(),
        secret: open.secret.clone(),
    }));
    // Room for the hello and the first answer: the stream opens first, so the
    // collector hears of a refusal or a failed connection too.
    let _ = tx.try_send(hello);
    // Written and read by `tunnel_wire`: the bytes are never copied in between.
    let stream = tunnel_wire::call(&mut channel, TUNNEL_PATH, Default::default(), ReceiverStream::new(rx)).await;
    let mut inbound: tunnel_wire::Incoming<TunnelFrame> = match stream {
        Ok(inbound) => inbound,
        Err(status) => {
            tracing::warn!(tunnel = %id, error = %status.message(), "the collector refused the tunnel stream");
            return;
        }
    };
    let Some(_slot) = policy.slot() else {
        tracing::warn!(tunnel = %id, "tunnel refused: {MAX_OPEN} tunnels are open on this agent");
        let _ = tx
            .send(closed("refused", format!("{MAX_OPEN} tunnels are open on this agent")))
            .await;
        return;
    };
    if let Err(why) = policy.check(&open.host) {
        tracing::warn!(tunnel = %id, host = %open.host, port = open.port, "tunnel refused: {why}");
        let _ = tx.send(closed("refused", why)).await;
        return;
    }
    let Ok(port) = u16::try_from(open.port) else {
        let _ = tx
            .send(closed("refused", format!("port {} is not a TCP port", open.port)))
            .await;
        return;
    };
    let timeout = Duration::from_millis(u64::from(open.connect_timeout_ms.clamp(1_000, 60_000)));
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect((open.host.as_str(), port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let _ = tx
                .send(closed("unreachable", format!("{}:{port}: {e}", open.host)))
                .await;
            return;
        }
        Err(_) => {
            let detail = format!("{}:{port}: no answer within {} s", open.host, timeout.as_secs());
            let _ = tx.send(closed("timeout", detail)).await;
            return;
        }
    };
    // Interactive sessions (SSH, WinBox) want each keystroke sent at once.
    let _ = tcp.set_nodelay(true);
    if tx.send(frame(tunnel_frame::Kind::Opened(Empty {}))).await.is_err() {
        return;
    }
    tracing::info!(tunnel = %id, host = %open.host, port, "tunnel open");
    let (mut rd, mut wr) = tcp.into_split();
    let up_tx = tx.clone();
    let up = async move {
        loop {
            // Read where the message is sent from: no copy on the way out.
            let mut buf = ChunkBuf::with_capacity(tunnel_wire::CHUNK_BYTES);
            match rd.read_buf(buf.spare()).await {
                Ok(0) => {
                    let _ = up_tx.send(frame(tunnel_frame::Kind::Fin(Empty {}))).await;
                    return Ok(());
                }
                Ok(_) => {
                    let framed = buf.into_framed().map_err(|s| s.message().to_owned())?;
                    if up_tx.send(Out::Framed(framed)).await.is_err() {
                        return Err("the collector went away".to_owned());
                    }
                }
                Err(e) => return Err(format!("reading from the device: {e}")),
            }
        }
    };
    let down = async move {
        loop {
            match inbound.message().await {
                Ok(Some(TunnelFrame {
                    kind: Some(tunnel_frame::Kind::Data(b)),
                })) => {
                    if let Err(e) = wr.write_all(&b).await {
                        return Err(format!("writing to the device: {e}"));
                    }
                }
                Ok(Some(TunnelFrame {
                    kind: Some(tunnel_frame::Kind::Fin(_)),
                })) => {
                    let _ = wr.shutdown().await;
                }
                Ok(Some(TunnelFrame {
                    kind: Some(tunnel_frame::Kind::Closed(c)),
                })) => return Err(format!("ended by the collector: {}", c.detail)),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(status) => return Err(format!("the tunnel stream failed: {}", status.message())),
            }
        }
    };
    tokio::pin!(up, down);
    // Until both directions are done, or either fails.
    let (mut up_done, mut down_done) = (false, false);
    let ended = loop {
        tokio::select! {
            r = &mut up, if !up_done => match r {
                Ok(()) => up_done = true,
                Err(e) => break Some(e),
            },
            r = &mut down, if !down_done => match r {
                Ok(()) => down_done = true,
                Err(e) => break Some(e),
            },
        }
        if down_done {
            // The collector ended the stream: nothing more can be sent anyway.
            break None;
        }
    };
    match ended {
        Some(e) => {
            tracing::info!(tunnel = %id, "tunnel ended: {e}");
            if !e.starts_with("ended by the collector") {
                let _ = tx.try_send(closed("reset", e));
            }
        }
        None => tracing::info!(tunnel = %id, "tunnel closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_managed_devices_and_site_networks_are_reachable() {
        let p = TunnelPolicy::default();
        assert!(p.check("10.1.2.3").is_err(), "nothing assigned: nothing allowed");
        p.set_devices(["Router.example".to_owned(), "127.0.0.9".to_owned()]);
        p.set_networks(["10.1.2.0/24", "fd00::/120", "not a network"]);
        for ok in ["router.example", "127.0.0.9", "10.1.2.3", "fd00::7"] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
        for refused in ["10.1.3.1", "127.0.0.10", "other.example", "fd00::1:0"] {
            let why = p.check(refused).expect_err(refused);
            assert!(why.contains(refused), "{why}");
        }
        p.set_devices(Vec::new());
        assert!(p.check("127.0.0.9").is_err(), "a device no longer managed");
    }

    #[test]
    fn at_most_max_open_tunnels_and_slots_come_back() {
        let p = TunnelPolicy::default();
        let held: Vec<_> = (0..MAX_OPEN).map(|_| p.slot().expect("a slot")).collect();
        assert!(p.slot().is_none(), "one more than allowed");
        drop(held);
        assert!(p.slot().is_some(), "given back");
    }
}
