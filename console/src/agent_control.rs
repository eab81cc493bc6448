//! What the console asks of agents, through the collector: live interface
//! traffic of a device for its page (the collector tells the agent polling
//! the device to stream `monitor-traffic`, one sample a second while the page
//! is open, and stops it when the last viewer leaves by dropping
//! [`LiveWatch`]), a configuration backup now, and a discovery scan now with
//! its progress while it runs.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use outpost_certs::SiteId;
use outpost_store::TenantScope;
use outpost_store::devices::DeviceId;
use outpost_store::inventory::{JobId, ScanId};
use serde::Serialize;
use tokio::sync::broadcast;

/// One interface's rates in a sample.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRate {
    /// Interface name.
    pub name: String,
    /// Bits per second received.
    pub rx_bps: f64,
    /// Bits per second sent.
    pub tx_bps: f64,
}

/// One second of a device's traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSample {
    /// When the agent took it, agent clock.
    pub at_ms: i64,
    /// Rates per interface.
    pub interfaces: Vec<LiveRate>,
}

/// A viewer's subscription; live traffic continues while any exists.
pub struct LiveWatch {
    /// Samples as they arrive (a slow reader skips samples, never blocks).
    pub samples: broadcast::Receiver<Arc<LiveSample>>,
    /// Dropped with the watch: tells the collector one viewer left.
    pub guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for LiveWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveWatch").finish_non_exhaustive()
    }
}

/// A future the console awaits for a watch.
pub type WatchFuture<'a> = Pin<Box<dyn Future<Output = Result<LiveWatch, String>> + Send + 'a>>;

/// A future the console awaits for a request sent to an agent: the error says
/// why it could not be sent.
pub type RequestFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A future the console awaits for a scan it asked for: the scan's id to
/// follow, or why no agent could be asked.
pub type ScanFuture<'a> = Pin<Box<dyn Future<Output = Result<ScanId, String>> + Send + 'a>>;

/// How far a running scan is, as its agent last reported (not stored: it is
/// worth nothing once the scan ends, when the scans table has the summary).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScanProgress {
    /// `icmp`, `tcp`, `snmp`, `names` or `done`.
    pub phase: String,
    /// Work done in the phase.
    pub done: u32,
    /// Work the phase has.
    pub total: u32,
    /// Hosts found so far.
    pub hosts_found: u32,
    /// When the collector received it (Unix ms).
    pub updated_at_ms: i64,
}

/// Requests to the agents of this collector. The collector implements it;
/// the scope is the viewer's, so a device of another tenant is "not found".
pub trait AgentControl: Send + Sync + std::fmt::Debug {
    /// Starts or joins live traffic of `device`; the error says why it
    /// cannot (no agent connected, …).
    fn watch(&self, scope: TenantScope, device: DeviceId) -> WatchFuture<'_>;

    /// Asks the agent polling `device` for a configuration backup now.
    fn backup_now(&self, scope: TenantScope, device: DeviceId) -> RequestFuture<'_>;

    /// Asks a connected agent of `site` to scan now: `job`, or the agent's
    /// default scan of its connected networks.
    fn scan_now(&self, scope: TenantScope, site: SiteId, job: Option<JobId>) -> ScanFuture<'_>;

    /// The latest progress of a scan of the scope's tenant, while it runs
    /// and its agent streams to this collector.
    fn scan_progress(&self, scope: &TenantScope, scan: &ScanId) -> Option<ScanProgress>;

    /// Agents streaming to this collector now (for `/metrics`).
    fn streaming_agents(&self) -> usize {
        0
    }

