//! The console's requests to agents ([`AgentControl`]): live traffic through
//! the [`TrafficHub`], commands such as "back up now" sent on the Connect
//! stream of the agent that polls the device, and discovery's "scan now" with
//! its progress. Only agents streaming to this
//! collector are reachable; the lookup is scoped to the viewer's tenant, so
//! another tenant's device is "not found".
use std::sync::Arc;

use outpost_certs::SiteId;
use outpost_console::agent_control::{AgentControl, RequestFuture, WatchFuture};
use outpost_proto::agent_v1::{BackupNow, Command, command};
use outpost_store::devices::DeviceId;
use outpost_store::inventory::{JobId, ScanId};
use outpost_store::{Store, TenantScope};

use super::live::LiveSessions;
use super::scan_progress::{ScanProgressHub, ScanProgressView};
use super::traffic::TrafficHub;

/// [`AgentControl`] for this collector's agents.
#[derive(Clone)]
pub struct Control {
    store: Store,
    traffic: Arc<TrafficHub>,
    sessions: Arc<LiveSessions>,
    progress: Arc<ScanProgressHub>,
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
    ) -> Self {
        Self {
            store,
            traffic,
            sessions,
            progress,
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
    fn watch(&self, scope: TenantScope, device: DeviceId) -> WatchFuture<'_> {
        Box::pin(self.traffic.clone().subscribe(scope, device))
    }

    fn backup_now(&self, scope: TenantScope, device: DeviceId) -> RequestFuture<'_> {
        Box::pin(self.send_backup_now(scope, device))
    }
}
