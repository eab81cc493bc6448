//! Configuration backups over SSH: `/export` (v6) or `/export show-sensitive`
//! (v7), sealed with the device's backup key before anything is stored.
//!
//! Invariants:
//! - the export text and the password are never logged, and the export
//!   leaves this module only sealed (`ConfigBackup.sealed_export`, AES-256-GCM
//!   under the device's backup key with [`backup_context`]), so the outbox
//!   on disk never holds a device's secrets in clear;
//! - the host key is checked before the password is sent: against the
//!   collector's pin, else the one learnt earlier in this run, else it is
//!   accepted and its fingerprint returned so the collector can pin it
//!   (fingerprint: SHA-256 of the key's SSH wire encoding);
//! - `normalized_hmac` is the backup key's HMAC of the export with its
//!   timestamp line normalised ([`super::export::normalise`]), so an
//!   unchanged configuration gives the same value on every export;
//! - everything (connect, login, export) runs under one deadline, and the
//!   export is read up to [`MAX_EXPORT`] bytes.
//!
//! Which command: v7 hides secrets from plain `/export`, v6 rejects
//! `show-sensitive` (`expected end of command (line 1 column 9)`) and
//! includes them anyway. With the version unknown, `show-sensitive` is tried
//! first and plain `/export` follows if the router rejects the argument.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use outpost_proto::agent_v1::{ConfigBackup, ManagedDevice};
use outpost_vault::{Key, backup_context};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, client};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::export;

/// Largest export read; a bigger one is refused rather than held in memory.
pub const MAX_EXPORT: usize = outpost_proto::MAX_EXPORT_BYTES;
/// Deadline for the whole backup (connect, login, export).
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// SSH port when the collector names none.
pub const DEFAULT_PORT: u16 = 22;

const SHOW_SENSITIVE: &str = "/export show-sensitive";
const PLAIN: &str = "/export";

/// SHA-256 of an SSH host key's wire encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostKeyFingerprint([u8; 32]);

impl HostKeyFingerprint {
    /// The fingerprint of `key`.
    pub fn of(key: &PublicKey) -> Option<Self> {
        key.to_bytes().ok().map(|wire| Self(Sha256::digest(&wire).into()))
    }

    /// The raw 32 bytes, as `DeviceStatus.ssh_host_key_sha256` carries them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for HostKeyFingerprint {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// OpenSSH's form: `SHA256:` and unpadded base64.
impl std::fmt::Display for HostKeyFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.0)
        )
    }
}

impl std::fmt::Debug for HostKeyFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The device's RouterOS line, as far as the agent knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionHint {
    /// RouterOS 6: plain `/export` (it includes secrets).
    V6,
    /// RouterOS 7: `/export show-sensitive`.
    V7,
    /// Not known yet: try `show-sensitive`, fall back to plain `/export`.
    Unknown,
}

impl VersionHint {
    /// From the major version a poll read (`None` or anything else: unknown).
    pub fn from_major(major: Option<u32>) -> Self {
        match major {
            Some(6) => Self::V6,
            Some(7) => Self::V7,
            _ => Self::Unknown,
        }
    }

    fn first_command(self) -> &'static str {
        match self {
            Self::V6 => PLAIN,
            Self::V7 | Self::Unknown => SHOW_SENSITIVE,
        }
    }
}

/// Why a backup was taken (`ConfigBackup.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first backup of the device in this run of the agent.
    First,
    /// `last-config-change` moved.
    ConfigChanged,
    /// The collector asked.
    Requested,
    /// The daily backup.
    Scheduled,
    /// The periodic export of a device without `last-config-change`; sent
    /// only when it differs, so it is stored as `config-changed`.
    ExportCheck,
}

impl Trigger {
    /// The word the collector stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::ConfigChanged => "config-changed",
            Self::Requested => "requested",
            Self::Scheduled => "scheduled",
            Self::ExportCheck => "config-changed",
        }
    }
}

/// Settings of one backup besides the device's own.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Which `/export` to run.
    pub version: VersionHint,
    /// Recorded in the backup.
    pub trigger: Trigger,
    /// Host key learnt earlier in this run; the collector's pin wins.
    pub learnt_pin: Option<HostKeyFingerprint>,
    /// Deadline for the whole backup.
    pub timeout: Duration,
    /// Largest export accepted.
    pub max_bytes: usize,
}