    /// Opens a TCP connection to a port of `ask.device` through the agent
    /// that polls it. The caller has checked the role; the collector checks
    /// its tunnel policy and limits, and audits the session.
    fn open_tunnel(&self, ask: TunnelAsk) -> TunnelFuture<'_> {
        let _ = ask;
        Box::pin(async { Err(TunnelRefused::Unavailable(NO_AGENT.to_owned())) })
    }

    /// Opens a short-lived listener on the collector that tunnels each
    /// connection from `allowed` (the asking user's address) to the device,
    /// for a technician without the command line (WinBox pointed at it).
    fn listen_tunnel(&self, ask: TunnelAsk, allowed: std::net::IpAddr) -> ListenFuture<'_> {
        let _ = (ask, allowed);
        Box::pin(async { Err(TunnelRefused::Unavailable(NO_AGENT.to_owned())) })
    }

    /// Opens an interactive shell on `ask.device` over a tunnel to its SSH
    /// port (way in `terminal`), logged in with the device's stored
    /// credentials and checked against its pinned host key. The caller has
    /// checked the role; the session is audited.
    fn open_terminal(&self, ask: TerminalAsk) -> ShellFuture<'_> {
        let _ = ask;
        Box::pin(async { Err(TunnelRefused::Unavailable(NO_AGENT.to_owned())) })
    }
}

/// A terminal someone asks for.
#[derive(Clone, Debug)]
pub struct TerminalAsk {
    /// The device's tenant, as the caller may act in it.
    pub scope: TenantScope,
    /// The device.
    pub device: DeviceId,
    /// Who asks, for limits and the audit log.
    pub user: String,
    /// Where they ask from.
    pub source: Option<std::net::IpAddr>,
    /// Terminal columns.
    pub cols: u32,
    /// Terminal rows.
    pub rows: u32,
}

/// A future for a shell being opened.
pub type ShellFuture<'a> = Pin<Box<dyn Future<Output = Result<ShellPipe, TunnelRefused>> + Send + 'a>>;

/// A listener [`AgentControl::listen_tunnel`] opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelListener {
    /// Where to connect.
    pub addr: std::net::SocketAddr,
    /// The only address it accepts connections from.
    pub allowed: std::net::IpAddr,
    /// Closed at the latest then (Unix ms), earlier when unused.
    pub expires_at_ms: i64,
    /// Closed after this long without a connection.
    pub idle_secs: u64,
}

/// A future for a listener being opened.
pub type ListenFuture<'a> = Pin<Box<dyn Future<Output = Result<TunnelListener, TunnelRefused>> + Send + 'a>>;

/// A tunnel someone asks for.
#[derive(Clone, Debug)]
pub struct TunnelAsk {
    /// The device's tenant, as the caller may act in it.
    pub scope: TenantScope,
    /// The device.
    pub device: DeviceId,
    /// TCP port on the device.
    pub port: u16,
    /// Who asks (a user name, or `token <id>`), for limits and the audit log.
    pub user: String,
    /// Where they ask from.
    pub source: Option<std::net::IpAddr>,
    /// Which way in: `cli`, `port`, `terminal`.
    pub via: &'static str,
}

/// Why a tunnel was not opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelRefused {
    /// No such device in the scope's tenant.
    NotFound(String),
    /// The tunnel policy does not allow it (a port, a target).
    Denied(String),
    /// A limit (per user, per device, in total) is reached.
    Limit(String),
    /// The agent is not connected, refused, or could not connect.
    Unavailable(String),
}

/// A remote-access attempt refused before it reached the tunnel hub: the
/// user's role is too low in the device's tenant, or the device is not one
/// they can see. Recorded like the hub's own refusals (`tunnel.refused`);
/// `tenant` is the device's tenant for a too-low role, `None` (an MSP-wide
/// record) for a device the user cannot see, so another tenant's admins do
/// not learn of the attempt but the MSP does.
pub struct RefusedAccess<'a> {
    /// Who asked.
    pub user: &'a str,
    /// From where.
    pub source: Option<std::net::IpAddr>,
    /// The device's tenant, when the user could see the device.
    pub tenant: Option<outpost_certs::TenantId>,
    /// The device asked for.
    pub device: DeviceId,
    /// The port, when the way in names one.
    pub port: Option<u16>,
    /// Which way in (`cli`, `port`, `terminal`).
    pub via: &'static str,
    /// Why, as the user was told.
    pub reason: &'a str,
}

