//! The uplink: one long-lived `Connect` stream to the collector.
//!
//! Per session: send `Hello` (with the first unacknowledged sequence number),
//! wait for `Welcome` (the collector's committed high-water mark; everything up
//! to it is dropped from the outbox), then stream batches from the outbox with
//! at most `max_in_flight_batches` unacknowledged, deleting records only when an
//! `Ack` arrives. Any failure ends the session; the next one resends whatever
//! is still in the outbox. Sessions are retried forever with exponential
//! backoff and equal jitter (uniform in [d/2, d]).
//!
//! Some refusals do not pass with time: the agent was revoked, its certificate
//! was replaced or expired while it was offline, or another instance streams
//! under its id (a cloned machine). Those are logged at error level with the
//! command that recovers, and retried only at the longest backoff. The
//! `Welcome` also carries the collector's clock: a skew of more than a minute
//! is warned about, and renewal is timed on the collector's clock.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_proto::agent_v1::{
    AgentMessage, Batch, CollectorMessage, Hello, agent_message, collector_message, command,
};
use outpost_proto::{MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use rand::Rng as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::dial::{self, CollectorAddr};
use crate::discovery::service::DiscoveryCommand;
use crate::outbox::{Outbox, OutboxError, blocking};
use crate::routeros::fleet::FleetCommand;
use crate::signals::Signals;

/// How long the collector has to answer `Hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(30);
/// A session that lasted this long resets the backoff.
const STABLE_SESSION: Duration = Duration::from_secs(60);
/// First retry delay.
const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Encoded observations per batch stay below this, well under the message limit.
const BATCH_BYTES: usize = MAX_MESSAGE_BYTES / 2;
/// Clock difference to the collector worth a warning.
const SKEW_WARNING_MS: i64 = 60_000;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// Could not connect.
    #[error(transparent)]
    Dial(#[from] dial::DialError),
    /// The collector answered with an error status.
    #[error("collector: {code:?}: {message}")]
    Status {
        /// gRPC code.
        code: tonic::Code,
        /// Message.
        message: String,
    },
    /// The collector broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl From<tonic::Status> for UplinkError {
    fn from(s: tonic::Status) -> Self {
        let message = match std::error::Error::source(&s) {
            Some(src) => format!("{}: {}", s.message(), dial::chain(src)),
            None => s.message().to_owned(),
        };
        Self::Status {
            code: s.code(),
            message,
        }
    }
}

/// The uplink task's settings and shared state.
pub struct Uplink {
    /// Where to connect.
    pub addr: CollectorAddr,
    /// Current TLS configuration (replaced on renewal).
    pub tls: watch::Receiver<Arc<rustls::ClientConfig>>,
    /// The outbox.
    pub outbox: Arc<Outbox>,
    /// Wake-ups.
    pub signals: Arc<Signals>,
    /// Observations per batch.
    pub batch_max: usize,
    /// Unacknowledged batches.
    pub max_in_flight: usize,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// The outbox's instance id, sent in `Hello`.
    pub instance_id: String,
    /// The data directory, named in recovery instructions.
    pub data_dir: std::path::PathBuf,
    /// Device commands from the collector go to the fleet.
    pub fleet: mpsc::Sender<FleetCommand>,
    /// Discovery commands from the collector go to the discovery service.
    pub discovery: mpsc::Sender<crate::discovery::service::DiscoveryCommand>,
    /// Live traffic from the fleet, sent outside the outbox.
    pub live: tokio::sync::Mutex<mpsc::Receiver<outpost_proto::agent_v1::LiveTraffic>>,
    /// Scan progress from discovery, sent outside the outbox.
    pub progress: tokio::sync::Mutex<mpsc::Receiver<outpost_proto::agent_v1::ScanProgress>>,
    /// Where tunnels may go, kept in step with the assignments.
    pub tunnels: Arc<crate::tunnel::TunnelPolicy>,
}

/// A refusal that retrying soon will not cure: the operator has to act.
#[derive(Debug, PartialEq, Eq)]
enum Stuck {
    Revoked,
    Replaced,
    Expired,
    OtherInstance,
}

/// What an error from the collector means for this agent, if it is one of the
/// refusals that waiting does not fix.
fn stuck(error: &UplinkError, cert_expired: bool) -> Option<Stuck> {
    if cert_expired {
        return Some(Stuck::Expired);
    }
    match error {
        UplinkError::Status { code, message } => match code {
            tonic::Code::AlreadyExists => Some(Stuck::OtherInstance),
            tonic::Code::PermissionDenied if message.contains("replaced") => Some(Stuck::Replaced),
            tonic::Code::PermissionDenied if message.contains("revoked") => Some(Stuck::Revoked),
            // A refusal at the TLS handshake arrives as the alert's name.
            _ if message.contains("CertificateRevoked") => Some(Stuck::Revoked),
            _ if message.contains("CertificateExpired") => Some(Stuck::Expired),
            _ => None,
        },
        UplinkError::Dial(e) => {
            let text = dial::chain(e);
            if text.contains("CertificateRevoked") {
                Some(Stuck::Revoked)
            } else if text.contains("CertificateExpired") {
                Some(Stuck::Expired)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Exponential backoff with equal jitter: uniformly random in [d/2, d], where d
/// doubles per failed attempt up to `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let d = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(20)))
        .min(max);
    let half = d / 2;
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=half.as_millis() as u64))
}

impl Uplink {
    /// Runs sessions until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let result = self.session(&shutdown).await;
            if shutdown.is_cancelled() {
                return;
            }
            if started.elapsed() >= STABLE_SESSION {
                attempt = 0;
            }
            let mut delay = backoff(attempt, self.max_backoff);
            attempt = attempt.saturating_add(1);
            match result {
                Ok(()) => tracing::info!("collector closed the stream"),
                Err(error) => {
                    let not_after = self.signals.cert_not_after();
                    let expired = not_after > 0 && self.signals.collector_now_secs() >= not_after;
                    match stuck(&error, expired) {
                        Some(why) => {
                            // Nothing changes until an operator acts: say what to do,
                            // and knock only as often as the longest backoff.
                            self.report_stuck(&why, &error, not_after);
                            delay = self.max_backoff;
                        }
                        None => tracing::warn!(error = %error, collector = %self.addr, "uplink down"),
                    }
                }
            }
            tracing::info!(delay_ms = delay.as_millis() as u64, attempt, "reconnecting");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn to_discovery(&self, command: DiscoveryCommand) {
        if self.discovery.send(command).await.is_err() {
            tracing::debug!("discovery command after discovery stopped ignored");
        }
    }

    async fn to_fleet(&self, command: FleetCommand) {
        if self.fleet.send(command).await.is_err() {
            tracing::debug!("device command after the fleet stopped ignored");
        }
    }

    fn report_stuck(&self, why: &Stuck, error: &UplinkError, not_after: i64) {
        let reenroll = format!(
            "outpost-agent enroll --collector {} --token-file TOKEN_FILE --data-dir {}",
            self.addr,
            self.data_dir.display()
        );
        match why {
            Stuck::Revoked => tracing::error!(
                %error,
                collector = %self.addr,
                "the collector has revoked this agent; it will not accept it again. If that was a mistake, \
                 create a token and enroll again (a new agent id): {reenroll}"
            ),
            Stuck::Replaced => tracing::error!(
                %error,
                collector = %self.addr,
                "the collector no longer accepts this agent's certificate: a newer one was issued for the same agent \
                 (renewed or re-enrolled from another copy of this data directory?). Enroll this copy again with a \
                 token for its own site: {reenroll}"
            ),
            Stuck::Expired => tracing::error!(
                %error,
                collector = %self.addr,
                cert_not_after = not_after,
                "this agent's certificate expired (Unix time {not_after}) while it could not reach the collector to \
                 renew it. Recover with a same-site re-enrollment, which keeps the agent id and the outbox: create a \
                 token for the same tenant and site, then run {reenroll}"
            ),
            Stuck::OtherInstance => tracing::error!(
                %error,
                collector = %self.addr,
                instance = %self.instance_id,
                "another instance of this agent identity is streaming (a cloned machine or a copied data directory?); \
                 this one has stopped sending. Enroll this copy with a token for its own site: {reenroll}"
            ),
        }
    }

    async fn session(&self, shutdown: &CancellationToken) -> Result<(), UplinkError> {
        let tls = self.tls.borrow().clone();
        let channel = tokio::select! {
            c = dial::channel(&self.addr, tls) => c?,
            () = shutdown.cancelled() => return Ok(()),
        };
        let mut client = dial::client_on(channel.clone());
        let (first_unacked, depth) = blocking(&self.outbox, |o| Ok((o.first_unacked()?, o.depth()?))).await?;
        let (tx, rx) = mpsc::channel::<AgentMessage>(self.max_in_flight + 2);
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_version: crate::VERSION.to_owned(),
            capabilities: vec!["host-facts".into(), "metrics".into(), "routeros".into()],
            first_unacked_seq: first_unacked,
            outbox_depth: depth,
            instance_id: self.instance_id.clone(),
        };
        // Capacity is at least 2, so the first message always fits.
        let _ = tx.try_send(AgentMessage {
            kind: Some(agent_message::Kind::Hello(hello)),
        });
        let tunnels_channel = channel;
        let mut inbound = client.connect(ReceiverStream::new(rx)).await?.into_inner();
        let welcome = match tokio::time::timeout(WELCOME_TIMEOUT, inbound.message()).await {
            Err(_) => {
                return Err(UplinkError::Protocol(
                    "no Welcome from the collector within 30 s".into(),
                ));
            }
            Ok(m) => match m? {
                Some(CollectorMessage {
                    kind: Some(collector_message::Kind::Welcome(w)),
                }) => w,
                Some(_) => {
                    return Err(UplinkError::Protocol(
                        "first message from the collector was not Welcome".into(),
                    ));
                }
                None => {
                    return Err(UplinkError::Protocol(
                        "collector closed the stream before Welcome".into(),
                    ));
                }
            },
        };
        if welcome.collector_time_ms > 0 {
            let skew = crate::now_ms() - welcome.collector_time_ms;
            self.signals.set_clock_skew_ms(skew);
            if skew.abs() > SKEW_WARNING_MS {
                tracing::warn!(
                    skew_ms = skew,
                    "this host's clock is {:.0} s {} the collector's; fix its time synchronisation \
                     (certificate renewal follows the collector's clock meanwhile)",
                    skew.abs() as f64 / 1000.0,
                    if skew > 0 { "ahead of" } else { "behind" }
                );
            }
        }
        let acked = welcome.acked_through;
        let dropped = blocking(&self.outbox, move |o| o.reconcile(acked)).await?;
        tracing::info!(
            collector = %self.addr,
            acked_through = acked,
            already_committed = dropped,
            outbox_depth = depth.saturating_sub(dropped),
            "connected to the collector"
        );
        self.signals.host_facts_now.notify_one();

        let mut live = self.live.lock().await;
        let mut progress = self.progress.lock().await;
        // Samples and progress queued while disconnected are stale.
        while live.try_recv().is_ok() {}
        while progress.try_recv().is_ok() {}
        let mut sent_through = acked;
        // (last seq, records) of each unacknowledged batch.
        let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
        loop {
            while in_flight.len() < self.max_in_flight {
                let (after, max) = (sent_through, self.batch_max);
                let (records, depth) = blocking(&self.outbox, move |o| {
                    Ok((o.read_after(after, max, BATCH_BYTES)?, o.depth()?))
                })
                .await?;
                let Some(last) = records.last().map(|r| r.seq) else {
                    break;
                };
                let n = records.len() as u64;
                // What will still wait in the outbox once everything sent so far is committed.
                let pending: u64 = in_flight.iter().map(|(_, c)| c).sum::<u64>() + n;
                let batch = Batch {
                    observations: records.into_iter().map(|r| r.observation).collect(),
                    outbox_depth: depth.saturating_sub(pending),
                };
                if tx
                    .send(AgentMessage {
                        kind: Some(agent_message::Kind::Batch(batch)),
                    })
                    .await
                    .is_err()
                {
                    return Err(UplinkError::Protocol("the request stream closed".into()));
                }
                in_flight.push_back((last, n));
                sent_through = last;
            }
            let window_open = in_flight.len() < self.max_in_flight;
            tokio::select! {
                m = inbound.message() => match m? {
                    Some(CollectorMessage { kind: Some(collector_message::Kind::Ack(ack)) }) => {
                        for r in &ack.rejected {
                            tracing::warn!(seq = r.seq, reason = %r.reason, "collector rejected an observation; dropping it");
                        }
                        let through = ack.acked_through;
                        blocking(&self.outbox, move |o| o.ack_through(through)).await?;
                        while in_flight.front().is_some_and(|&(s, _)| s <= through) {
                            in_flight.pop_front();
                        }
                    }
                    Some(CollectorMessage { kind: Some(collector_message::Kind::Command(cmd)) }) => match cmd.kind {
                        Some(command::Kind::ReportHostFacts(_)) => self.signals.host_facts_now.notify_one(),
                        Some(command::Kind::RenewCertificate(_)) => {
                            tracing::info!("collector asked for certificate renewal");
                            self.signals.renew_now.notify_one();
                        }
                        Some(command::Kind::AssignDevices(a)) => {
                            self.tunnels.set_devices(a.devices.iter().map(|d| d.address.clone()));
                            self.to_fleet(FleetCommand::Assign(a)).await
                        }
                        Some(command::Kind::WatchTraffic(w)) => self.to_fleet(FleetCommand::Watch(w)).await,
                        Some(command::Kind::BackupNow(b)) => self.to_fleet(FleetCommand::Backup(b)).await,
                        Some(command::Kind::AssignDiscovery(a)) => {
                            self.tunnels.set_networks(a.jobs.iter().flat_map(|j| j.targets.iter().map(String::as_str)));
                            self.to_discovery(DiscoveryCommand::Assign(a)).await
                        }
                        Some(command::Kind::OpenTunnel(open)) => {
                            // Its own stream on this connection, its own task: a tunnel
                            // never waits for telemetry, nor telemetry for it.
                            tokio::spawn(crate::tunnel::run(tunnels_channel.clone(), self.tunnels.clone(), open));
                        }
                        Some(command::Kind::ScanNow(s)) => self.to_discovery(DiscoveryCommand::ScanNow(s)).await,
                        None => tracing::warn!(command_id = %cmd.command_id, "unknown command ignored"),
                    },
                    Some(_) => tracing::debug!("unexpected message from the collector ignored"),
                    None => return Ok(()),
                },
                () = self.signals.new_data.notified(), if window_open => {}
                Some(traffic) = live.recv() => {
                    // Live samples are worth nothing late: dropped when the stream is busy.
                    let _ = tx.try_send(AgentMessage { kind: Some(agent_message::Kind::LiveTraffic(traffic)) });
                }
                Some(p) = progress.recv() => {
                    let _ = tx.try_send(AgentMessage { kind: Some(agent_message::Kind::ScanProgress(p)) });
                }
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_need_an_operator_are_recognised() {
        let status = |code, message: &str| UplinkError::Status {
            code,
            message: message.into(),
        };
        let cases = [
            (
                status(tonic::Code::AlreadyExists, "agent id x is already streaming"),
                Some(Stuck::OtherInstance),
            ),
            (
                status(tonic::Code::PermissionDenied, "this agent has been revoked"),
                Some(Stuck::Revoked),
            ),
            (
                status(
                    tonic::Code::PermissionDenied,
                    "this certificate has been replaced by a newer one",
                ),
                Some(Stuck::Replaced),
            ),
            (
                status(
                    tonic::Code::Unknown,
                    "transport error: received fatal alert: CertificateRevoked",
                ),
                Some(Stuck::Revoked),
            ),
            (
                status(tonic::Code::Unavailable, "the collector's database is unavailable"),
                None,
            ),
            (UplinkError::Protocol("no Welcome".into()), None),
        ];
        for (error, want) in cases {
            assert_eq!(stuck(&error, false), want, "{error}");
        }
        assert_eq!(stuck(&UplinkError::Protocol("x".into()), true), Some(Stuck::Expired));
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let max = Duration::from_secs(60);
        for attempt in 0..30 {
            let d = backoff(attempt, max);
            let cap = BASE_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt.min(20)))
                .min(max);
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {attempt}: {d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
        }
        assert!(backoff(40, max) <= max);
    }
}
