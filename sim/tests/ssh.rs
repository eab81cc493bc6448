//! SSH on simulated devices, through a russh client: `/export` in the v6 and
//! v7 forms, secrets, refusals, config changes, host keys and passwords.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fleet;
use outpost_sim::RosMix;
use russh::ChannelMsg;
use russh::client;
use russh::keys::PublicKeyOrCertificate;
use sha2::{Digest as _, Sha256};

/// Accepts any host key and remembers its SHA-256 (wire encoding).
struct Recorder(Arc<Mutex<Option<[u8; 32]>>>);

impl client::Handler for Recorder {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let wire = key.to_bytes().expect("encodable key");
        *self.0.lock().expect("lock") = Some(Sha256::digest(&wire).into());
        Ok(true)
    }
}

struct Ssh {
    handle: client::Handle<Recorder>,
    host_key: [u8; 32],
}

/// Connects and logs in; `Err` when the password is refused.
async fn login(addr: SocketAddr, password: &str) -> Result<Ssh, String> {
    let seen = Arc::new(Mutex::new(None));
    let config = Arc::new(client::Config::default());
    let mut handle = client::connect(config, addr, Recorder(seen.clone()))
        .await
        .expect("ssh handshake");
    let auth = handle
        .authenticate_password("admin", password)
        .await
        .expect("auth exchange");
    if !auth.success() {
        return Err("refused".into());
    }
    let host_key = seen.lock().expect("lock").expect("a host key was presented");
    Ok(Ssh { handle, host_key })
}

