//! SSH on every device (russh server), for configuration exports.
//!
//! - Host key: ed25519, made when the device is made and replaced by
//!   `rotate-host-key`; new connections see the new key.
//! - Login: password only, with the device's API user and password (the
//!   `password` control op changes both); a wrong one is refused after
//!   [`AUTH_REJECTION`].
//! - Exec: `/export [terse] [show-sensitive|hide-sensitive]` (see
//!   [`crate::export`]); anything else gets RouterOS's error text. Output goes
//!   to stdout, then exit status (0, or 1 after an error text; clients should
//!   not rely on it, routers differ), EOF and close. The `slow` fault delays
//!   the output.
//! - Shell: on a pty (`pty-req` first, `window-change` later), a small
//!   RouterOS-like console (see [`crate::shell`]); a shell without a pty is
//!   refused, as the simulator only draws for a terminal.
//! - `drop`, `fatal`, `down` and `reboot` close open SSH sessions too.
//!
//! The server identifies itself as `SSH-2.0-ROSSSH`, as RouterOS does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use russh::server::{self, Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, Pty};
use tokio::net::TcpStream;

use crate::device::{ConnEvent, Device};
use crate::export;
use crate::shell::Shell;

/// Serves one SSH connection until it ends or a fault closes it.
pub(crate) async fn serve(sock: TcpStream, dev: Arc<Device>) {
    let mut events = dev.events.subscribe();
    let config = dev.ssh_config();
    let handler = Handler {
        dev,
        ptys: HashSet::new(),
        shells: HashMap::new(),
    };
    let Ok(session) = server::run_stream(config, sock, handler).await else {
        return;
    };
    let handle = session.handle();
    tokio::select! {
        _ = session => {}
        event = events.recv() => {
            // Drop, fatal, or the fleet going away: the router closes.
            if matches!(event, Ok(ConnEvent::Drop | ConnEvent::Fatal) | Err(_)) {
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "session closed".into(), "en".into())
                    .await;
            }
        }
    }
}

struct Handler {
    dev: Arc<Device>,
    /// Channels that asked for a pty. The console writes no full-screen
    /// output, so the terminal size is accepted and not used.
    ptys: HashSet<ChannelId>,
    shells: HashMap<ChannelId, Shell>,
}

impl server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let st = self.dev.state();
        if st.user == user && st.password == password {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.ptys.insert(channel);
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        if !self.ptys.contains(&channel) {
            return session.channel_failure(channel);
        }
        let shell = Shell::new();
        session.channel_success(channel)?;
        session.data(channel, shell.start(&self.dev))?;
        self.shells.insert(channel, shell);
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.ptys.contains(&channel) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        let Some(shell) = self.shells.get_mut(&channel) else {
            return Ok(());
        };
        let out = shell.input(&self.dev, data);
        if !out.bytes.is_empty() {
            session.data(channel, out.bytes)?;
        }
        if out.quit {
            self.shells.remove(&channel);
            session.exit_status_request(channel, 0)?;
            session.eof(channel)?;
            session.close(channel)?;
        }
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.ptys.remove(&channel);
        self.shells.remove(&channel);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let command = String::from_utf8_lossy(data);
        let (text, status, slow) = {
            let st = self.dev.state();
            let profile = &self.dev.profile;
            match export::parse(&command, profile.version.major) {
                Ok(req) => (
                    export::render(profile, &st.config_lines, req, SystemTime::now()),
                    0,
                    st.faults.slow,
                ),
                Err(e) => (format!("{}\r\n", e.0), 1, st.faults.slow),
            }
        };
        let handle = session.handle();
        // Written from a task so flow control applies to long exports
        // without holding up the session loop.
        tokio::spawn(async move {
            if !slow.is_zero() {
                tokio::time::sleep(slow).await;
            }
            if handle.data(channel, text.into_bytes()).await.is_err() {
                return;
            }
            let _ = handle.exit_status_request(channel, status).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }
}
