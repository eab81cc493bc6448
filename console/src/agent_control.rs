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
}

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
