//! An SSH shell on a device, spoken by the collector through a tunnel: the
//! russh client runs over one end of an in-memory duplex whose other end is
//! pumped into the [`TunnelPipe`], so the technician's browser only ever sees
//! terminal bytes, never the device's password.
//!
//! The host key is checked against the device's pin (SHA-256 of the key's
//! wire form, as the agent's backups pin it). Without a pin the presented key
//! is accepted and returned, for the caller to pin on first use; a different
//! key is a hard failure.
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use outpost_console::agent_control::{FromDevice, FromShell, ToDevice, ToShell, TunnelPipe};
use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Bytes buffered in the in-memory pipe between the SSH client and the tunnel.
const DUPLEX_BYTES: usize = 64 * 1024;
/// Frames queued each way between the shell and the terminal's socket.
const QUEUE: usize = 16;
/// Terminal sizes outside 1..=this are refused.
pub const MAX_COLS: u32 = 500;
/// See [`MAX_COLS`].
pub const MAX_ROWS: u32 = 200;

/// How to log in to the device.
pub struct Login {
    /// SSH user.
    pub user: String,
    /// Its password, opened from the vault.
    pub password: Zeroizing<String>,
    /// The pinned host key fingerprint, if any.
    pub pin: Option<[u8; 32]>,
}

/// Why no shell was opened.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The device presented another host key than the pinned one.
    #[error("the device's SSH host key sha256 {presented} is not the pinned one ({pinned})")]
    HostKeyMismatch {
        /// Hex SHA-256 presented.
        presented: String,
        /// Hex SHA-256 pinned.
        pinned: String,
    },
    /// The device refused the stored credentials.
    #[error("the device refused the stored SSH user and password")]
    AuthRefused,
    /// The device would not open a shell on a pty.
    #[error("the device refused an interactive shell: {0}")]
    ShellRefused(String),
    /// The SSH conversation failed (the tunnel closed, a protocol error).
    #[error("SSH to the device failed: {0}")]
    Ssh(String),
}

/// The shell and, when there was no pin yet, the key to pin now.
pub struct Opened {
    /// The terminal's ends.
    pub to_shell: mpsc::Sender<ToShell>,
    /// See [`Opened::to_shell`].
    pub from_shell: mpsc::Receiver<FromShell>,
    /// The presented host key fingerprint when nothing was pinned.
    pub first_use_key: Option<[u8; 32]>,
}

struct HostKeyCheck {
    pin: Option<[u8; 32]>,
    presented: Arc<Mutex<Option<[u8; 32]>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // A host certificate's key is pinned like any other key.
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let Ok(wire) = key.to_bytes() else {
            return Ok(false);
        };
        let seen: [u8; 32] = Sha256::digest(&wire).into();
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        Ok(self.pin.is_none_or(|pin| pin == seen))
    }
}

