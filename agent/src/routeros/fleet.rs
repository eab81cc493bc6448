//! The fleet: one task per assigned device, started, replaced and stopped as
//! the collector's assignments change.
//!
//! The collector sends the complete set on every connection and whenever it
//! changes; a device whose settings (address, credentials, pins, interval)
//! changed gets a fresh task. The last set keeps being polled while the
//! collector is unreachable — the outbox holds the results — but it is kept in
//! memory only (it carries passwords), so an agent restarted while the
//! collector is down polls nothing until it reconnects.
use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc as requests;
use outpost_proto::agent_v1::{BackupNow, DeviceAssignment, ManagedDevice, WatchTraffic};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::backup_memory::BackupMemory;
use super::device::{DeviceRequest, DeviceTask};
use super::live::{LiveRequest, LiveSender};
use super::sink::ReportSink;

/// What the uplink passes on from the collector.
#[derive(Debug)]
pub enum FleetCommand {
    /// The complete set of devices to poll.
    Assign(DeviceAssignment),
    /// Start or stop live traffic of a device.
    Watch(WatchTraffic),
    /// Back up a device now.
    Backup(BackupNow),
}

/// Open files the agent needs besides its devices (outbox, uplink, logs).
const BASE_FILES: u64 = 256;

/// Requests waiting for one device task before more are dropped.
const REQUESTS: usize = 8;

struct Running {
    device: Arc<ManagedDevice>,
    /// A `futures` channel rather than a tokio one: requests are rare, and a
    /// tokio channel allocates a block of slots up front, for each of
    /// thousands of devices.
    requests: requests::Sender<DeviceRequest>,
    stop: CancellationToken,
}

/// Configuration backups (SSH sessions and whole exports in memory) taken at
/// once at most, apart from the polling bound: after a start every device is
/// due for its first backup, and that storm must neither crowd out polls nor
/// hold hundreds of sessions' buffers at the same time.
pub const BACKUP_CONCURRENCY: usize = 16;

/// The fleet's settings and state.
pub struct Fleet {
    sink: ReportSink,
    live: LiveSender,
    permits: Arc<Semaphore>,
    backup_permits: Arc<Semaphore>,
    concurrency: usize,
    running: HashMap<String, Running>,
    stop: CancellationToken,
    backups: BackupMemory,
}

impl Fleet {
    /// A fleet that polls at most `concurrency` devices at once.
    pub fn new(sink: ReportSink, live: LiveSender, concurrency: usize, stop: CancellationToken) -> Self {
        Self {
            sink,
            live,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            backup_permits: Arc::new(Semaphore::new(BACKUP_CONCURRENCY.min(concurrency.max(1)))),
            concurrency: concurrency.max(1),
            running: HashMap::new(),
            stop,
            backups: BackupMemory::default(),
        }
    }

    /// Runs until `stop` is cancelled or the command channel closes.
    pub async fn run(mut self, mut commands: mpsc::Receiver<FleetCommand>) {
        loop {
            let command = tokio::select! {
                () = self.stop.cancelled() => break,
                c = commands.recv() => match c { Some(c) => c, None => break },
            };
            match command {
                FleetCommand::Assign(a) => self.assign(a.devices),
                FleetCommand::Watch(w) => {
                    let request = if w.watch {
                        LiveRequest::Start(w.interfaces)
                    } else {
                        LiveRequest::Stop
                    };
                    self.send(&w.device_id, DeviceRequest::Live(request));
                }
                FleetCommand::Backup(b) => self.send(&b.device_id, DeviceRequest::Backup),
            }
        }
        for (_, r) in self.running.drain() {
            r.stop.cancel();
        }
    }

    fn send(&mut self, device_id: &str, request: DeviceRequest) {
        match self.running.get_mut(device_id) {
            Some(r) => {
                if r.requests.try_send(request).is_err() {
                    tracing::warn!(device = %device_id, "device task busy; request dropped");
                }
            }
            None => tracing::warn!(device = %device_id, "request for a device this agent does not poll"),
        }
    }

    fn assign(&mut self, devices: Vec<ManagedDevice>) {
        let mut wanted: HashMap<String, ManagedDevice> = HashMap::new();
        for d in devices {
            if d.device_id.is_empty() || d.address.is_empty() {
                tracing::warn!(device = %d.device_id, "assigned device without id or address ignored");
                continue;
            }
            wanted.insert(d.device_id.clone(), d);
        }
        let before = self.running.len();
        self.running.retain(|id, r| {
            let keep = wanted.get(id).is_some_and(|d| d == r.device.as_ref());
            if !keep {
                r.stop.cancel();
            }
            keep
        });
        let kept = self.running.len();
        let fleet_size = wanted.len();
        for (id, device) in wanted {
            if self.running.contains_key(&id) {
                continue;
            }
            let (tx, rx) = requests::channel(REQUESTS);
            let stop = self.stop.child_token();
            let device = Arc::new(device);
            let task = DeviceTask {
                device: device.clone(),
                permits: self.permits.clone(),
                backup_permits: self.backup_permits.clone(),
                sink: self.sink.clone(),
                requests: rx,
                live: self.live.clone(),
                stop: stop.clone(),
                fleet_size,
                backups: self.backups.clone(),
            };
            tokio::spawn(task.run());
            self.running.insert(
                id,
                Running {
                    device,
                    requests: tx,
                    stop,
                },
            );
        }
        tracing::info!(
            devices = self.running.len(),
            started = self.running.len() - kept,
            stopped = before - kept,
            "device assignment applied"
        );
        raise_file_limit(self.running.len() as u64, self.concurrency as u64);
    }
}

/// Raises the open-file limit to what `devices` sessions need (one API
/// socket each, plus an SSH session for each of the `concurrency` devices
/// that may be backing up at once), saying so when the system caps it lower.
fn raise_file_limit(devices: u64, concurrency: u64) {
    let need = devices.saturating_add(concurrency).saturating_add(BASE_FILES);
    #[cfg(unix)]
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < need => {
            let target = need.min(hard);
            match rlimit::Resource::NOFILE.set(target, hard) {
                Ok(()) if target >= need => tracing::info!(
                    open_files = target,
                    devices,
                    "open-file limit raised for the device sessions"
                ),
                Ok(()) | Err(_) => tracing::warn!(
                    open_files = target,
                    needed = need,
                    hard_limit = hard,
                    devices,
                    "the open-file limit is too low for this many device sessions; raise it (LimitNOFILE= in the service unit, or ulimit -n)"
                ),
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the open-file limit"),
    }
    #[cfg(not(unix))]
    let _ = need;
}