impl BackupOptions {
    /// Defaults: [`TIMEOUT`], [`MAX_EXPORT`], no learnt pin, trigger "requested".
    pub fn new(version: VersionHint) -> Self {
        Self {
            version,
            trigger: Trigger::Requested,
            learnt_pin: None,
            timeout: TIMEOUT,
            max_bytes: MAX_EXPORT,
        }
    }
}

/// A backup taken, with the host key the device presented.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Ready for the outbox: the export is sealed.
    pub backup: ConfigBackup,
    /// The host key presented (equal to the pin when there was one).
    pub host_key: HostKeyFingerprint,
    /// The command that produced the export.
    pub command: &'static str,
}

/// Why a backup failed. Messages never contain the export or the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The device's backup key is missing or not 32 bytes.
    #[error("no usable backup key for the device (expected 32 bytes, got {0})")]
    NoBackupKey(usize),
    /// The collector's host key pin is not 32 bytes.
    #[error("the SSH host key pin is {0} bytes, not 32")]
    BadPin(usize),
    /// The SSH port does not fit in 16 bits.
    #[error("SSH port {0} is out of range")]
    BadPort(u32),
    /// Refused, no route, or the connection broke before SSH started.
    #[error("SSH connection to {addr} failed: {error}")]
    Refused {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        error: String,
    },
    /// The deadline passed.
    #[error("SSH backup of {addr} timed out after {} s", .after.as_secs())]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The deadline.
        after: Duration,
    },
    /// The device presented another host key than the pinned one; no
    /// password was sent.
    #[error("SSH host key of {addr} changed: it presented {presented}, the pinned key is {pinned}")]
    HostKeyMismatch {
        /// `host:port`.
        addr: String,
        /// What the device presented.
        presented: HostKeyFingerprint,
        /// What was expected.
        pinned: HostKeyFingerprint,
    },
    /// The password was refused.
    #[error("SSH login to {addr} as {user:?} failed")]
    AuthFailed {
        /// `host:port`.
        addr: String,
        /// The user name.
        user: String,
    },
    /// The router answered the export command with an error.
    #[error("the router refused {command:?}: {message}")]
    ExportRefused {
        /// The command sent.
        command: &'static str,
        /// RouterOS's error text, or what was wrong with the output.
        message: String,
    },
    /// The export is larger than allowed.
    #[error("the export of {addr} is larger than {limit} bytes")]
    TooLarge {
        /// `host:port`.
        addr: String,
        /// The limit.
        limit: usize,
    },
    /// The SSH session failed otherwise.
    #[error("SSH session with {addr} failed: {error}")]
    Ssh {
        /// `host:port`.
        addr: String,
        /// russh's error.
        error: String,
    },
    /// Sealing failed (the system random source).
    #[error("sealing the export failed: {0}")]
    Seal(String),
}

/// Takes a backup of `device` with default options (the collector's pin,
/// trigger "requested").
pub async fn take_backup(device: &ManagedDevice, version: VersionHint) -> Result<Taken, BackupError> {
    take_backup_with(device, &BackupOptions::new(version)).await
}

/// Takes a backup of `device`.
pub async fn take_backup_with(device: &ManagedDevice, opts: &BackupOptions) -> Result<Taken, BackupError> {
    let key = Key::from_bytes(&device.backup_key).ok_or(BackupError::NoBackupKey(device.backup_key.len()))?;
    let pin = match device.ssh_host_key_sha256.len() {
        0 => opts.learnt_pin,
        32 => <[u8; 32]>::try_from(device.ssh_host_key_sha256.as_slice())
            .ok()
            .map(HostKeyFingerprint),
        n => return Err(BackupError::BadPin(n)),
    };
    let port = match device.ssh_port {
        0 => DEFAULT_PORT,
        p => u16::try_from(p).map_err(|_| BackupError::BadPort(p))?,
    };
    let addr = if device.address.contains(':') {
        format!("[{}]:{port}", device.address)
    } else {
        format!("{}:{port}", device.address)
    };
    let session = Session {
        device,
        pin,
        port,
        addr: &addr,
        max_bytes: opts.max_bytes,
        timeout: opts.timeout,
    };
    let (raw, command, host_key) = tokio::time::timeout(opts.timeout, session.export(opts.version))
        .await
        .map_err(|_| BackupError::Timeout {
            addr: addr.clone(),
            after: opts.timeout,
        })??;
    let text = String::from_utf8_lossy(&raw);
    let version = text
        .lines()
        .next()
        .and_then(export::header_version)
        .unwrap_or_default()
        .to_owned();
    let normalised = Zeroizing::new(export::normalise(&text));
    drop(text);
    let normalized_hmac = key.mac(normalised.as_bytes());
    let sealed_export = key
        .seal(&backup_context(&device.device_id), &raw)
        .map_err(|e| BackupError::Seal(e.to_string()))?;
    Ok(Taken {
        backup: ConfigBackup {
            device_id: device.device_id.clone(),
            version,
            normalized_hmac,
            sealed_export,
            trigger: opts.trigger.as_str().to_owned(),
        },
        host_key,
        command,
    })
}

