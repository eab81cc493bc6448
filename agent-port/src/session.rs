//! `Connect`: one agent's uplink stream. `Hello` → `Welcome` with the
//! committed high-water mark, then batches are validated, stored and
//! acknowledged after commit, until the agent hangs up, its certificate is
//! revoked or expires, or the collector stops.
use std::time::Duration;

use outpost_proto::agent_v1::{
    Ack, AgentMessage, CollectorMessage, Command, Empty, Rejection, Welcome, agent_message, collector_message, command,
};
use outpost_store::agents::{ConnectRefused, Connecting};
use outpost_store::{AgentScope, now_ms};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::connections::ConnHandle;
use super::live::Ticket;
use super::shared::{AgentPortService, CLOSE_DELAY, authenticated, check_version, peer, store_status, truncate};
use super::validate::validate_batch;

/// How long an agent has to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an open stream re-checks revocation.
const REVOCATION_CHECK: Duration = Duration::from_secs(2);
/// Device claims run every this many revocation checks (about 30 s).
const CLAIM_EVERY: u32 = 15;

/// What the session last told its agent about devices.
#[derive(Default)]
struct DeviceSync {
    ticks: u32,
    sent: Option<outpost_store::devices::AssignmentVersion>,
}

/// What the session last told its agent about discovery jobs.
#[derive(Default)]
struct DiscoverySync {
    sent: Option<outpost_store::inventory::jobs::JobsVersion>,
}

/// Messages buffered towards one agent.
const OUTBOUND_QUEUE: usize = 64;

/// The stream of messages to the agent.
pub(super) type ConnectStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<CollectorMessage, Status>> + Send + 'static>>;

