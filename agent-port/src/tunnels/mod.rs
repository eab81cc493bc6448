//! Tunnels: TCP connections to devices, carried by the agents that poll them.
//!
//! [`TunnelHub::open`] checks the collector's policy (allowed ports) and
//! limits, asks the device's agent with `OpenTunnel` on its `Connect` stream
//! (a tunnel id and a one-time secret) and waits for the agent's own
//! `Tunnel` stream, which [`TunnelHub::attach`] matches by id, agent and
//! secret. The agent then reports `opened` (or `closed` with why), and a
//! bridge task copies frames between that stream and the caller's
//! [`TunnelPipe`], both ways through bounded channels, so a slow reader slows
//! its writer and nothing else. It ends the tunnel on `closed`, after a `fin`
//! each way, when either side goes away, when idle or at the maximum
//! duration, and writes the session to the audit log: who, from where,
//! device, port, bytes each way, duration and how it ended. Refusals are
//! audited too.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_certs::AgentId;
use outpost_console::agent_control::{TunnelAsk, TunnelPipe, TunnelRefused};
use outpost_proto::agent_v1::{Command, OpenTunnel, TunnelFrame, command, tunnel_frame};
use outpost_proto::tunnel_wire::Incoming;
use outpost_store::audit::{Actor, AuditEvent, Details};
use outpost_store::scope::Viewer;
use outpost_store::{AgentScope, Store, StoreError};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::live::LiveSessions;

mod bridge;
mod listener;

use bridge::Bridge;

/// Frames queued each way; with chunks of up to 64 KiB, at most 512 KiB in
/// flight per direction inside the collector.
const QUEUE: usize = 8;

/// What the collector allows; `serve`'s `--tunnel-*` flags.
#[derive(Clone, Debug)]
pub struct TunnelPolicy {
    /// Device ports a tunnel may reach.
    pub ports: Vec<u16>,
    /// Open tunnels per user at once.
    pub per_user: usize,
    /// Open tunnels per device at once.
    pub per_device: usize,
    /// Open tunnels in total.
    pub total: usize,
    /// Ended when no byte moved either way for this long.
    pub idle: Duration,
    /// Ended after this long whatever happens.
    pub max_duration: Duration,
    /// How long the agent may take to connect to the device.
    pub connect_timeout: Duration,
    /// Where the console's listeners for technicians without the command
    /// line are opened (port chosen per listener).
    pub listen_ip: std::net::IpAddr,
    /// Such a listener closes after this long without a connection ...
    pub listen_idle: Duration,
    /// ... and after this long at the latest.
    pub listen_lifetime: Duration,
}

impl Default for TunnelPolicy {
    fn default() -> Self {
        Self {
            // SSH, telnet, web, WinBox, RouterOS API and API-SSL.
            ports: vec![22, 23, 80, 443, 8080, 8291, 8443, 8728, 8729],
            per_user: 10,
            per_device: 20,
            total: 200,
            idle: Duration::from_secs(300),
            max_duration: Duration::from_secs(8 * 3600),
            connect_timeout: Duration::from_secs(10),
            listen_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            listen_idle: Duration::from_secs(300),
            listen_lifetime: Duration::from_secs(3600),
        }
    }
}

/// A tunnel asked of an agent, waiting for its stream.
struct Pending {
    agent: AgentId,
    secret: [u8; 32],
    stream: oneshot::Sender<AgentStream>,
}

/// Removes a tunnel request from the pending table when dropped.
struct Unlist<'a> {
    pending: &'a Mutex<HashMap<String, Pending>>,
    id: String,
}

impl Drop for Unlist<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

/// The agent's side of a tunnel: what it sends, and where to send to it.
struct AgentStream {
    inbound: Incoming<TunnelFrame>,
    outbound: mpsc::Sender<Result<TunnelFrame, Status>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_user: HashMap<String, usize>,
    per_device: HashMap<String, usize>,
}