/// One SSH conversation.
struct Session<'a> {
    device: &'a ManagedDevice,
    pin: Option<HostKeyFingerprint>,
    port: u16,
    addr: &'a str,
    max_bytes: usize,
    timeout: Duration,
}

type Exported = (Zeroizing<Vec<u8>>, &'static str, HostKeyFingerprint);

impl Session<'_> {
    async fn export(&self, version: VersionHint) -> Result<Exported, BackupError> {
        let presented = Arc::new(Mutex::new(None));
        let checker = PinCheck {
            pin: self.pin,
            presented: presented.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(self.timeout),
            nodelay: true,
            ..client::Config::default()
        });
        let connected = client::connect(config, (self.device.address.as_str(), self.port), checker).await;
        let seen = *presented.lock().unwrap_or_else(|p| p.into_inner());
        let mut handle = match connected {
            Ok(h) => h,
            Err(error) => {
                return Err(match (seen, self.pin) {
                    (Some(presented), Some(pinned)) if presented != pinned => BackupError::HostKeyMismatch {
                        addr: self.addr.to_owned(),
                        presented,
                        pinned,
                    },
                    _ => self.connect_error(error),
                });
            }
        };
        let Some(host_key) = seen else {
            // russh checks the host key during the handshake; a session
            // without one would be a russh bug, not a reason to go on.
            return Err(BackupError::Ssh {
                addr: self.addr.to_owned(),
                error: "no host key was checked".to_owned(),
            });
        };
        let result = self.login_and_export(&mut handle, version).await;
        let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
        result.map(|(raw, command)| (raw, command, host_key))
    }

    async fn login_and_export(
        &self,
        handle: &mut client::Handle<PinCheck>,
        version: VersionHint,
    ) -> Result<(Zeroizing<Vec<u8>>, &'static str), BackupError> {
        let auth = handle
            .authenticate_password(self.device.username.clone(), self.device.password.clone())
            .await
            .map_err(|e| self.ssh_error(e))?;
        if !auth.success() {
            return Err(BackupError::AuthFailed {
                addr: self.addr.to_owned(),
                user: self.device.username.clone(),
            });
        }
        let first = version.first_command();
        match self.run(handle, first).await {
            Err(BackupError::ExportRefused { message, .. })
                if version == VersionHint::Unknown && rejects_argument(&message) =>
            {
                Ok((self.run(handle, PLAIN).await?, PLAIN))
            }
            other => other.map(|raw| (raw, first)),
        }
    }

    /// Runs `command` and returns its stdout if it is an export.
    async fn run(
        &self,
        handle: &client::Handle<PinCheck>,
        command: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        let mut channel = handle.channel_open_session().await.map_err(|e| self.ssh_error(e))?;
        channel.exec(true, command).await.map_err(|e| self.ssh_error(e))?;
        let mut out = Zeroizing::new(Vec::new());
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if out.len() + data.len() > self.max_bytes {
                        return Err(BackupError::TooLarge {
                            addr: self.addr.to_owned(),
                            limit: self.max_bytes,
                        });
                    }
                    if out.capacity() < out.len() + data.len() {
                        // Grow by hand so no half-filled copy of the export
                        // is left behind unwiped by a reallocation.
                        let mut bigger =
                            Zeroizing::new(Vec::with_capacity((out.len() + data.len()).max(out.len() * 2)));
                        bigger.extend_from_slice(&out);
                        out = bigger;
                    }
                    out.extend_from_slice(&data);
                }
                ChannelMsg::Failure => {
                    return Err(BackupError::ExportRefused {
                        command,
                        message: "the router refused the exec request".to_owned(),
                    });
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        check_export(&out).map_err(|message| BackupError::ExportRefused { command, message })?;
        Ok(out)
    }

    fn connect_error(&self, error: russh::Error) -> BackupError {
        match error {
            russh::Error::IO(e) => BackupError::Refused {
                addr: self.addr.to_owned(),
                error: e.to_string(),
            },
            other => self.ssh_error(other),
        }
    }

    fn ssh_error(&self, error: russh::Error) -> BackupError {
        BackupError::Ssh {
            addr: self.addr.to_owned(),
            error: error.to_string(),
        }
    }
}

