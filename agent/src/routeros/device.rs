//! One device's task: a persistent logged-in session, polled on its slot.
//!
//! The session is opened once and reused for every poll; it is reopened only
//! when it breaks. Connecting and polling take a permit from the fleet's
//! global bound, so a fleet of thousands never has more than that many
//! conversations in flight. Failures to connect or log in are retried with
//! the per-device breaker's backoff; the device's state is reported to the
//! collector when it changes (and once when the task starts).
use std::sync::Arc;
use std::time::Duration;

use outpost_proto::agent_v1::observation::Body;
use outpost_proto::agent_v1::{DeviceState, DeviceStatus, ManagedDevice};
use outpost_routeros::{Client, ClientConfig, Error, ErrorKind, Fingerprint};
use rand::Rng as _;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

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
    pub(super) sink: ReportSink,
    pub(super) requests: mpsc::Receiver<DeviceRequest>,
    pub(super) live: super::live::LiveSender,
    pub(super) stop: CancellationToken,
    /// Devices in the fleet when this task started: the first polls of a new
    /// assignment are spread over a window that grows with it.
    pub(super) fleet_size: usize,
}

/// The state last reported, to report only changes.
#[derive(Debug, Default, PartialEq)]
struct Reported {
    state: i32,
    reason: String,
    fingerprint: Vec<u8>,
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
    if let Ok(port) = u16::try_from(device.api_port) {
        if port != 0 {
            cfg.port = port;
        }
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
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep_until(next) => {}
                request = self.requests.recv() => match request {
                    None => break,
                    Some(DeviceRequest::Backup) => { state.backup_requested = true; next = tokio::time::Instant::now(); continue; }
                    Some(DeviceRequest::Live(r)) => {
                        live.request(r, client.as_ref(), &self.device.device_id, &self.live).await;
                        continue;
                    }
                },
            }
            if client.as_ref().is_none_or(Client::is_closed) {
                live.stop();
                let connected = {
                    let _permit = self.permits.acquire().await;
                    Client::connect(client_config(&self.device, learnt_pin)).await
                };
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
                        self.report(&mut reported, state_of(&error), error.to_string(), presented)
                            .await;
                        let delay = breaker.failure(rand::thread_rng().r#gen());
                        tracing::debug!(device = %self.device.device_id, %error, delay_ms = delay.as_millis() as u64, "device connection failed");
                        next = tokio::time::Instant::now() + delay;
                        continue;
                    }
                }
            }
            let Some(c) = client.as_ref() else { continue };
            let result = {
                let _permit = self.permits.acquire().await;
                super::poll::run(c, &self.device, &mut state).await
            };
            match result {
                Ok(reports) => {
                    breaker.success();
                    let fingerprint = learnt_pin.map(|f| f.as_bytes().to_vec()).unwrap_or_default();
                    self.report(&mut reported, DeviceState::Up, String::new(), fingerprint)
                        .await;
                    let at = crate::now_ms();
                    for body in reports {
                        if !self.sink.send(at, body).await {
                            return;
                        }
                    }
                    live.known_interfaces.clone_from(&state.interfaces);
                    live.resume(client.as_ref(), &self.device.device_id, &self.live).await;
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
                    self.report(&mut reported, state_of(&error), error.to_string(), Vec::new())
                        .await;
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

    async fn report(&self, last: &mut Option<Reported>, state: DeviceState, reason: String, fingerprint: Vec<u8>) {
        let now = Reported {
            state: state as i32,
            reason,
            fingerprint,
        };
        if last.as_ref() == Some(&now) {
            return;
        }
        if state != DeviceState::Up {
            tracing::warn!(device = %self.device.device_id, address = %self.device.address, state = ?state, reason = %now.reason, "device state changed");
        } else {
            tracing::info!(device = %self.device.device_id, address = %self.device.address, "device is up");
        }
        let status = DeviceStatus {
            device_id: self.device.device_id.clone(),
            state: now.state,
            reason: now.reason.clone(),
            api_tls_fingerprint_sha256: now.fingerprint.clone(),
            ssh_host_key_sha256: Vec::new(),
        };
        self.sink.send(crate::now_ms(), Body::DeviceStatus(status)).await;
        *last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_routeros::Transport;

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
}