/// Logs in over `pipe` and starts a shell on a `cols`×`rows` xterm pty.
pub async fn open(pipe: TunnelPipe, login: Login, cols: u32, rows: u32) -> Result<Opened, ShellError> {
    let (ssh_end, tunnel_end) = tokio::io::duplex(DUPLEX_BYTES);
    tokio::spawn(pump(tunnel_end, pipe));

    let presented = Arc::new(Mutex::new(None));
    let check = HostKeyCheck {
        pin: login.pin,
        presented: presented.clone(),
    };
    let config = Arc::new(client::Config::default());
    let seen = || *presented.lock().unwrap_or_else(|p| p.into_inner());
    let mut handle = match client::connect_stream(config, ssh_end, check).await {
        Ok(handle) => handle,
        Err(e) => {
            return Err(match (login.pin, seen()) {
                (Some(pinned), Some(presented)) if pinned != presented => ShellError::HostKeyMismatch {
                    presented: hex::encode(presented),
                    pinned: hex::encode(pinned),
                },
                _ => ShellError::Ssh(e.to_string()),
            });
        }
    };
    let auth = handle
        .authenticate_password(login.user.as_str(), login.password.as_str())
        .await
        .map_err(|e| ShellError::Ssh(e.to_string()))?;
    if !auth.success() {
        return Err(ShellError::AuthRefused);
    }
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ShellError::ShellRefused(e.to_string()))?;
    channel
        .request_pty(true, "xterm", cols, rows, 0, 0, &[])
        .await
        .map_err(|e| ShellError::Ssh(e.to_string()))?;
    channel
        .request_shell(true)
        .await
        .map_err(|e| ShellError::Ssh(e.to_string()))?;
    // The pty and shell replies come first; a refusal ends here.
    for _ in 0..2 {
        match channel.wait().await {
            Some(ChannelMsg::Success) => {}
            Some(ChannelMsg::Failure) => return Err(ShellError::ShellRefused("pty or shell request failed".into())),
            other => return Err(ShellError::ShellRefused(format!("unexpected answer {other:?}"))),
        }
    }

    let (to_shell, mut keys) = mpsc::channel::<ToShell>(QUEUE);
    let (screen, from_shell) = mpsc::channel::<FromShell>(QUEUE);
    tokio::spawn(async move {
        let mut status = None;
        let why = loop {
            tokio::select! {
                msg = channel.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if screen.send(FromShell::Data(Bytes::copy_from_slice(&data))).await.is_err() {
                            break "the terminal went away".to_owned();
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(_) => {}
                    None => break match status {
                        Some(s) => format!("exit status {s}"),
                        None => "the device closed the session".to_owned(),
                    },
                },
                key = keys.recv() => match key {
                    Some(ToShell::Data(bytes)) => {
                        if let Err(e) = channel.data_bytes(bytes).await {
                            break format!("sending to the device failed: {e}");
                        }
                    }
                    Some(ToShell::Resize { cols, rows }) => {
                        let (cols, rows) = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
                        if let Err(e) = channel.window_change(cols, rows, 0, 0).await {
                            break format!("resizing failed: {e}");
                        }
                    }
                    None => break "the terminal closed".to_owned(),
                },
            }
        };
        let _ = screen.send(FromShell::Closed(why)).await;
        let _ = handle
            .disconnect(Disconnect::ByApplication, "session closed", "en")
            .await;
    });
    Ok(Opened {
        to_shell,
        from_shell,
        first_use_key: if login.pin.is_none() { seen() } else { None },
    })
}