/// Whether `output` is an export: it starts with the timestamp comment.
/// Otherwise the error, for the log: RouterOS's error line when the output
/// is one (`… (line 1 column 9)`), never anything that could be
/// configuration.
fn check_export(output: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(output);
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if export::header_version(first).is_some() {
        return Ok(());
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match (lines.next(), lines.next()) {
        (None, _) => Err("the export is empty".to_owned()),
        (Some(line), None) if is_routeros_error(line.trim_end_matches('\r')) => {
            Err(line.trim_end_matches('\r').to_owned())
        }
        _ => Err("the output does not start with an export header".to_owned()),
    }
}

/// `expected end of command (line 1 column 9)`, `bad command name x (line 1 column 1)`.
fn is_routeros_error(line: &str) -> bool {
    line.len() < 200
        && line
            .rsplit_once(" (line ")
            .is_some_and(|(_, pos)| pos.ends_with(')') && pos.contains(" column "))
}

/// RouterOS 6's answer to an argument it does not know.
fn rejects_argument(message: &str) -> bool {
    message.starts_with("expected end of command")
}

/// Checks the host key against the pin and records what was presented.
struct PinCheck {
    pin: Option<HostKeyFingerprint>,
    presented: Arc<Mutex<Option<HostKeyFingerprint>>>,
}

impl client::Handler for PinCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Host certificates are not trusted as such: their key is pinned
            // like any other.
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let Some(seen) = HostKeyFingerprint::of(&key) else {
            return Ok(false);
        };
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        Ok(self.pin.is_none_or(|pin| pin == seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_follow_the_version() {
        assert_eq!(VersionHint::V6.first_command(), "/export");
        assert_eq!(VersionHint::V7.first_command(), "/export show-sensitive");
        assert_eq!(VersionHint::Unknown.first_command(), "/export show-sensitive");
        assert_eq!(VersionHint::from_major(Some(6)), VersionHint::V6);
        assert_eq!(VersionHint::from_major(Some(7)), VersionHint::V7);
        assert_eq!(VersionHint::from_major(None), VersionHint::Unknown);
        assert_eq!(VersionHint::from_major(Some(8)), VersionHint::Unknown);
    }

    #[test]
    fn exports_are_told_from_errors_without_quoting_configuration() {
        assert_eq!(
            check_export(b"# 2024-06-05 12:00:00 by RouterOS 7.16.2\r\n/ip dns\r\n"),
            Ok(())
        );
        assert_eq!(check_export(b"# jan/02/1970 00:00:00 by RouterOS 6.49.10\n"), Ok(()));
        let v6 = check_export(b"expected end of command (line 1 column 9)\r\n").expect_err("refused");
        assert_eq!(v6, "expected end of command (line 1 column 9)");
        assert!(rejects_argument(&v6));
        assert!(!rejects_argument("bad command name export (line 1 column 1)"));
        assert_eq!(check_export(b"").expect_err("empty"), "the export is empty");
        let secret = check_export(b"/ppp secret add name=x password=hunter2\r\n").expect_err("no header");
        assert!(!secret.contains("hunter2"), "{secret}");
    }

    #[test]
    fn fingerprints_print_like_openssh() {
        let f = HostKeyFingerprint::from([0u8; 32]);
        assert_eq!(f.to_string(), "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(Trigger::ConfigChanged.as_str(), "config-changed");
        assert_eq!(Trigger::First.as_str(), "first");
    }

    #[tokio::test]
    async fn settings_are_checked_before_connecting() {
        let mut d = ManagedDevice {
            device_id: "d".into(),
            address: "127.0.0.1".into(),
            backup_key: vec![1; 31],
            ..Default::default()
        };
        let err = take_backup(&d, VersionHint::V7).await.expect_err("bad key");
        assert!(matches!(err, BackupError::NoBackupKey(31)), "{err}");
        d.backup_key = vec![1; 32];
        d.ssh_host_key_sha256 = vec![2; 5];
        let err = take_backup(&d, VersionHint::V7).await.expect_err("bad pin");
        assert!(matches!(err, BackupError::BadPin(5)), "{err}");
        d.ssh_host_key_sha256.clear();
        d.ssh_port = 70_000;
        let err = take_backup(&d, VersionHint::V7).await.expect_err("bad port");
        assert!(matches!(err, BackupError::BadPort(70_000)), "{err}");
    }
}

#[cfg(test)]
mod sim_tests;
