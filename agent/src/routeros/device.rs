//! One device's task: a persistent logged-in session, polled on its slot.
//!
//! The session is opened once and reused for every poll; it is reopened only
//! when it breaks. Connecting and polling take a permit from the fleet's
//! global bound, so a fleet of thousands never has more than that many
//! conversations in flight. Failures to connect or log in are retried with
//! the per-device breaker's backoff; the device's state is reported to the
//! collector when it changes (and once when the task starts).
//!
//! Configuration backups run after a successful poll when one is due (see
//! [`super::backup_memory`]), over SSH, outside the API session, under a
//! permit of their own. The SSH host key learnt on first use is reported in
//! a `DeviceStatus` and pinned for the rest of the task. A failed backup (a
//! changed host key among the causes) is reported in the status's
//! `backup_problem`, apart from the device's state, which describes its API;
//! it is cleared by the next backup that works. A failed backup is retried
//! after [`BACKUP_RETRY`] unless the collector asks again.
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::channel::mpsc as requests;
use outpost_proto::agent_v1::observation::Body;
use outpost_proto::agent_v1::{DeviceState, DeviceStatus, ManagedDevice};
use outpost_routeros::{Client, ClientConfig, Error, ErrorKind, Fingerprint};
use rand::Rng as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::backup::{self, BackupError, BackupOptions, HostKeyFingerprint, VersionHint};
use super::backup_memory::{Asked, BackupMemory};
use super::live::LiveRequest;
use super::poll::PollState;
use super::schedule::{self, Breaker};
use super::sink::ReportSink;

/// Requests from the fleet to one device task.
#[derive(Debug)]
pub enum DeviceRequest {
    /// Take a configuration backup now.
    Backup,
    /// Start or stop live traffic.
    Live(LiveRequest),
}

/// Everything one device task needs.
pub struct DeviceTask {
    pub(super) device: Arc<ManagedDevice>,
    pub(super) permits: Arc<Semaphore>,
    /// Backups in flight, fleet-wide (see [`super::fleet::BACKUP_CONCURRENCY`]).
    pub(super) backup_permits: Arc<Semaphore>,
    pub(super) sink: ReportSink,
    pub(super) requests: requests::Receiver<DeviceRequest>,
    pub(super) live: super::live::LiveSender,
    pub(super) stop: CancellationToken,
    /// Devices in the fleet when this task started: the first polls of a new
    /// assignment are spread over a window that grows with it.
    pub(super) fleet_size: usize,
    pub(super) backups: BackupMemory,
}

/// Wait before retrying a failed backup (unless the collector asks).
pub const BACKUP_RETRY: Duration = Duration::from_secs(15 * 60);

/// The SSH side of a device task: host key and backup retries.
#[derive(Debug, Default)]
struct Ssh {
    /// Host key accepted on first use in this task (no collector pin).
    learnt: Option<HostKeyFingerprint>,
    /// Host key the device presented last.
    presented: Option<HostKeyFingerprint>,
    /// Why the last backup failed, as reported, until one succeeds again.
    problem: Option<String>,
    /// The collector asked for a backup.
    requested: bool,
    retry_at: Option<tokio::time::Instant>,
}

impl Ssh {
    fn fingerprint(&self) -> Vec<u8> {
        self.presented
            .or(self.learnt)
            .map(|f| f.as_bytes().to_vec())
            .unwrap_or_default()
    }

    fn problem(&self) -> String {
        self.problem.clone().unwrap_or_default()
    }
}

/// The state last reported, to report only changes.
#[derive(Debug, Default, PartialEq)]
struct Reported {
    state: i32,
    reason: String,
    fingerprint: Vec<u8>,
    ssh_fingerprint: Vec<u8>,
    backup_problem: String,
}

/// The client settings for `device`, with the pin learnt this run if the
/// collector has none yet.
pub fn client_config(device: &ManagedDevice, learnt_pin: Option<Fingerprint>) -> ClientConfig {
    let pin = <[u8; 32]>::try_from(device.api_tls_pin_sha256.as_slice())
        .ok()
        .map(Fingerprint::from)
        .or(learnt_pin);
    let mut cfg = if device.api_tls {
        ClientConfig::tls(
            device.address.clone(),
            device.username.clone(),
            device.password.clone(),
            pin,
        )
    } else {
        ClientConfig::plain(device.address.clone(), device.username.clone(), device.password.clone())
    };
    if let Ok(port) = u16::try_from(device.api_port)
        && port != 0
    {
        cfg.port = port;
    }
    cfg
}

