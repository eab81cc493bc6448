//! Live traffic: viewers of a device page subscribe here; the first viewer
//! makes the collector ask the agent polling the device to stream its
//! interface rates, and the last one leaving stops it.
//!
//! Samples are accepted only from the agent the device is assigned to (looked
//! up when the first viewer arrives), so one agent cannot feed another
//! tenant's page. A viewer that reads slowly skips samples (broadcast), and
//! a sample nobody watches is dropped. The agents' commands go through the
//! Connect streams open on this collector; with several collectors sharing a
//! database, a viewer on one collector sees live traffic only from agents
//! streaming to the same one (the scale-out work routes it through
//! PostgreSQL).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use outpost_certs::{AgentId, TenantId};
use outpost_console::agent_control::{LiveRate, LiveSample, LiveWatch};
use outpost_proto::agent_v1::{Command, LiveTraffic, WatchTraffic, command};
use outpost_store::devices::DeviceId;
use outpost_store::{Store, TenantScope};
use tokio::sync::broadcast;

use super::live::LiveSessions;

/// Samples a slow viewer may fall behind by before it skips some.
const LAG: usize = 16;

struct Watched {
    tx: broadcast::Sender<Arc<LiveSample>>,
    viewers: usize,
    agent: AgentId,
    tenant: TenantId,
}

/// Live-traffic subscriptions of this collector.
pub struct TrafficHub {
    store: Store,
    sessions: Arc<LiveSessions>,
    watched: Mutex<HashMap<DeviceId, Watched>>,
}

impl std::fmt::Debug for TrafficHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficHub").finish_non_exhaustive()
    }
}

fn watch_command(device: DeviceId, watch: bool) -> Command {
    Command {
        command_id: uuid::Uuid::new_v4().to_string(),
        kind: Some(command::Kind::WatchTraffic(WatchTraffic {
            device_id: device.to_string(),
            interfaces: Vec::new(),
            watch,
        })),
    }
}

impl TrafficHub {
    /// A hub sending its commands through `sessions`.
    pub fn new(store: Store, sessions: Arc<LiveSessions>) -> Self {
        Self {
            store,
            sessions,
            watched: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Watched>> {
        // Entries are replaced whole; a panic elsewhere cannot leave one torn.
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn subscribe(self: Arc<Self>, scope: TenantScope, device: DeviceId) -> Result<LiveWatch, String> {
        let agent = super::devices::agent_of(&self.store, &scope, device).await?;
        let (samples, first) = {
            let mut map = self.lock();
            let entry = map.entry(device).or_insert_with(|| Watched {
                tx: broadcast::channel(LAG).0,
                viewers: 0,
                agent,
                tenant: scope.tenant(),
            });
            // The device moved to another agent since the last viewer came.
            entry.agent = agent;
            entry.viewers += 1;
            (entry.tx.subscribe(), entry.viewers == 1)
        };
        let guard = ViewerGuard {
            hub: self.clone(),
            device,
        };
        if first && !self.sessions.send_command(&agent, watch_command(device, true)) {
            return Err("the agent polling this device is not connected to this collector".into());
        }
        Ok(LiveWatch {
            samples,
            guard: Box::new(guard),
        })
    }

    fn leave(&self, device: DeviceId) {
        let stop = {
            let mut map = self.lock();
            match map.get_mut(&device) {
                Some(w) if w.viewers > 1 => {
                    w.viewers -= 1;
                    None
                }
                Some(_) => map.remove(&device).map(|w| w.agent),
                None => None,
            }
        };
        if let Some(agent) = stop {
            self.sessions.send_command(&agent, watch_command(device, false));
        }
    }

    /// A sample from `agent`; dropped unless that agent polls a watched device.
    pub fn publish(&self, agent: AgentId, tenant: TenantId, traffic: LiveTraffic) {
        let Ok(device) = traffic.device_id.parse::<DeviceId>() else {
            return;
        };
        let map = self.lock();
        let Some(w) = map.get(&device) else { return };
        if w.agent != agent || w.tenant != tenant {
            tracing::debug!(%agent, %device, "live traffic from an agent that does not poll the device ignored");
            return;
        }
        let sample = LiveSample {
            at_ms: traffic.at_ms,
            interfaces: traffic
                .interfaces
                .into_iter()
                .filter(|i| i.rx_bits_per_sec.is_finite() && i.tx_bits_per_sec.is_finite())
                .take(1024)
                .map(|i| LiveRate {
                    name: i.name.chars().take(256).collect(),
                    rx_bps: i.rx_bits_per_sec,
                    tx_bps: i.tx_bits_per_sec,
                })
                .collect(),
        };
        let _ = w.tx.send(Arc::new(sample));
    }

    /// After `agent` (re)connects: asks it again for the devices being watched.
    pub fn resume(&self, agent: AgentId) {
        let devices: Vec<DeviceId> = self
            .lock()
            .iter()
            .filter(|(_, w)| w.agent == agent)
            .map(|(d, _)| *d)
            .collect();
        for device in devices {
            self.sessions.send_command(&agent, watch_command(device, true));
        }
    }
}

struct ViewerGuard {
    hub: Arc<TrafficHub>,
    device: DeviceId,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.hub.leave(self.device);
    }
}