/// Runs `command` and returns stdout (and the exit status, if sent).
async fn exec(ssh: &Ssh, command: &str) -> (String, Option<u32>) {
    let mut channel = ssh.handle.channel_open_session().await.expect("session channel");
    channel.exec(true, command).await.expect("exec");
    let mut out = Vec::new();
    let mut status = None;
    let read = async {
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the command ends within 10 s");
    (String::from_utf8(out).expect("utf-8"), status)
}

async fn export(addr: SocketAddr, command: &str) -> String {
    let ssh = login(addr, "admin").await.expect("login");
    exec(&ssh, command).await.0
}

/// Waits until the wall clock is in a later second than `t`, so two exports
/// cannot share a header time.
async fn after_second_of(t: SystemTime) {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let next = UNIX_EPOCH + Duration::from_secs(secs + 1);
    if let Ok(wait) = next.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

fn body(export: &str) -> Vec<&str> {
    export.split("\r\n").skip(1).collect()
}

#[tokio::test]
async fn v7_export_hides_secrets_unless_show_sensitive() {
    let fleet = fleet([127, 0, 140, 1], 1, RosMix::V7).await;
    let d = fleet.devices()[0].clone();
    let plain = export(d.ssh, "/export").await;
    let sensitive = export(d.ssh, "/export show-sensitive").await;

    let header = plain.split("\r\n").next().expect("a header");
    // `# 2024-06-05 12:00:00 by RouterOS 7.16.2`
    let (when, version) = header
        .strip_prefix("# ")
        .and_then(|h| h.split_once(" by RouterOS "))
        .expect("v7 header form");
    assert_eq!(version, d.version.number);
    assert_eq!(when.len(), 19, "{header}");
    assert_eq!(&when[4..5], "-");
    assert_eq!(&when[10..11], " ");
    assert!(plain.contains("\r\n# software id = "), "{plain}");
    assert!(plain.ends_with("\r\n"));
    assert!(!plain.replace("\r\n", "").contains('\n'), "CRLF line endings only");
    assert!(plain.contains(&format!("set name={}\r\n", d.identity)));
    assert!(plain.contains("/ppp secret\r\nadd name=site-vpn profile=default-encryption service=l2tp\r\n"));
    assert!(!plain.contains("password="), "{plain}");
    assert!(sensitive.contains("/ppp secret\r\nadd name=site-vpn password="));
}

#[tokio::test]
async fn v6_export_includes_secrets_and_refuses_show_sensitive() {
    let fleet = fleet([127, 0, 141, 1], 1, RosMix::V6).await;
    let d = fleet.devices()[0].clone();
    let ssh = login(d.ssh, "admin").await.expect("login");
    let (plain, status) = exec(&ssh, "/export").await;
    assert_eq!(status, Some(0));
    let header = plain.split("\r\n").next().expect("a header");
    // `# jan/02/1970 00:00:00 by RouterOS 6.49.10`
    let when = header
        .strip_prefix("# ")
        .and_then(|h| h.strip_suffix(" by RouterOS 6.49.10"))
        .expect("v6 header form");
    assert_eq!(when.len(), 20, "{header}");
    assert!(when[..3].bytes().all(|b| b.is_ascii_lowercase()), "{header}");
    assert_eq!(&when[3..4], "/");
    assert!(plain.contains("/ppp secret\r\nadd name=site-vpn password="), "{plain}");

    let (refused, status) = exec(&ssh, "/export show-sensitive").await;
    assert_eq!(refused, "expected end of command (line 1 column 9)\r\n");
    assert_eq!(status, Some(1));
    let (hidden, _) = exec(&ssh, "/export hide-sensitive").await;
    assert!(!hidden.contains("password="));
}

#[tokio::test]
async fn terse_export_is_one_command_per_line_and_matches_the_config() {
    let fleet = fleet([127, 0, 142, 1], 1, RosMix::V6).await;
    let d = fleet.devices()[0].clone();
    let terse = export(d.ssh, "/export terse").await;
    let lines = fleet.config_lines(d.ip).expect("lines");
    let body: Vec<&str> = body(&terse)
        .into_iter()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(body, lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_config_op_changes_the_export_body_and_the_header_time_moves() {
    let fleet = fleet([127, 0, 143, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let first = export(d.ssh, "/export").await;
    // The header is stamped while the export runs, so the next second is
    // counted from when it returned, not from when it was asked for.
    after_second_of(SystemTime::now()).await;
    let second = export(d.ssh, "/export").await;
    assert_ne!(
        first.split("\r\n").next(),
        second.split("\r\n").next(),
        "header time moved"
    );
    assert_eq!(body(&first), body(&second), "unchanged configuration, same body");

    fleet
        .control(&format!("config {} /ip dns set servers=192.0.2.53", d.ip))
        .await
        .expect("config");
    let third = export(d.ssh, "/export").await;
    assert_ne!(body(&second), body(&third));
    assert!(third.ends_with("/ip dns\r\nset servers=192.0.2.53\r\n"), "{third}");
}

#[tokio::test]
async fn wrong_password_is_refused_and_the_password_op_applies_to_ssh() {
    let fleet = fleet([127, 0, 144, 1], 1, RosMix::V7).await;
    let d = fleet.devices()[0].clone();
    assert!(login(d.ssh, "wrong").await.is_err());
    fleet
        .control(&format!("password {} n3w", d.ip))
        .await
        .expect("password");
    assert!(login(d.ssh, "admin").await.is_err());
    assert!(login(d.ssh, "n3w").await.is_ok());
}

#[tokio::test]
async fn host_key_is_the_one_reported_and_rotates() {
    let fleet = fleet([127, 0, 145, 1], 2, RosMix::V7).await;
    let d = fleet.devices()[0].clone();
    let other = fleet.devices()[1].clone();
    let before = fleet.ssh_host_key_sha256(d.ip).expect("key");
    assert_ne!(
        before,
        fleet.ssh_host_key_sha256(other.ip).expect("key"),
        "one key per device"
    );
    let ssh = login(d.ssh, "admin").await.expect("login");
    assert_eq!(ssh.host_key, before);
    fleet
        .control(&format!("rotate-host-key {}", d.ip))
        .await
        .expect("rotate");
    let after = fleet.ssh_host_key_sha256(d.ip).expect("key");
    assert_ne!(after, before);
    assert_eq!(login(d.ssh, "admin").await.expect("login").host_key, after);
}

#[tokio::test]
async fn other_commands_get_routeros_errors_and_drop_closes_sessions() {
    let fleet = fleet([127, 0, 146, 1], 1, RosMix::V7).await;
    let d = fleet.devices()[0].clone();
    let ssh = login(d.ssh, "admin").await.expect("login");
    let (out, _) = exec(&ssh, "/system reboot").await;
    assert_eq!(out, "bad command name system (line 1 column 1)\r\n");
    fleet.control(&format!("drop {}", d.ip)).await.expect("drop");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !ssh.handle.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the session closes");
}

/// An interactive shell on a pty, read until expected text appears.
struct Term {
    channel: russh::Channel<client::Msg>,
    seen: String,
}

impl Term {
    async fn open(ssh: &Ssh) -> Term {
        let channel = ssh.handle.channel_open_session().await.expect("session channel");
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .expect("pty request");
        channel.request_shell(true).await.expect("shell request");
        Term {
            channel,
            seen: String::new(),
        }
    }

    async fn send(&self, keys: &str) {
        self.channel.data(keys.as_bytes()).await.expect("send keys");
    }

    /// Reads until `needle` has appeared, returns everything up to and
    /// including it and keeps the rest.
    async fn until(&mut self, needle: &str) -> String {
        let read = async {
            loop {
                if let Some(at) = self.seen.find(needle) {
                    let rest = self.seen.split_off(at + needle.len());
                    return std::mem::replace(&mut self.seen, rest);
                }
                match self.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => self.seen.push_str(std::str::from_utf8(&data).expect("utf-8")),
                    Some(_) => {}
                    None => panic!("channel closed before {needle:?}; saw {:?}", self.seen),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the text appears within 10 s")
    }
}

#[tokio::test]
async fn shell_echoes_edits_and_runs_routeros_commands_until_quit() {
    let fleet = fleet([127, 0, 147, 1], 1, RosMix::V7).await;
    let d = fleet.devices()[0].clone();
    let ssh = login(d.ssh, "admin").await.expect("login");
    let mut term = Term::open(&ssh).await;
    let prompt = format!("[admin@{}] > ", d.identity);
    let greeting = term.until(&prompt).await;
    assert!(
        greeting.contains(&format!("RouterOS {}", d.version.number)),
        "{greeting}"
    );

    // Backspace on an empty line erases nothing.
    term.send("\x7f/system identity print\r").await;
    assert_eq!(
        term.until(&prompt).await,
        format!("/system identity print\r\n  name: {}\r\n{prompt}", d.identity)
    );

    // A typo corrected with backspace: the terminal is told to erase it, and
    // the command that runs is the corrected one.
    term.send("/systx\x7fem reboot\r").await;
    assert_eq!(
        term.until(&prompt).await,
        format!("/systx\x08 \x08em reboot\r\nbad command name system (line 1 column 1)\r\n{prompt}")
    );

    // Ctrl-C drops a half-typed line; arrow keys do nothing.
    term.send("/export\x03\x1b[A\r").await;
    assert_eq!(term.until(&prompt).await, format!("/export\r\n{prompt}"));
    term.until(&prompt).await;

    term.channel.window_change(132, 40, 0, 0).await.expect("resize");
    term.send("/export terse\r").await;
    let export = term.until(&prompt).await;
    assert!(export.contains(&format!("set name={}\r\n", d.identity)), "{export}");
    assert!(export.starts_with("/export terse\r\n# "), "{export}");

    term.send("/quit\r").await;
    let mut status = None;
    let ended = async {
        while let Some(msg) = term.channel.wait().await {
            if let ChannelMsg::ExitStatus { exit_status } = msg {
                status = Some(exit_status);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the channel closes after /quit");
    assert_eq!(status, Some(0));
}

#[tokio::test]
async fn shell_without_a_pty_is_refused() {
    let fleet = fleet([127, 0, 148, 1], 1, RosMix::V6).await;
    let d = fleet.devices()[0].clone();
    let ssh = login(d.ssh, "admin").await.expect("login");
    let mut channel = ssh.handle.channel_open_session().await.expect("session channel");
    channel.request_shell(true).await.expect("shell request");
    let answer = tokio::time::timeout(Duration::from_secs(10), channel.wait())
        .await
        .expect("an answer within 10 s");
    assert!(matches!(answer, Some(ChannelMsg::Failure)), "{answer:?}");
}