/// The state an error puts a device in.
pub fn state_of(error: &Error) -> DeviceState {
    match error.kind() {
        ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::SessionLost => DeviceState::Unreachable,
        ErrorKind::AuthFailed => DeviceState::AuthFailed,
        ErrorKind::NoApiPolicy => DeviceState::NoApiPolicy,
        ErrorKind::TlsPinMismatch => DeviceState::TlsPinMismatch,
        ErrorKind::TlsFailed => DeviceState::TlsUnsupported,
        ErrorKind::CommandFailed => DeviceState::ProtocolError,
        _ => DeviceState::ProtocolError,
    }
}

impl DeviceTask {
    /// Polls until stopped.
    pub async fn run(mut self) {
        let interval = Duration::from_secs(u64::from(self.device.poll_interval_secs.max(1)));
        let first = schedule::offset(
            &self.device.device_id,
            schedule::first_window(self.fleet_size, interval),
        );
        let mut next = tokio::time::Instant::now() + first;
        let mut breaker = Breaker::default();
        let mut reported: Option<Reported> = None;
        let mut learnt_pin: Option<Fingerprint> = None;
        let mut client: Option<Client> = None;
        let mut state = PollState::default();
        let mut live = super::live::Live::default();
        let mut ssh = Ssh::default();
        // This future lives as long as the device and is as large as what it
        // holds across its largest await; with thousands of devices that is
        // most of the agent's memory. So every await but the idle wait below
        // is boxed: a poll, a connect or a backup takes its memory only
        // while it runs.
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep_until(next) => {}
                request = self.requests.next() => match request {
                    None => break,
                    Some(DeviceRequest::Backup) => {
                        state.backup_requested = true;
                        ssh.requested = true;
                        ssh.retry_at = None;
                        next = tokio::time::Instant::now();
                        continue;
                    }
                    Some(DeviceRequest::Live(r)) => {
                        Box::pin(live.request(r, client.as_ref(), &self.device.device_id, &self.live)).await;
                        continue;
                    }
                },
            }
            if client.as_ref().is_none_or(Client::is_closed) {
                live.stop();
                let connected = Box::pin(async {
                    let _permit = self.permits.acquire().await;
                    Client::connect(client_config(&self.device, learnt_pin)).await
                })
                .await;
                match connected {
                    Ok((c, info)) => {
                        if learnt_pin.is_none() {
                            learnt_pin = info.tls_fingerprint;
                        }
                        client = Some(c);
                        state.session_started();
                    }
                    Err(error) => {
                        let presented = match &error {
                            Error::PinMismatch { presented, .. } => presented.as_bytes().to_vec(),
                            _ => Vec::new(),
                        };
                        Box::pin(self.report(&mut reported, state_of(&error), error.to_string(), presented, &ssh))
                            .await;
                        let delay = breaker.failure(rand::thread_rng().r#gen());
                        tracing::debug!(device = %self.device.device_id, %error, delay_ms = delay.as_millis() as u64, "device connection failed");
                        next = tokio::time::Instant::now() + delay;
                        continue;
                    }
                }
            }
            let Some(c) = client.as_ref() else { continue };
            let result = Box::pin(async {
                let _permit = self.permits.acquire().await;
                super::poll::run(c, &self.device, &mut state).await
            })
            .await;
            match result {
                Ok(reports) => {
                    breaker.success();
                    let fingerprint = learnt_pin.map(|f| f.as_bytes().to_vec()).unwrap_or_default();
                    Box::pin(self.report(&mut reported, DeviceState::Up, String::new(), fingerprint.clone(), &ssh))
                        .await;
                    let at = crate::now_ms();
                    for body in reports {
                        if !Box::pin(self.sink.send(at, body)).await {
                            return;
                        }
                    }
                    if !Box::pin(self.backup_if_due(&mut state, &mut ssh, &mut reported, fingerprint)).await {
                        return;
                    }
                    live.known_interfaces.clone_from(&state.interfaces);
                    Box::pin(live.resume(client.as_ref(), &self.device.device_id, &self.live)).await;
                    next += interval;
                    let now = tokio::time::Instant::now();
                    if next <= now {
                        // Late (a slow device or a busy agent): skip the missed
                        // slots rather than firing them back to back.
                        let behind = now - next;
                        let skipped = behind.as_millis() / interval.as_millis().max(1) + 1;
                        next += interval * u32::try_from(skipped).unwrap_or(u32::MAX);
                    }
                }
                Err(error) => {
                    tracing::debug!(device = %self.device.device_id, %error, "poll failed");
                    Box::pin(self.report(&mut reported, state_of(&error), error.to_string(), Vec::new(), &ssh)).await;
                    if let Some(c) = client.take() {
                        c.close();
                    }
                    next = tokio::time::Instant::now() + breaker.failure(rand::thread_rng().r#gen());
                }
            }
        }
        live.stop();
        if let Some(c) = client.take() {
            c.close();
        }
    }