/// The tunnels of this collector.
pub struct TunnelHub {
    store: Store,
    sessions: Arc<LiveSessions>,
    policy: TunnelPolicy,
    pending: Mutex<HashMap<String, Pending>>,
    counts: Arc<Mutex<Counts>>,
    /// Ends the listeners when the collector stops.
    shutdown: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for TunnelHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelHub")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A place among the open tunnels, given back when dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    user: String,
    device: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut guard = lock(&self.counts);
        let c = &mut *guard;
        c.total = c.total.saturating_sub(1);
        for (map, key) in [(&mut c.per_user, &self.user), (&mut c.per_device, &self.device)] {
            if let Some(n) = map.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change under these locks is a whole insert or removal.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the audit log says about one tunnel.
#[derive(Clone)]
struct Session {
    id: String,
    ask: TunnelAsk,
    target: String,
}

impl Session {
    fn actor(&self) -> Actor {
        Actor::user(&self.ask.user, self.ask.source)
    }

    fn details(&self) -> Details {
        Details::new()
            .text("tunnel", self.id.as_str())
            .text("device", self.ask.device.to_string())
            .number("port", i64::from(self.ask.port))
            .text("target", self.target.as_str())
            .text("via", self.ask.via)
    }
}

impl TunnelHub {
    pub(super) fn new(
        store: Store,
        sessions: Arc<LiveSessions>,
        policy: TunnelPolicy,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            store,
            sessions,
            policy,
            pending: Mutex::default(),
            counts: Arc::default(),
            shutdown,
        }
    }

    /// Opens a tunnel for `ask` (whose role the caller checked).
    pub async fn open(&self, ask: TunnelAsk) -> Result<TunnelPipe, TunnelRefused> {
        let result = self.try_open(&ask).await;
        if let Err(refused) = &result {
            // The asker's own tenant: the one they asked in (a device of
            // another tenant is "not found" to them, and recorded as theirs).
            let tenant = Some(ask.scope.tenant());
            let event = AuditEvent::failure(tenant, "tunnel.refused", format!("device {}", ask.device)).with(
                Details::new()
                    .text("device", ask.device.to_string())
                    .number("port", i64::from(ask.port))
                    .text("via", ask.via)
                    .text("reason", refused.to_string()),
            );
            self.audit(&Actor::user(&ask.user, ask.source), event).await;
        }
        result
    }

    async fn try_open(&self, ask: &TunnelAsk) -> Result<TunnelPipe, TunnelRefused> {
        let device = match self.store.device(&Viewer::Tenant(ask.scope), ask.device).await {
            Ok(d) => d,
            Err(StoreError::NotFound(_)) => return Err(TunnelRefused::NotFound("device not found".into())),
            Err(e) => return Err(TunnelRefused::Unavailable(format!("looking up the device failed: {e}"))),
        };
        if !self.policy.ports.contains(&ask.port) {
            return Err(TunnelRefused::Denied(format!(
                "port {} is not allowed for tunnels (allowed: {})",
                ask.port,
                self.policy
                    .ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let agent = super::devices::agent_of(&self.store, &ask.scope, ask.device)
            .await
            .map_err(TunnelRefused::Unavailable)?;
        let slot = self.reserve(&ask.user, &ask.device.to_string())?;
        let id = uuid::Uuid::new_v4().to_string();
        let secret: [u8; 32] = rand::random();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(
            id.clone(),
            Pending {
                agent,
                secret,
                stream: tx,
            },
        );
        // However this ends (an answer, a refusal, the caller going away
        // mid-wait), the request leaves the table.
        let _unlisted = Unlist {
            pending: &self.pending,
            id: id.clone(),
        };
        let command = Command {
            command_id: id.clone(),
            kind: Some(command::Kind::OpenTunnel(OpenTunnel {
                tunnel_id: id.clone(),
                secret: secret.to_vec(),
                device_id: ask.device.to_string(),
                host: device.address.clone(),
                port: u32::from(ask.port),
                connect_timeout_ms: u32::try_from(self.policy.connect_timeout.as_millis()).unwrap_or(u32::MAX),
            })),
        };
        if !self.sessions.send_command(&agent, command) {
            return Err(TunnelRefused::Unavailable(
                "the agent polling this device is not connected to this collector".into(),
            ));
        }
        // The agent opens its stream at once, then connects.
        let wait = self.policy.connect_timeout + Duration::from_secs(5);
        let stream = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(stream)) => stream,
            _ => {
                return Err(TunnelRefused::Unavailable(
                    "the agent did not answer the tunnel request".into(),
                ));
            }
        };
        let AgentStream { mut inbound, outbound } = stream;
        let first = tokio::time::timeout(wait, inbound.message()).await;
        match first {
            Ok(Ok(Some(TunnelFrame {
                kind: Some(tunnel_frame::Kind::Opened(_)),
            }))) => {}
            Ok(Ok(Some(TunnelFrame {
                kind: Some(tunnel_frame::Kind::Closed(c)),
            }))) => {
                return Err(match c.reason.as_str() {
                    "refused" => TunnelRefused::Denied(format!("the agent refused: {}", c.detail)),
                    _ => TunnelRefused::Unavailable(format!("the agent could not connect: {}", c.detail)),
                });
            }
            Ok(Ok(_)) => return Err(TunnelRefused::Unavailable("the agent's tunnel stream broke off".into())),
            Ok(Err(status)) => {
                return Err(TunnelRefused::Unavailable(format!(
                    "the agent's tunnel stream failed: {}",
                    status.message()
                )));
            }
            Err(_) => {
                return Err(TunnelRefused::Unavailable("the agent did not connect in time".into()));
            }
        }
        let target = format!("{}:{}", device.address, ask.port);
        let session = Session {
            id: id.clone(),
            ask: ask.clone(),
            target: target.clone(),
        };
        let event = AuditEvent::success(
            Some(ask.scope.tenant()),
            "tunnel.open",
            format!("device {}", ask.device),
        )
        .with(session.details());
        self.audit(&session.actor(), event).await;
        tracing::info!(tunnel = %id, device = %ask.device, port = ask.port, user = %ask.user, "tunnel open");

        let (to_device, to_rx) = mpsc::channel(QUEUE);
        let (from_tx, from_device) = mpsc::channel(QUEUE);
        let bridge = Bridge {
            store: self.store.clone(),
            policy: self.policy.clone(),
            session,
            _slot: slot,
        };
        tokio::spawn(bridge.run(inbound, outbound, to_rx, from_tx));
        Ok(TunnelPipe {
            id,
            target,
            to_device,
            from_device,
        })
    }

    fn reserve(&self, user: &str, device: &str) -> Result<Slot, TunnelRefused> {
        let mut c = lock(&self.counts);
        let p = &self.policy;
        if c.total >= p.total {
            return Err(TunnelRefused::Limit(format!(
                "{} tunnels are open, the most this collector allows",
                p.total
            )));
        }
        if c.per_user.get(user).copied().unwrap_or(0) >= p.per_user {
            return Err(TunnelRefused::Limit(format!(
                "{user} has {} tunnels open, the most allowed",
                p.per_user
            )));
        }
        if c.per_device.get(device).copied().unwrap_or(0) >= p.per_device {
            return Err(TunnelRefused::Limit(format!(
                "this device has {} tunnels open, the most allowed",
                p.per_device
            )));
        }
        c.total += 1;
        *c.per_user.entry(user.to_owned()).or_default() += 1;
        *c.per_device.entry(device.to_owned()).or_default() += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            user: user.to_owned(),
            device: device.to_owned(),
        })
    }

    /// The agent's `Tunnel` stream: its first frame must name a tunnel this
    /// collector asked *this* agent for, with that tunnel's secret.
    pub(super) async fn attach(
        &self,
        agent: &AgentScope,
        remote: std::net::SocketAddr,
        mut inbound: Incoming<TunnelFrame>,
    ) -> Result<ReceiverStream<Result<TunnelFrame, Status>>, Status> {
        let hello = match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await {
            Ok(Ok(Some(TunnelFrame {
                kind: Some(tunnel_frame::Kind::Hello(h)),
            }))) => h,
            Ok(Err(status)) => return Err(status),
            Ok(Ok(_)) => return Err(Status::invalid_argument("a tunnel stream must start with hello")),
            Err(_) => return Err(Status::deadline_exceeded("no hello on the tunnel stream within 10 s")),
        };
        let Some(pending) = self.claim(agent.agent(), &hello) else {
            tracing::warn!(agent = %agent.agent(), tunnel = %hello.tunnel_id, "tunnel stream refused: unknown tunnel or wrong secret");
            let event = AuditEvent::failure(
                Some(agent.tenant()),
                "tunnel.attach",
                format!("tunnel {}", hello.tunnel_id),
            )
            .with(
                Details::new()
                    .text("agent", agent.agent().to_string())
                    .text("reason", "unknown tunnel, another agent's, or a wrong one-time secret"),
            );
            self.audit(
                &Actor::user(&format!("agent {}", agent.agent()), Some(remote.ip())),
                event,
            )
            .await;
            return Err(Status::permission_denied(
                "no such tunnel for this agent, or a wrong one-time secret",
            ));
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        if pending.stream.send(AgentStream { inbound, outbound: tx }).is_err() {
            return Err(Status::cancelled("the tunnel was given up before the agent answered"));
        }
        Ok(ReceiverStream::new(rx))
    }

    /// The pending tunnel `hello` answers, taken out of the table, when it
    /// was asked of `agent` and the secret is its own. A wrong secret or agent
    /// takes nothing: the right agent may still answer.
    fn claim(&self, agent: AgentId, hello: &outpost_proto::agent_v1::TunnelHello) -> Option<Pending> {
        let mut map = lock(&self.pending);
        let matches = map
            .get(&hello.tunnel_id)
            .is_some_and(|p| p.agent == agent && bool::from(p.secret.as_slice().ct_eq(hello.secret.as_slice())));
        matches.then(|| map.remove(&hello.tunnel_id)).flatten()
    }

    async fn audit(&self, actor: &Actor, event: AuditEvent) {
        if let Err(error) = self.store.record_audit(actor, event).await {
            tracing::error!(%error, "recording a tunnel in the audit log failed");
        }
    }
}

#[cfg(test)]
mod tests;
