//! The console's requests to agents ([`AgentControl`]): live traffic through
//! the [`TrafficHub`], commands such as "back up now" sent on the Connect
//! stream of the agent that polls the device, and discovery's "scan now" with
//! its progress. Only agents streaming to this
//! collector are reachable; the lookup is scoped to the viewer's tenant, so
//! another tenant's device is "not found".
use std::sync::Arc;

use outpost_certs::SiteId;
use outpost_console::agent_control::{
    AgentControl, ListenFuture, RequestFuture, ScanFuture, ScanProgress, ShellFuture, TerminalAsk, TunnelAsk,
    TunnelFuture, WatchFuture,
};
use outpost_proto::agent_v1::{BackupNow, Command, command};
use outpost_store::devices::DeviceId;
use outpost_store::inventory::{JobId, ScanId};
use outpost_store::{Store, TenantScope};

use super::live::LiveSessions;
use super::scan_progress::{ScanProgressHub, ScanProgressView};
use super::traffic::TrafficHub;
use super::tunnels::TunnelHub;

/// [`AgentControl`] for this collector's agents.
#[derive(Clone)]
pub struct Control {
    store: Store,
    traffic: Arc<TrafficHub>,
    sessions: Arc<LiveSessions>,
    progress: Arc<ScanProgressHub>,
    tunnels: Arc<TunnelHub>,
    vault: Arc<outpost_vault::Vault>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    pub(super) fn new(
        store: Store,
        traffic: Arc<TrafficHub>,
        sessions: Arc<LiveSessions>,
        progress: Arc<ScanProgressHub>,
        tunnels: Arc<TunnelHub>,
        vault: Arc<outpost_vault::Vault>,
    ) -> Self {
        Self {
            store,
            traffic,
            sessions,
            progress,
            tunnels,
            vault,
        }
    }

    /// Asks a connected agent of a site of the viewer's tenant to scan now
    /// (`job`, or the agent's default scan); answers the scan id to follow
    /// (see [`Control::scan_progress`] and `Store::scan`). The error says why
    /// no agent could be asked.
    pub async fn scan_now(&self, scope: TenantScope, site: SiteId, job: Option<JobId>) -> Result<ScanId, String> {
        super::discovery::scan_now(&self.store, &self.sessions, scope, site, job).await
    }

    /// The latest progress of a scan of the viewer's tenant, while it runs.
    pub fn scan_progress(&self, scope: &TenantScope, scan: &ScanId) -> Option<ScanProgressView> {
        self.progress.get(scope, scan)
    }

    async fn send_backup_now(&self, scope: TenantScope, device: DeviceId) -> Result<(), String> {
        let agent = super::devices::agent_of(&self.store, &scope, device).await?;
        let command = Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            kind: Some(command::Kind::BackupNow(BackupNow {
                device_id: device.to_string(),
            })),
        };
        if self.sessions.send_command(&agent, command) {
            tracing::info!(%device, %agent, "backup requested");
            Ok(())
        } else {
            Err("the agent polling this device is not connected to this collector".into())
        }
    }
}

impl AgentControl for Control {
    fn streaming_agents(&self) -> usize {
        self.sessions.len()
    }

    fn watch(&self, scope: TenantScope, device: DeviceId) -> WatchFuture<'_> {
        Box::pin(self.traffic.clone().subscribe(scope, device))
    }

    fn backup_now(&self, scope: TenantScope, device: DeviceId) -> RequestFuture<'_> {
        Box::pin(self.send_backup_now(scope, device))
    }

    fn scan_now(&self, scope: TenantScope, site: SiteId, job: Option<JobId>) -> ScanFuture<'_> {
        Box::pin(Control::scan_now(self, scope, site, job))
    }

    fn open_tunnel(&self, ask: TunnelAsk) -> TunnelFuture<'_> {
        Box::pin(self.tunnels.open(ask))
    }

    fn listen_tunnel(&self, ask: TunnelAsk, allowed: std::net::IpAddr) -> ListenFuture<'_> {
        Box::pin(self.tunnels.clone().listen(ask, allowed))
    }

    fn open_terminal(&self, ask: TerminalAsk) -> ShellFuture<'_> {
        Box::pin(super::terminal::open(&self.store, &self.vault, &self.tunnels, ask))
    }

    fn scan_progress(&self, scope: &TenantScope, scan: &ScanId) -> Option<ScanProgress> {
        Control::scan_progress(self, scope, scan).map(|p| ScanProgress {
            phase: p.phase,
            done: p.done,
            total: p.total,
            hosts_found: p.hosts_found,
            updated_at_ms: p.updated_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use outpost_certs::{AgentCertificate, AgentId, AgentIdentity};
    use outpost_proto::agent_v1::ScanProgress as WireProgress;
    use outpost_store::AgentScope;

    use super::*;

    #[tokio::test]
    async fn the_console_reaches_scan_now_and_progress_through_its_trait() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (store, admin) = Store::open_as_operator(tmp.path(), None).await.expect("store");
        let site = store.ensure_site(&admin, "acme", "hq").await.expect("site");
        let sessions: Arc<LiveSessions> = Arc::default();
        let progress: Arc<ScanProgressHub> = Arc::default();
        let traffic = Arc::new(TrafficHub::new(store.clone(), sessions.clone()));
        let tunnels = Arc::new(TunnelHub::new(
            store.clone(),
            sessions.clone(),
            Default::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
        let control: Arc<dyn AgentControl> = Arc::new(Control::new(
            store.clone(),
            traffic,
            sessions,
            progress.clone(),
            tunnels,
            Arc::new(outpost_vault::Vault::generate().expect("vault key")),
        ));
        let scope = admin.tenant_scope(site.tenant);

        let err = control.scan_now(scope, site.site, None).await.expect_err("no agent");
        assert!(err.contains("no agent of this site is connected"), "{err}");

        let agent = AgentScope::from_certificate(&AgentCertificate {
            identity: AgentIdentity {
                tenant: site.tenant,
                site: site.site,
                agent: AgentId::random(),
            },
            serial: String::new(),
            not_before: 0,
            not_after: 0,
        });
        progress.record(
            &agent,
            &WireProgress {
                scan_id: "s1".into(),
                phase: "snmp".into(),
                done: 7,
                total: 9,
                hosts_found: 4,
            },
        );
        let id: ScanId = "s1".parse().expect("scan id");
        let seen = control.scan_progress(&scope, &id).expect("progress");
        assert_eq!(
            (seen.phase.as_str(), seen.done, seen.total, seen.hosts_found),
            ("snmp", 7, 9, 4)
        );
        let other = admin.tenant_scope(outpost_certs::TenantId::random());
        assert_eq!(control.scan_progress(&other, &id), None, "another tenant's scan");
        store.close().await;
    }
}