    /// Takes a configuration backup if one is due, and sends it if it is
    /// worth sending. False when the agent is stopping.
    async fn backup_if_due(
        &self,
        state: &mut PollState,
        ssh: &mut Ssh,
        reported: &mut Option<Reported>,
        api_fingerprint: Vec<u8>,
    ) -> bool {
        let id = &self.device.device_id;
        if self.device.backup_key.len() != outpost_vault::KEY_LEN {
            // No key from the collector: backups are not set up for it.
            return true;
        }
        let now = tokio::time::Instant::now();
        if ssh.retry_at.is_some_and(|at| now < at) {
            return true;
        }
        let asked = Asked {
            requested: ssh.requested,
            config_changed: state.backup_requested,
            reports_changes: state.reports_config_changes(),
        };
        let Some(trigger) = self.backups.due(id, asked, now) else {
            return true;
        };
        let mut opts = BackupOptions::new(VersionHint::from_major(state.ros_major));
        opts.trigger = trigger;
        opts.learnt_pin = ssh.learnt;
        // All backup slots busy (the storm after a start): it stays due and
        // is tried again after the next poll, which must not wait for it.
        let Ok(_permit) = self.backup_permits.try_acquire() else {
            return true;
        };
        let result = backup::take_backup_with(&self.device, &opts).await;
        match result {
            Ok(taken) => {
                ssh.retry_at = None;
                ssh.requested = false;
                state.backup_requested = false;
                let first_use = ssh.learnt.is_none() && self.device.ssh_host_key_sha256.is_empty();
                if first_use {
                    ssh.learnt = Some(taken.host_key);
                    tracing::info!(device = %id, host_key = %taken.host_key, "SSH host key accepted on first use");
                }
                if ssh.problem.take().is_some() {
                    tracing::info!(device = %id, "configuration backups work again");
                }
                ssh.presented = Some(taken.host_key);
                self.report(reported, DeviceState::Up, String::new(), api_fingerprint, ssh)
                    .await;
                let backup = taken.backup;
                if self
                    .backups
                    .record(id, &backup.normalized_hmac, trigger, tokio::time::Instant::now())
                {
                    tracing::info!(device = %id, trigger = trigger.as_str(), version = %backup.version, "configuration backup taken");
                    return self.sink.send(crate::now_ms(), Body::ConfigBackup(backup)).await;
                }
                tracing::debug!(device = %id, trigger = trigger.as_str(), "configuration unchanged; backup not sent");
            }
            Err(error) => {
                ssh.retry_at = Some(tokio::time::Instant::now() + BACKUP_RETRY);
                self.backups.owe(id, trigger);
                let message = error.to_string();
                if let BackupError::HostKeyMismatch { presented, .. } = &error {
                    ssh.presented = Some(*presented);
                }
                if ssh.problem.as_ref() != Some(&message) {
                    tracing::warn!(device = %id, address = %self.device.address, %error, "configuration backup failed");
                    ssh.problem = Some(message);
                    self.report(reported, DeviceState::Up, String::new(), api_fingerprint, ssh)
                        .await;
                } else {
                    tracing::debug!(device = %id, %error, "configuration backup failed again");
                }
            }
        }
        true
    }