/// Copies between the SSH client's end of the duplex and the tunnel until
/// both directions have ended.
async fn pump(io: tokio::io::DuplexStream, pipe: TunnelPipe) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let TunnelPipe {
        to_device,
        mut from_device,
        ..
    } = pipe;
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = to_device.send(ToDevice::Fin).await;
                    return;
                }
                Ok(n) => {
                    if to_device
                        .send(ToDevice::Data(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let down = async move {
        while let Some(frame) = from_device.recv().await {
            match frame {
                FromDevice::Data(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                FromDevice::Fin | FromDevice::Closed(_) => break,
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use outpost_sim::{Fleet, FleetConfig, RosMix};
    use tokio::net::TcpStream;

    use super::*;

    async fn fleet(first: Ipv4Addr) -> Fleet {
        Fleet::start(FleetConfig {
            devices: 1,
            first_ip: first,
            ros: RosMix::V7,
            seed: 7,
            api_port: 0,
            api_ssl_port: 0,
            ssh_port: 0,
            ..FleetConfig::default()
        })
        .await
        .expect("fleet starts")
    }

    /// A tunnel pipe whose far end is a TCP connection to `addr`, carried the
    /// way the tunnel hub's bridge carries it (data frames, then `Fin`).
    async fn pipe_to(addr: std::net::SocketAddr) -> TunnelPipe {
        let sock = TcpStream::connect(addr).await.expect("connect to the device");
        let (mut rd, mut wr) = sock.into_split();
        let (to_device, mut towards) = mpsc::channel::<ToDevice>(8);
        let (back, from_device) = mpsc::channel::<FromDevice>(8);
        tokio::spawn(async move {
            while let Some(ToDevice::Data(bytes)) = towards.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = back.send(FromDevice::Fin).await;
                        return;
                    }
                    Ok(n) => {
                        if back
                            .send(FromDevice::Data(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        TunnelPipe {
            id: "t".into(),
            target: addr.to_string(),
            to_device,
            from_device,
        }
    }

    fn login(password: &str, pin: Option<[u8; 32]>) -> Login {
        Login {
            user: "admin".into(),
            password: Zeroizing::new(password.into()),
            pin,
        }
    }

    async fn read_until(from: &mut mpsc::Receiver<FromShell>, needle: &str) -> String {
        let mut seen = String::new();
        let read = async {
            while !seen.contains(needle) {
                match from.recv().await {
                    Some(FromShell::Data(d)) => seen.push_str(&String::from_utf8_lossy(&d)),
                    other => panic!("the shell ended before {needle:?}: {other:?}; saw {seen:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the text appears within 10 s");
        seen
    }

    #[tokio::test]
    async fn a_shell_over_a_pipe_pins_on_first_use_and_runs_commands() {
        let fleet = fleet(Ipv4Addr::new(127, 0, 150, 1)).await;
        let d = fleet.devices()[0].clone();
        let key = fleet.ssh_host_key_sha256(d.ip).expect("host key");

        let mut opened = open(pipe_to(d.ssh).await, login("admin", None), 100, 30)
            .await
            .expect("shell opens");
        assert_eq!(opened.first_use_key, Some(key), "the presented key, to pin");
        let prompt = format!("[admin@{}] > ", d.identity);
        read_until(&mut opened.from_shell, &prompt).await;
        opened
            .to_shell
            .send(ToShell::Resize { cols: 9999, rows: 40 })
            .await
            .expect("resize");
        opened
            .to_shell
            .send(ToShell::Data(Bytes::from_static(b"/system identity print\r")))
            .await
            .expect("keys");
        let out = read_until(&mut opened.from_shell, &format!("  name: {}\r\n{prompt}", d.identity)).await;
        assert!(out.starts_with("/system identity print\r\n"), "{out:?}");

        opened
            .to_shell
            .send(ToShell::Data(Bytes::from_static(b"/quit\r")))
            .await
            .expect("keys");
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match opened.from_shell.recv().await {
                    Some(FromShell::Data(_)) => {}
                    other => return other,
                }
            }
        })
        .await
        .expect("the shell ends");
        assert_eq!(end, Some(FromShell::Closed("exit status 0".into())));

        // With the pin, the same key is accepted and nothing is to pin.
        let again = open(pipe_to(d.ssh).await, login("admin", Some(key)), 80, 24)
            .await
            .expect("shell opens");
        assert_eq!(again.first_use_key, None);
    }

    #[tokio::test]
    async fn another_host_key_or_a_wrong_password_is_refused() {
        let fleet = fleet(Ipv4Addr::new(127, 0, 151, 1)).await;
        let d = fleet.devices()[0].clone();
        let key = fleet.ssh_host_key_sha256(d.ip).expect("host key");
        let other = [7u8; 32];
        match open(pipe_to(d.ssh).await, login("admin", Some(other)), 80, 24).await {
            Err(ShellError::HostKeyMismatch { presented, pinned }) => {
                assert_eq!(presented, hex::encode(key));
                assert_eq!(pinned, hex::encode(other));
            }
            Err(e) => panic!("expected a host key mismatch, got {e}"),
            Ok(_) => panic!("expected a host key mismatch, got a shell"),
        }
        match open(pipe_to(d.ssh).await, login("wrong", Some(key)), 80, 24).await {
            Err(ShellError::AuthRefused) => {}
            Err(e) => panic!("expected a refused login, got {e}"),
            Ok(_) => panic!("expected a refused login, got a shell"),
        }
    }
}
