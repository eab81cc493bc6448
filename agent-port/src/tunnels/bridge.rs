//! One open tunnel's copying between the agent's stream and the caller's
//! pipe, until it ends, and its audit record.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use outpost_console::agent_control::{FromDevice, ToDevice};
use outpost_proto::agent_v1::{TunnelClosed, TunnelFrame, tunnel_frame};
use outpost_proto::tunnel_wire::Incoming;
use outpost_store::Store;
use outpost_store::audit::AuditEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

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
        mut agent_in: Incoming<TunnelFrame>,
        agent_out: mpsc::Sender<Result<TunnelFrame, Status>>,
        mut to_device: mpsc::Receiver<ToDevice>,
        from_device: mpsc::Sender<FromDevice>,
    ) {
        let started = Instant::now();
        let deadline = started + self.policy.max_duration;
        let idle = self.policy.idle;
        let (sent, received) = (AtomicU64::new(0), AtomicU64::new(0));
        // Milliseconds from `started` to the last byte either way.
        let last = AtomicU64::new(0);
        let touch = || last.store(millis(started.elapsed()), Ordering::Relaxed);
        let frame = |kind| Ok(TunnelFrame { kind: Some(kind) });
        // Each direction is its own future, polled concurrently: a direction
        // waiting for room must never stop the other from moving, or an echo
        // (the device answers what it is sent) would wait on itself.
        let ended: String = {
            let from_agent = async {
                loop {
                    match agent_in.message().await {
                        Ok(Some(TunnelFrame {
                            kind: Some(tunnel_frame::Kind::Data(b)),
                        })) => {
                            received.fetch_add(b.len() as u64, Ordering::Relaxed);
                            touch();
                            if !send_within(&from_device, FromDevice::Data(b), idle).await {
                                return Err("the user's side stopped reading".to_owned());
                            }
                        }
                        Ok(Some(TunnelFrame {
                            kind: Some(tunnel_frame::Kind::Fin(_)),
                        })) => {
                            let _ = send_within(&from_device, FromDevice::Fin, idle).await;
                            return Ok(());
                        }
                        Ok(Some(TunnelFrame {
                            kind: Some(tunnel_frame::Kind::Closed(c)),
                        })) => {
                            return Err(format!("{}: {}", c.reason, c.detail));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => return Err("the agent ended the tunnel".to_owned()),
                        Err(status) => {
                            return Err(format!("the agent's connection was lost: {}", status.message()));
                        }
                    }
                }
            };
            let to_agent = async {
                loop {
                    match to_device.recv().await {
                        Some(ToDevice::Data(b)) => {
                            sent.fetch_add(b.len() as u64, Ordering::Relaxed);
                            touch();
                            if !send_within(&agent_out, frame(tunnel_frame::Kind::Data(b)), idle).await {
                                return Err("the agent stopped reading".to_owned());
                            }
                        }
                        Some(ToDevice::Fin) => {
                            let fin = frame(tunnel_frame::Kind::Fin(Default::default()));
                            let _ = send_within(&agent_out, fin, idle).await;
                            return Ok(());
                        }
                        None => return Err("closed by the user".to_owned()),
                    }
                }
            };
            tokio::pin!(from_agent, to_agent);
            let (mut device_done, mut client_done) = (false, false);
            loop {
                if device_done && client_done {
                    break "closed".to_owned();
                }
                let quiet_until = started + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
                tokio::select! {
                    r = &mut from_agent, if !device_done => match r {
                        Ok(()) => device_done = true,
                        Err(why) => break why,
                    },
                    r = &mut to_agent, if !client_done => match r {
                        Ok(()) => client_done = true,
                        Err(why) => break why,
                    },
                    () = tokio::time::sleep_until(quiet_until) => {
                        // Bytes may have moved while this slept: only a
                        // deadline that still stands ends the tunnel.
                        let now = started + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
                        if now <= Instant::now() {
                            break format!("idle for {} s", idle.as_secs());
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        break format!("maximum duration of {} s reached", self.policy.max_duration.as_secs());
                    }
                }
            }
        };
        let (sent, received) = (sent.into_inner(), received.into_inner());
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