    async fn report(
        &self,
        last: &mut Option<Reported>,
        state: DeviceState,
        reason: String,
        fingerprint: Vec<u8>,
        ssh: &Ssh,
    ) {
        let now = Reported {
            state: state as i32,
            reason,
            fingerprint,
            ssh_fingerprint: ssh.fingerprint(),
            backup_problem: ssh.problem(),
        };
        if last.as_ref() == Some(&now) {
            return;
        }
        // A status that only moves a fingerprint or the backup problem is
        // logged where that happens, not here.
        if last
            .as_ref()
            .is_none_or(|l| l.state != now.state || l.reason != now.reason)
        {
            if state == DeviceState::Up {
                tracing::info!(device = %self.device.device_id, address = %self.device.address, "device is up");
            } else {
                tracing::warn!(device = %self.device.device_id, address = %self.device.address, state = ?state, reason = %now.reason, "device state changed");
            }
        }
        let status = DeviceStatus {
            device_id: self.device.device_id.clone(),
            state: now.state,
            reason: now.reason.clone(),
            api_tls_fingerprint_sha256: now.fingerprint.clone(),
            ssh_host_key_sha256: now.ssh_fingerprint.clone(),
            backup_problem: now.backup_problem.clone(),
        };
        self.sink.send(crate::now_ms(), Body::DeviceStatus(status)).await;
        *last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_routeros::Transport;
    use tokio::sync::mpsc;

    #[test]
    fn the_collectors_pin_wins_over_one_learnt_and_ports_default() {
        let mut d = ManagedDevice {
            device_id: "d".into(),
            address: "127.0.1.1".into(),
            api_tls: true,
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        let learnt = Fingerprint::from([7u8; 32]);
        let cfg = client_config(&d, Some(learnt));
        assert_eq!(cfg.port, 8729);
        assert_eq!(cfg.transport, Transport::Tls { pin: Some(learnt) });
        d.api_tls_pin_sha256 = vec![9u8; 32];
        d.api_port = 18729;
        let cfg = client_config(&d, Some(learnt));
        assert_eq!(cfg.port, 18729);
        assert_eq!(
            cfg.transport,
            Transport::Tls {
                pin: Some(Fingerprint::from([9u8; 32]))
            }
        );
        d.api_tls = false;
        d.api_port = 0;
        assert_eq!(client_config(&d, None).port, 8728);
    }

    /// Waits for the next report that `pick` accepts, skipping the others.
    async fn next<T>(rx: &mut mpsc::Receiver<(i64, Body)>, mut pick: impl FnMut(Body) -> Option<T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let (_, body) = rx.recv().await.expect("the task is running");
                if let Some(t) = pick(body) {
                    return t;
                }
            }
        })
        .await
        .expect("the report within 30 s")
    }

    #[tokio::test]
    async fn backups_follow_the_poll_pin_the_host_key_and_skip_unchanged_exports() {
        use outpost_proto::agent_v1::ConfigBackup;
        let fleet = outpost_sim::Fleet::start(outpost_sim::FleetConfig {
            devices: 1,
            first_ip: std::net::Ipv4Addr::new(127, 0, 156, 1),
            ros: outpost_sim::RosMix::V7,
            api_port: 0,
            api_ssl_port: 0,
            ssh_port: 0,
            ..Default::default()
        })
        .await
        .expect("fleet");
        let d = fleet.devices()[0].clone();
        let device = ManagedDevice {
            device_id: "dev-backup".into(),
            address: d.ip.to_string(),
            api_port: u32::from(d.api.port()),
            username: "admin".into(),
            password: "admin".into(),
            poll_interval_secs: 1,
            ssh_port: u32::from(d.ssh.port()),
            backup_key: vec![3; 32],
            ..Default::default()
        };
        let (sink, mut rx) = ReportSink::for_tests();
        let (mut requests, requests_rx) = requests::channel(8);
        let (live, _live_rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let task = DeviceTask {
            device: Arc::new(device),
            permits: Arc::new(Semaphore::new(1)),
            backup_permits: Arc::new(Semaphore::new(1)),
            sink,
            requests: requests_rx,
            live,
            stop: stop.clone(),
            fleet_size: 1,
            backups: BackupMemory::default(),
        };
        let running = tokio::spawn(task.run());
        let backup = |b: Body| match b {
            Body::ConfigBackup(c) => Some(c),
            _ => None,
        };
        let poll = |b: Body| matches!(b, Body::DevicePoll(_)).then_some(());
        let key = fleet.ssh_host_key_sha256(d.ip).expect("key").to_vec();

        // First use: the host key is reported (before the backup is sent),
        // then the backup.
        let status = next(&mut rx, |b| match b {
            Body::DeviceStatus(s) if !s.ssh_host_key_sha256.is_empty() => Some(s),
            Body::ConfigBackup(_) => panic!("the host key is reported first"),
            _ => None,
        })
        .await;
        let first: ConfigBackup = next(&mut rx, backup).await;
        assert_eq!(first.trigger, "first");
        assert_eq!(status.ssh_host_key_sha256, key);
        assert_eq!(status.state, DeviceState::Up as i32);

        // Asked again with nothing changed: taken, not sent. The poll after
        // the one that ran with the request proves that round is over.
        requests.try_send(DeviceRequest::Backup).expect("request");
        next(&mut rx, poll).await;
        next(&mut rx, poll).await;
        fleet
            .control(&format!("config {} /ip dns set servers=192.0.2.53", d.ip))
            .await
            .expect("config");
        requests.try_send(DeviceRequest::Backup).expect("request");
        let changed: ConfigBackup = next(&mut rx, backup).await;
        assert_eq!(changed.trigger, "requested");
        assert_ne!(changed.normalized_hmac, first.normalized_hmac);

        // A new host key is not accepted: reported, state unchanged.
        fleet
            .control(&format!("rotate-host-key {}", d.ip))
            .await
            .expect("rotate");
        requests.try_send(DeviceRequest::Backup).expect("request");
        let status = next(&mut rx, |b| match b {
            Body::DeviceStatus(s) if s.backup_problem.contains("SSH host key") => Some(s),
            Body::ConfigBackup(_) => panic!("a backup under a changed host key"),
            _ => None,
        })
        .await;
        assert_eq!(status.state, DeviceState::Up as i32);
        assert_eq!(status.reason, "", "the API side is fine");
        assert_eq!(
            status.ssh_host_key_sha256,
            fleet.ssh_host_key_sha256(d.ip).expect("key")
        );
        stop.cancel();
        running.await.expect("task ends");
    }
}
