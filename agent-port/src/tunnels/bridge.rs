//! One open tunnel's copying between the agent's stream and the caller's
//! pipe, until it ends, and its audit record.
use std::time::Duration;

use outpost_console::agent_control::{FromDevice, ToDevice};
use outpost_proto::agent_v1::{TunnelClosed, TunnelFrame, tunnel_frame};
use outpost_store::Store;
use outpost_store::audit::AuditEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Status, Streaming};

use super::{Session, Slot, TunnelPolicy};

/// One open tunnel's copying, until it ends.
pub(super) struct Bridge {
    pub(super) store: Store,
    pub(super) policy: TunnelPolicy,
    pub(super) session: Session,
    pub(super) _slot: Slot,
}

impl Bridge {
    pub(super) async fn run(
        self,
        mut agent_in: Streaming<TunnelFrame>,
        agent_out: mpsc::Sender<Result<TunnelFrame, Status>>,
        mut to_device: mpsc::Receiver<ToDevice>,
        from_device: mpsc::Sender<FromDevice>,
    ) {
        let started = Instant::now();
        let deadline = started + self.policy.max_duration;
        let idle = self.policy.idle;
        let (mut sent, mut received) = (0u64, 0u64);
        let (mut device_done, mut client_done) = (false, false);
        let mut last = Instant::now();
        let frame = |kind| Ok(TunnelFrame { kind: Some(kind) });
        let ended: String = loop {
            if device_done && client_done {
                break "closed".into();
            }
            tokio::select! {
                m = agent_in.message(), if !device_done => match m {
                    Ok(Some(TunnelFrame { kind: Some(tunnel_frame::Kind::Data(b)) })) => {
                        received += b.len() as u64;
                        last = Instant::now();
                        if !send_within(&from_device, FromDevice::Data(b), idle).await {
                            break "the user's side stopped reading".into();
                        }
                    }
                    Ok(Some(TunnelFrame { kind: Some(tunnel_frame::Kind::Fin(_)) })) => {
                        device_done = true;
                        let _ = send_within(&from_device, FromDevice::Fin, idle).await;
                    }
                    Ok(Some(TunnelFrame { kind: Some(tunnel_frame::Kind::Closed(c)) })) => {
                        break format!("{}: {}", c.reason, c.detail);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break "the agent ended the tunnel".into(),
                    Err(status) => break format!("the agent's connection was lost: {}", status.message()),
                },
                m = to_device.recv(), if !client_done => match m {
                    Some(ToDevice::Data(b)) => {
                        sent += b.len() as u64;
                        last = Instant::now();
                        if !send_within(&agent_out, frame(tunnel_frame::Kind::Data(b)), idle).await {
                            break "the agent stopped reading".into();
                        }
                    }
                    Some(ToDevice::Fin) => {
                        client_done = true;
                        let _ = send_within(&agent_out, frame(tunnel_frame::Kind::Fin(Default::default())), idle).await;
                    }
                    None => break "closed by the user".into(),
                },
                () = tokio::time::sleep_until(last + idle) => {
                    break format!("idle for {} s", idle.as_secs());
                }
                () = tokio::time::sleep_until(deadline) => {
                    break format!("maximum duration of {} s reached", self.policy.max_duration.as_secs());
                }
            }
        };
        if ended != "closed" {
            let closed = TunnelClosed {
                reason: "closed".into(),
                detail: ended.clone(),
            };
            let _ = agent_out.try_send(frame(tunnel_frame::Kind::Closed(closed)));
            let _ = from_device.try_send(FromDevice::Closed(ended.clone()));
        }
        let s = &self.session;
        let event = AuditEvent::success(
            Some(s.ask.scope.tenant()),
            "tunnel.close",
            format!("device {}", s.ask.device),
        )
        .with(
            s.details()
                .number("bytes_to_device", i64::try_from(sent).unwrap_or(i64::MAX))
                .number("bytes_from_device", i64::try_from(received).unwrap_or(i64::MAX))
                .number(
                    "duration_ms",
                    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                )
                .text("ended", ended.as_str()),
        );
        tracing::info!(tunnel = %s.id, sent, received, ended = %ended, "tunnel closed");
        if let Err(error) = self.store.record_audit(&s.actor(), event).await {
            tracing::error!(%error, "recording a tunnel in the audit log failed");
        }
    }
}

/// Sends unless the receiver is gone or makes no room for `within`.
async fn send_within<T>(tx: &mpsc::Sender<T>, value: T, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, tx.send(value)).await, Ok(Ok(())))
}
