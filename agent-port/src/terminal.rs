//! The console's terminal on a device ([`AgentControl::open_terminal`]): the
//! device's SSH login from the store, its password opened from the vault,
//! a tunnel to its SSH port through the [`TunnelHub`] (policy, limits and the
//! tunnel's own audit records), then [`ssh_shell::open`]. The first key a
//! device presents is pinned when nothing was; the session's start and end
//! are audited (`terminal.open`, `terminal.close`), and everything between
//! is recorded ([`Recorder`]): no recording, no session.
//!
//! [`AgentControl::open_terminal`]: outpost_console::agent_control::AgentControl::open_terminal
use outpost_console::agent_control::{FromShell, ShellPipe, TerminalAsk, ToShell, TunnelAsk, TunnelRefused};
use outpost_store::audit::{Actor, AuditEvent, Details};
use outpost_store::{Store, StoreError};
use outpost_vault::Vault;
use tokio::sync::mpsc;

use super::recording::{Event, MAX_RECORDING_BYTES, Recorder, Utf8Carry};
use super::ssh_shell::{self, Login, ShellError};
use super::tunnels::TunnelHub;

/// Frames queued towards the terminal after the audit watcher.
const QUEUE: usize = 16;

pub(super) async fn open(
    store: &Store,
    vault: &Vault,
    tunnels: &TunnelHub,
    ask: TerminalAsk,
) -> Result<ShellPipe, TunnelRefused> {
    let actor = Actor::user(&ask.user, ask.source);
    let device = match store.device_ssh_login(&ask.scope, ask.device).await {
        Ok(d) => d,
        Err(StoreError::NotFound(_)) => return Err(TunnelRefused::NotFound("device not found".into())),
        Err(e) => return Err(TunnelRefused::Unavailable(format!("looking up the device failed: {e}"))),
    };
    let id = device.id.to_string();
    let password = vault
        .tenant(&device.tenant.to_string())
        .open_device_password(&id, &device.password_sealed)
        .map_err(|e| TunnelRefused::Unavailable(format!("the device's password cannot be opened: {e}")))?;
    let pin = match device.ssh_host_key_pin.as_deref().map(hex::decode) {
        None => None,
        Some(Ok(bytes)) => Some(
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| TunnelRefused::Unavailable("the pinned SSH host key is damaged".into()))?,
        ),
        Some(Err(_)) => return Err(TunnelRefused::Unavailable("the pinned SSH host key is damaged".into())),
    };
    let pipe = tunnels
        .open(TunnelAsk {
            scope: ask.scope,
            device: ask.device,
            port: device.ssh_port,
            user: ask.user.clone(),
            source: ask.source,
            via: "terminal",
        })
        .await?;
    let tunnel_id = pipe.id.clone();
    let login = Login {
        user: device.username.clone(),
        password,
        pin,
    };
    let details = || {
        Details::new()
            .text("device", id.clone())
            .text("tunnel", tunnel_id.clone())
    };
    let opened = match ssh_shell::open(pipe, login, ask.cols, ask.rows).await {
        Ok(o) => o,
        Err(e) => {
            let event = AuditEvent::failure(Some(ask.scope.tenant()), "terminal.open", format!("device {id}"))
                .with(details().text("reason", e.to_string()));
            audit(store, &actor, event).await;
            return Err(match e {
                ShellError::HostKeyMismatch { .. } => TunnelRefused::Denied(e.to_string()),
                _ => TunnelRefused::Unavailable(e.to_string()),
            });
        }
    };
    if let Some(key) = opened.first_use_key {
        let key = hex::encode(key);
        match store.pin_ssh_host_key_on_first_use(&ask.scope, ask.device, &key).await {
            Ok(_) => {}
            Err(error) => tracing::error!(device = %id, %error, "pinning the SSH host key failed"),
        }
    }
    let recorder = match Recorder::start(
        store.clone(),
        ask.scope,
        ask.device,
        &ask.user,
        &tunnel_id,
        (ask.cols, ask.rows),
        MAX_RECORDING_BYTES,
    )
    .await
    {
        Ok(r) => r,
        Err(error) => {
            // Dropping the shell's ends closes it: no session goes unrecorded.
            let why = format!("the session cannot be recorded: {error}");
            let event = AuditEvent::failure(Some(ask.scope.tenant()), "terminal.open", format!("device {id}"))
                .with(details().text("reason", why.clone()));
            audit(store, &actor, event).await;
            return Err(TunnelRefused::Unavailable(why));
        }
    };
    let event = AuditEvent::success(Some(ask.scope.tenant()), "terminal.open", format!("device {id}")).with(details());
    audit(store, &actor, event).await;

    // Keys and sizes towards the shell, recorded as `i` and `r` before they go.
    let (to_shell, mut keys) = mpsc::channel::<ToShell>(QUEUE);
    let shell_in = opened.to_shell;
    let input_recorder = recorder.clone();
    tokio::spawn(async move {
        let mut carry = Utf8Carry::default();
        while let Some(msg) = keys.recv().await {
            let event = match &msg {
                ToShell::Data(bytes) => Event("i", carry.push(bytes)),
                ToShell::Resize { cols, rows } => Event("r", format!("{cols}x{rows}")),
            };
            if !input_recorder.record(event).await || shell_in.send(msg).await.is_err() {
                break;
            }
        }
    });

    // Forwards the shell's output (recorded as `o`) and records the end; a
    // recording that stops ends the session, with its reason on the screen.
    let (screen, from_shell) = mpsc::channel(QUEUE);
    let mut shell_out = opened.from_shell;
    let (store, tenant, close_details) = (store.clone(), ask.scope.tenant(), details());
    tokio::spawn(async move {
        let mut why = "the terminal closed".to_owned();
        let mut carry = Utf8Carry::default();
        loop {
            let frame = tokio::select! {
                frame = shell_out.recv() => frame,
                stopped = recorder.stopped() => {
                    why = stopped;
                    let _ = screen.send(FromShell::Closed(why.clone())).await;
                    break;
                }
            };
            let Some(frame) = frame else { break };
            match &frame {
                FromShell::Closed(reason) => why = reason.clone(),
                FromShell::Data(bytes) => {
                    if !recorder.record(Event("o", carry.push(bytes))).await {
                        why = recorder.stopped().await;
                        let _ = screen.send(FromShell::Closed(why.clone())).await;
                        break;
                    }
                }
            }
            if screen.send(frame).await.is_err() {
                break;
            }
        }
        drop(recorder);
        let event = AuditEvent::success(Some(tenant), "terminal.close", format!("device {id}"))
            .with(close_details.text("reason", why));
        audit(&store, &actor, event).await;
    });
    Ok(ShellPipe {
        tunnel_id,
        to_shell,
        from_shell,
    })
}

async fn audit(store: &Store, actor: &Actor, event: AuditEvent) {
    if let Err(error) = store.record_audit(actor, event).await {
        tracing::error!(%error, "recording a terminal session in the audit log failed");
    }
}