impl RefusedAccess<'_> {
    /// Appends the record; a failure to do so is logged, the refusal stands.
    pub async fn audit(self, store: &outpost_store::Store) {
        use outpost_store::audit::{Actor, AuditEvent, Details};
        let mut details = Details::new().text("device", self.device.to_string());
        if let Some(port) = self.port {
            details = details.number("port", i64::from(port));
        }
        let event = AuditEvent::failure(self.tenant, "tunnel.refused", format!("device {}", self.device))
            .with(details.text("via", self.via).text("reason", self.reason));
        if let Err(error) = store.record_audit(&Actor::user(self.user, self.source), event).await {
            tracing::error!(%error, "recording a refused remote access in the audit log failed");
        }
    }
}

impl std::fmt::Display for TunnelRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(s) | Self::Denied(s) | Self::Limit(s) | Self::Unavailable(s) => f.write_str(s),
        }
    }
}

/// Bytes towards the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToDevice {
    /// Bytes to write.
    Data(bytes::Bytes),
    /// No more bytes this way (half-close).
    Fin,
}

/// What comes back from the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromDevice {
    /// Bytes it sent.
    Data(bytes::Bytes),
    /// It sends no more (half-close).
    Fin,
    /// The tunnel ended otherwise (reset, idle, maximum time, agent gone); why.
    Closed(String),
}

/// An open tunnel: send on `to_device`, read `from_device`. Dropping both
/// ends it. Both channels are bounded, so a slow side slows the other.
#[derive(Debug)]
pub struct TunnelPipe {
    /// The tunnel's id (in the audit log).
    pub id: String,
    /// What the agent connected to, `address:port`.
    pub target: String,
    /// Towards the device.
    pub to_device: tokio::sync::mpsc::Sender<ToDevice>,
    /// From the device; ends after `Closed`, or `Fin` and the other side's `Fin`.
    pub from_device: tokio::sync::mpsc::Receiver<FromDevice>,
}

/// A future for a tunnel being opened.
pub type TunnelFuture<'a> = Pin<Box<dyn Future<Output = Result<TunnelPipe, TunnelRefused>> + Send + 'a>>;

/// For a console without a collector behind it (unit tests): no agent is
/// ever reachable.
#[derive(Debug, Default)]
pub struct NoAgents;

impl AgentControl for NoAgents {
    fn watch(&self, _scope: TenantScope, _device: DeviceId) -> WatchFuture<'_> {
        Box::pin(async { Err("live traffic is not available on this console".to_owned()) })
    }

    fn backup_now(&self, _scope: TenantScope, _device: DeviceId) -> RequestFuture<'_> {
        Box::pin(async { Err(NO_AGENT.to_owned()) })
    }

    fn scan_now(&self, _scope: TenantScope, _site: SiteId, _job: Option<JobId>) -> ScanFuture<'_> {
        Box::pin(async { Err(NO_AGENT.to_owned()) })
    }

    fn scan_progress(&self, _scope: &TenantScope, _scan: &ScanId) -> Option<ScanProgress> {
        None
    }
}

const NO_AGENT: &str = "no agent is reachable from this console";

/// Keys and size changes towards a device's shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToShell {
    /// Typed bytes.
    Data(bytes::Bytes),
    /// The terminal's new size in characters.
    Resize {
        /// Columns.
        cols: u32,
        /// Rows.
        rows: u32,
    },
}

/// What a device's shell answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromShell {
    /// Output for the terminal.
    Data(bytes::Bytes),
    /// The shell ended; why (`exit status 0`, the tunnel's reason, …).
    Closed(String),
}

/// An interactive shell on a device: send on `to_shell`, read `from_shell`
/// (it ends after [`FromShell::Closed`]). Dropping `to_shell` ends the
/// session.
#[derive(Debug)]
pub struct ShellPipe {
    /// The tunnel carrying the session (its id is in the audit log).
    pub tunnel_id: String,
    /// Towards the shell.
    pub to_shell: tokio::sync::mpsc::Sender<ToShell>,
    /// From the shell.
    pub from_shell: tokio::sync::mpsc::Receiver<FromShell>,
}