/// `Connect`: opens the long-lived uplink stream of an authenticated agent.
pub(super) async fn open(
    svc: &AgentPortService,
    request: Request<Streaming<AgentMessage>>,
) -> Result<Response<ConnectStream>, Status> {
    let agent = authenticated(&request)?;
    let remote = peer(&request)?.remote;
    let conn = peer(&request)?.conn.clone();
    let inbound = request.into_inner();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let session = Session {
        svc: svc.clone(),
        scope: agent.scope,
        remote,
        cert_not_after: agent.not_after,
        serial: agent.serial,
        conn,
        out: tx,
    };
    tokio::spawn(session.run(inbound));
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

/// One agent's open `Connect` stream.
struct Session {
    svc: AgentPortService,
    scope: AgentScope,
    remote: std::net::SocketAddr,
    /// Expiry of the certificate that opened the stream, Unix seconds.
    cert_not_after: i64,
    /// Serial of that certificate.
    serial: String,
    /// The connection the stream runs on.
    conn: ConnHandle,
    out: mpsc::Sender<Result<CollectorMessage, Status>>,
}

fn msg(kind: collector_message::Kind) -> Result<CollectorMessage, Status> {
    Ok(CollectorMessage { kind: Some(kind) })
}

/// Decode failures reach us as tonic statuses; name them for the agent.
fn inbound_error(status: Status) -> Status {
    match status.code() {
        tonic::Code::Internal if status.message().contains("decode") => {
            Status::invalid_argument(format!("malformed message: {}", status.message()))
        }
        _ => status,
    }
}

impl Session {
    /// Queues a message for the agent; false when the stream is gone or the
    /// collector is stopping. A client that stops reading cannot hold the
    /// session (or shutdown) hostage: the wait ends with either.
    async fn send(&self, m: Result<CollectorMessage, Status>) -> bool {
        tokio::select! {
            r = self.out.send(m) => r.is_ok(),
            () = self.svc.shutdown.cancelled() => false,
        }
    }

    async fn run(self, mut inbound: Streaming<AgentMessage>) {
        let agent = self.scope.agent();
        let first = tokio::select! {
            r = tokio::time::timeout(HELLO_TIMEOUT, inbound.message()) => r,
            () = self.svc.shutdown.cancelled() => return,
        };
        let hello = match first {
            Ok(Ok(Some(AgentMessage {
                kind: Some(agent_message::Kind::Hello(h)),
            }))) => h,
            Ok(Err(status)) => {
                self.send(Err(inbound_error(status))).await;
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Ok(Some(_))) => {
                self.send(Err(Status::invalid_argument(
                    "the first message on Connect must be Hello",
                )))
                .await;
                return;
            }
            Err(_) => {
                self.send(Err(Status::deadline_exceeded("no Hello within 30 s"))).await;
                return;
            }
        };
        let version = match check_version(hello.protocol_version) {
            Ok(v) => v,
            Err(status) => {
                self.send(Err(status)).await;
                return;
            }
        };
        let instance = truncate(&hello.instance_id, 64).to_owned();
        let other_live = self.svc.live.instance_of(&agent).filter(|other| *other != instance);
        let connecting = Connecting {
            version: truncate(&hello.agent_version, 64),
            outbox_depth: hello.outbox_depth,
            serial: &self.serial,
            instance_id: &instance,
            remote: self.remote,
        };
        let start = match self
            .svc
            .store
            .agent_connected(&self.scope, &connecting, other_live.as_deref())
            .await
        {
            Ok(s) => s,
            Err(ConnectRefused::Store(e)) => {
                self.send(Err(store_status(&e))).await;
                return;
            }
            Err(refused) => {
                let status = match &refused {
                    ConnectRefused::OtherInstance { other, .. } => {
                        tracing::warn!(
                            %agent,
                            tenant = %self.scope.tenant(),
                            remote = %self.remote,
                            instance = %instance,
                            streaming_instance = %other,
                            "agent id used by two instances (cloned machine?): second instance refused"
                        );
                        Status::already_exists(refused.to_string())
                    }
                    _ => {
                        tracing::warn!(%agent, remote = %self.remote, reason = %refused, "agent stream refused");
                        Status::permission_denied(refused.to_string())
                    }
                };
                self.send(Err(status)).await;
                // Nothing more will happen on this connection.
                self.close_soon();
                return;
            }
        };
        let ticket = self.svc.live.admit(agent, &instance, self.out.clone());
        tracing::info!(
            %agent,
            tenant = %self.scope.tenant(),
            remote = %self.remote,
            agent_version = %hello.agent_version,
            instance = %instance,
            outbox_depth = hello.outbox_depth,
            acked_through = start.acked_seq,
            "agent connected"
        );
        let welcome = Welcome {
            protocol_version: version,
            acked_through: start.acked_seq,
            agent_id: agent.to_string(),
            tenant: self.scope.tenant().to_string(),
            site: self.scope.site().to_string(),
            collector_time_ms: now_ms(),
        };
        let reason = if self.send(msg(collector_message::Kind::Welcome(welcome))).await {
            self.nudge_renewal().await;
            self.pump(&mut inbound, &ticket).await
        } else {
            "stream closed"
        };
        // Recorded before leaving the live set, so a new instance admitted after
        // this never finds the database still saying this stream is open.
        if let Err(error) = self.svc.store.agent_disconnected(&self.scope, &start).await {
            tracing::error!(%agent, %error, "recording the disconnect failed");
        }
        self.svc.live.leave(&agent, &ticket);
        tracing::info!(%agent, remote = %self.remote, reason, "agent disconnected");
    }

    /// Closes this stream's connection once its last status has had time to
    /// go out (closing at once could cut it short).
    fn close_soon(&self) {
        let conn = self.conn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(CLOSE_DELAY).await;
            conn.close();
        });
    }

    /// Asks the agent to renew when the certificate of this connection is in
    /// the last third of its life.
    async fn nudge_renewal(&self) {
        let lifetime_ms = self.svc.cert_lifetime.as_millis() as i64;
        if self.cert_not_after.saturating_mul(1000) - now_ms() < lifetime_ms / 3 {
            let cmd = Command {
                command_id: uuid::Uuid::new_v4().to_string(),
                kind: Some(command::Kind::RenewCertificate(Empty {})),
            };
            self.send(msg(collector_message::Kind::Command(cmd))).await;
        }
    }

    /// Sends the agent its device list when it changed (and on the first
    /// call); every `CLAIM_EVERY` calls, first takes over the site's devices
    /// that no connected agent polls.
    async fn sync_devices(&self, sync: &mut DeviceSync) {
        if sync.ticks.is_multiple_of(CLAIM_EVERY)
            && let Err(error) = self.svc.store.claim_devices(&self.scope).await
        {
            tracing::warn!(agent = %self.scope.agent(), %error, "claiming devices failed");
        }
        sync.ticks = sync.ticks.wrapping_add(1);
        let version = match self.svc.store.assignment_version(&self.scope).await {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(agent = %self.scope.agent(), %error, "checking the device assignment failed");
                return;
            }
        };
        if sync.sent == Some(version) {
            return;
        }
        let devices = match self.svc.store.assigned_devices(&self.scope).await {
            Ok(d) => d,
            Err(error) => {
                tracing::warn!(agent = %self.scope.agent(), %error, "reading the device assignment failed");
                return;
            }
        };
        let assignment = super::devices::assignment(&self.svc.vault, &self.scope, &devices);
        let n = assignment.devices.len();
        let cmd = Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            kind: Some(command::Kind::AssignDevices(assignment)),
        };
        if self.send(msg(collector_message::Kind::Command(cmd))).await {
            tracing::info!(agent = %self.scope.agent(), devices = n, "device assignment sent");
            sync.sent = Some(version);
        }
    }

    /// Sends the agent its site's discovery jobs when they changed (and on
    /// the first call).
    async fn sync_discovery(&self, sync: &mut DiscoverySync) {
        let version = match self.svc.store.discovery_jobs_version(&self.scope).await {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(agent = %self.scope.agent(), %error, "checking the discovery jobs failed");
                return;
            }
        };
        if sync.sent == Some(version) {
            return;
        }
        let jobs = match self.svc.store.assigned_discovery_jobs(&self.scope).await {
            Ok(j) => j,
            Err(error) => {
                tracing::warn!(agent = %self.scope.agent(), %error, "reading the discovery jobs failed");
                return;
            }
        };
        let assignment = super::discovery::assignment(&self.svc.vault, &self.scope, &jobs);
        let n = assignment.jobs.len();
        let cmd = Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            kind: Some(command::Kind::AssignDiscovery(assignment)),
        };
        if self.send(msg(collector_message::Kind::Command(cmd))).await {
            tracing::info!(agent = %self.scope.agent(), jobs = n, "discovery jobs sent");
            sync.sent = Some(version);
        }
    }

    async fn pump(&self, inbound: &mut Streaming<AgentMessage>, ticket: &Ticket) -> &'static str {
        let mut sync = DeviceSync::default();
        let mut discovery = DiscoverySync::default();
        self.sync_devices(&mut sync).await;
        self.sync_discovery(&mut discovery).await;
        self.svc.traffic.resume(self.scope.agent());
        let mut revocation = tokio::time::interval(REVOCATION_CHECK);
        let mut reloaded = self.svc.revocations.subscribe();
        loop {
            let next = tokio::select! {
                m = inbound.message() => m,
                () = ticket.replaced.cancelled() => {
                    self.send(Err(Status::aborted(
                        "replaced by a newer connection of the same agent instance",
                    )))
                    .await;
                    // The connection is abandoned by its agent.
                    self.close_soon();
                    return "replaced by a newer connection";
                }
                _ = async {
                    tokio::select! {
                        _ = revocation.tick() => {}
                        _ = reloaded.changed() => {}
                    }
                } => {
                    self.sync_devices(&mut sync).await;
                    self.sync_discovery(&mut discovery).await;
                    if self.svc.revoked.contains(&self.scope.agent()) {
                        self.send(Err(Status::permission_denied("this agent has been revoked"))).await;
                        // The connection goes too, not just this stream.
                        self.close_soon();
                        return "revoked";
                    }
                    if now_ms() / 1000 >= self.cert_not_after {
                        self.send(Err(Status::unauthenticated(
                            "the certificate this stream was opened with has expired; reconnect with the renewed one",
                        )))
                        .await;
                        return "certificate expired";
                    }
                    continue;
                }
                () = self.out.closed() => return "stream closed",
                () = self.svc.shutdown.cancelled() => {
                    self.send(Err(Status::unavailable("the collector is shutting down; reconnect later"))).await;
                    return "collector shutting down";
                }
            };
            let batch = match next {
                Ok(Some(AgentMessage {
                    kind: Some(agent_message::Kind::Batch(b)),
                })) => b,
                Ok(Some(AgentMessage {
                    kind: Some(agent_message::Kind::Hello(_)),
                })) => {
                    tracing::warn!(agent = %self.scope.agent(), "duplicate Hello ignored");
                    continue;
                }
                Ok(Some(AgentMessage {
                    kind: Some(agent_message::Kind::LiveTraffic(t)),
                })) => {
                    self.svc.traffic.publish(self.scope.agent(), self.scope.tenant(), t);
                    continue;
                }
                Ok(Some(AgentMessage {
                    kind: Some(agent_message::Kind::ScanProgress(p)),
                })) => {
                    self.svc.scan_progress.record(&self.scope, &p);
                    continue;
                }
                Ok(Some(AgentMessage { kind: None })) => {
                    tracing::warn!(agent = %self.scope.agent(), "empty message ignored");
                    continue;
                }
                Ok(None) => return "agent closed the stream",
                Err(status) => {
                    tracing::warn!(agent = %self.scope.agent(), status = %status, "agent stream failed");
                    self.send(Err(inbound_error(status))).await;
                    return "stream error";
                }
            };
            let validated = match validate_batch(&self.scope, batch) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(agent = %self.scope.agent(), error = %e, "batch refused");
                    self.send(Err(Status::invalid_argument(e.to_string()))).await;
                    return "invalid batch";
                }
            };
            let mut validated = validated;
            let pending = std::mem::take(&mut validated.backups);
            let (backups, refused_backups) =
                super::backups::prepare(&self.svc.store, &self.svc.vault, &self.scope, pending).await;
            validated.batch.devices.extend(backups);
            for (seq, reason) in refused_backups {
                tracing::warn!(agent = %self.scope.agent(), seq, reason = %reason, "configuration backup refused");
                validated.rejected.push(Rejection {
                    seq: u64::try_from(seq).unwrap_or(0),
                    reason,
                });
            }
            let started = std::time::Instant::now();
            let outcome = match self.svc.store.ingest(&self.scope, &validated.batch).await {
                Ok(o) => {
                    let m = &self.svc.metrics;
                    m.batch_commit_seconds.observe(started.elapsed().as_secs_f64());
                    m.observations_ingested
                        .inc_by(u64::try_from(validated.batch.observations()).unwrap_or(0));
                    o
                }
                Err(e) => {
                    // Nothing was acknowledged; the agent resends after reconnecting.
                    self.send(Err(store_status(&e))).await;
                    return "store error";
                }
            };
            let mut rejected = validated.rejected;
            for (seq, reason) in &outcome.devices.refused {
                tracing::warn!(agent = %self.scope.agent(), seq, reason = %reason, "device report refused");
                rejected.push(Rejection {
                    seq: u64::try_from(*seq).unwrap_or(0),
                    reason: reason.clone(),
                });
            }
            for (seq, reason) in &outcome.discovery.refused {
                tracing::warn!(agent = %self.scope.agent(), seq, reason = %reason, "discovery report refused");
                rejected.push(Rejection {
                    seq: u64::try_from(*seq).unwrap_or(0),
                    reason: reason.clone(),
                });
            }
            if outcome.discovery.changes > 0 {
                tracing::info!(
                    agent = %self.scope.agent(),
                    new_hosts = outcome.discovery.new_hosts,
                    changes = outcome.discovery.changes,
                    "inventory updated"
                );
            }
            let ack = Ack {
                acked_through: u64::try_from(outcome.acked_seq).unwrap_or(0),
                rejected,
            };
            if !self.send(msg(collector_message::Kind::Ack(ack))).await {
                return "stream closed";
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_become_invalid_argument() {
        let s = inbound_error(Status::internal("failed to decode Protobuf message: invalid wire type"));
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().starts_with("malformed message"));
        assert_eq!(inbound_error(Status::cancelled("gone")).code(), tonic::Code::Cancelled);
    }
}
