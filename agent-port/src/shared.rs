//! The agent port's shared state and the checks every call makes (peer
//! metadata, authentication, protocol version, store errors). The calls
//! (`enroll`, `renew`, `session`) and the service that dispatches to them all
//! build on this; it imports none of them.
use std::sync::Arc;
use std::time::Duration;

use outpost_certs::RevokedAgents;
use outpost_certs::ca::CertificateAuthority;
use outpost_proto::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use outpost_store::{Store, StoreError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use super::connections::Connections;
use super::listener::{PeerInfo, VerifiedAgent};
use super::live::LiveSessions;

/// How long a connection the collector is about to close stays open for the
/// last status of its stream (closing at once could cut it short).
pub(super) const CLOSE_DELAY: Duration = Duration::from_secs(1);

/// Shared state of the agent port.
#[derive(Clone)]
pub struct AgentPortService {
    pub(super) store: Store,
    pub(super) ca: Arc<CertificateAuthority>,
    pub(super) revoked: Arc<RevokedAgents>,
    pub(super) cert_lifetime: Duration,
    pub(super) shutdown: CancellationToken,
    pub(super) connections: Arc<Connections>,
    pub(super) live: Arc<LiveSessions>,
    /// Bumped after every reload of the revocation list, so open streams
    /// check at once instead of at their next tick.
    pub(super) revocations: Arc<watch::Sender<u64>>,
    /// Opens device passwords for the agents that poll them.
    pub(super) vault: Arc<outpost_vault::Vault>,
    /// Live-traffic subscriptions of device pages.
    pub(super) traffic: Arc<super::traffic::TrafficHub>,
    /// How far the agents' running scans are.
    pub(super) scan_progress: Arc<super::scan_progress::ScanProgressHub>,
    /// Ingest counters and timings, served on the console's `/metrics`.
    pub(super) metrics: Arc<outpost_console::Metrics>,
    /// Tunnels to devices through the agents.
    pub(super) tunnels: Arc<super::tunnels::TunnelHub>,
}

impl AgentPortService {
    /// What the console asks of the agents streaming to this service.
    pub fn control(&self) -> super::control::Control {
        super::control::Control::new(
            self.store.clone(),
            self.traffic.clone(),
            self.live.clone(),
            self.scan_progress.clone(),
            self.tunnels.clone(),
            self.vault.clone(),
        )
    }

    /// How far the agents' running scans are, for the console.
    pub fn scan_progress(&self) -> Arc<super::scan_progress::ScanProgressHub> {
        self.scan_progress.clone()
    }

    /// A service signing agent certificates valid for `cert_lifetime`. Open
    /// streams end when `shutdown` is cancelled, so a graceful stop does not
    /// wait for agents that never hang up.
    pub fn new(
        store: Store,
        ca: Arc<CertificateAuthority>,
        revoked: Arc<RevokedAgents>,
        cert_lifetime: Duration,
        shutdown: CancellationToken,
        vault: Arc<outpost_vault::Vault>,
    ) -> Self {
        let live: Arc<LiveSessions> = Arc::default();
        Self {
            tunnels: Arc::new(super::tunnels::TunnelHub::new(
                store.clone(),
                live.clone(),
                super::tunnels::TunnelPolicy::default(),
                shutdown.clone(),
            )),
            traffic: Arc::new(super::traffic::TrafficHub::new(store.clone(), live.clone())),
            vault,
            store,
            ca,
            revoked,
            cert_lifetime,
            shutdown,
            connections: Arc::default(),
            live,
            revocations: Arc::new(watch::Sender::new(0)),
            scan_progress: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Tunnels follow `policy` (the default is [`TunnelPolicy::default`](super::tunnels::TunnelPolicy)).
    pub fn with_tunnel_policy(mut self, policy: super::tunnels::TunnelPolicy) -> Self {
        self.tunnels = Arc::new(super::tunnels::TunnelHub::new(
            self.store.clone(),
            self.live.clone(),
            policy,
            self.shutdown.clone(),
        ));
        self
    }

    /// Counts ingest into `metrics` (the ones the console serves).
    pub fn with_metrics(mut self, metrics: Arc<outpost_console::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Applies a freshly loaded revocation list: the TLS verifier refuses the
    /// revoked from now on, their open streams are told why, and every
    /// connection of theirs is closed once that status has had time to go out
    /// (revocation ends connections, not only streams).
    pub fn apply_revocations(&self, set: std::collections::HashSet<outpost_certs::AgentId>) {
        self.revoked.replace(set);
        self.revocations.send_modify(|generation| *generation += 1);
        let doomed = self.connections.of_revoked(&self.revoked);
        if doomed.is_empty() {
            return;
        }
        for (agent, _) in &doomed {
            tracing::warn!(%agent, "closing a revoked agent's connection");
        }
        tokio::spawn(async move {
            tokio::time::sleep(CLOSE_DELAY).await;
            for (_, conn) in doomed {
                conn.close();
            }
        });
    }

    /// The open verified connections, by agent.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }
}

pub(super) fn peer<T>(request: &Request<T>) -> Result<&PeerInfo, Status> {
    request
        .extensions()
        .get::<PeerInfo>()
        .ok_or_else(|| Status::internal("connection metadata missing"))
}

pub(super) fn authenticated<T>(request: &Request<T>) -> Result<VerifiedAgent, Status> {
    peer(request)?
        .agent
        .clone()
        .ok_or_else(|| Status::unauthenticated("a client certificate issued by this collector is required"))
}

pub(super) fn check_version(v: u32) -> Result<u32, Status> {
    if v < MIN_PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "protocol version {v} is no longer supported (minimum {MIN_PROTOCOL_VERSION}); upgrade the agent"
        )));
    }
    Ok(v.min(PROTOCOL_VERSION))
}

pub(super) fn store_status(error: &StoreError) -> Status {
    tracing::error!(%error, "store operation failed");
    Status::unavailable("the collector's database is unavailable; retry later")
}

pub(super) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_negotiate_down_and_refuse_the_unsupported() {
        // An agent newer than the collector is answered in the collector's version.
        assert_eq!(check_version(PROTOCOL_VERSION + 5).ok(), Some(PROTOCOL_VERSION));
        assert_eq!(check_version(MIN_PROTOCOL_VERSION).ok(), Some(MIN_PROTOCOL_VERSION));
        let old = check_version(MIN_PROTOCOL_VERSION - 1).expect_err("too old");
        assert_eq!(old.code(), tonic::Code::FailedPrecondition);
        assert!(old.message().contains("upgrade the agent"));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("ab", 10), "ab");
    }
}
