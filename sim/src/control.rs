//! The control port: one command per line, answered `ok` or `error <why>`.
//! Loopback only; it changes devices and injects faults while a fleet runs.
//!
//! | line | effect |
//! |---|---|
//! | `slow <ip> <ms>` | delay every command's reply by `ms` (0 turns it off) |
//! | `drop <ip>` | close the device's open connections now |
//! | `fatal <ip>` | send `!fatal` on open connections, then close them |
//! | `trap <ip> <command-path>` | that command (or menu) answers `!trap` |
//! | `empty <ip> <command-path>` | that command answers `!empty` then `!done` (7.18 style) |
//! | `unknown-word <ip> <word>` | every reply is preceded by `<word>` (e.g. `!foo`) |
//! | `password <ip> <new>` | change the API (and SSH) password |
//! | `legacy-login <ip> on\|off` | pre-6.43 challenge/response login |
//! | `no-api-policy <ip> on\|off` | the user lacks the `api` policy: `not allowed (9)` |
//! | `rotate-cert <ip>` | new self-signed API-SSL certificate for new connections |
//! | `rotate-host-key <ip>` | new SSH host key for new connections |
//! | `down <ip>` / `up <ip>` | stop listening and close connections / listen again |
//! | `config <ip> <line>` | append a config line, bump `last-config-change` |
//! | `counter <ip> <iface> wrap\|reset` | see below |
//! | `reboot <ip>` | uptime back to 0, counters reset, connections dropped |
//! | `clear <ip>` | remove the faults (slow, trap, empty, unknown-word, legacy-login, no-api-policy) |
//!
//! RouterOS API counters are 64-bit, so a 32-bit wrap never shows up on the
//! API; `counter … wrap` parks the counters a few seconds of traffic below
//! `u64::MAX` so the next reads roll over to small values, and `reset` sets
//! them to 0 as after a reboot.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::fleet::Fleet;

/// Longest control line accepted.
const MAX_LINE: u64 = 4096;

/// What `counter` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// Jump close to `u64::MAX` so the counter rolls over shortly.
    Wrap,
    /// Back to zero, as after a reboot.
    Reset,
}

/// One control operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Delay every reply.
    Slow(Ipv4Addr, Duration),
    /// Close open connections.
    Drop(Ipv4Addr),
    /// `!fatal` on open connections.
    Fatal(Ipv4Addr),
    /// This command path answers `!trap`.
    Trap(Ipv4Addr, String),
    /// This command path answers `!empty`.
    Empty(Ipv4Addr, String),
    /// Replies are preceded by this reply word.
    UnknownWord(Ipv4Addr, String),
    /// New API password.
    Password(Ipv4Addr, String),
    /// Pre-6.43 login.
    LegacyLogin(Ipv4Addr, bool),
    /// No `api` policy.
    NoApiPolicy(Ipv4Addr, bool),
    /// New API-SSL certificate.
    RotateCert(Ipv4Addr),
    /// New SSH host key.
    RotateHostKey(Ipv4Addr),
    /// Stop listening.
    Down(Ipv4Addr),
    /// Listen again.
    Up(Ipv4Addr),
    /// Append a config line.
    Config(Ipv4Addr, String),
    /// Move an interface's counters.
    Counter(Ipv4Addr, String, CounterOp),
    /// Reboot.
    Reboot(Ipv4Addr),
    /// Remove faults.
    Clear(Ipv4Addr),
}

impl Op {
    /// The device the operation is for.
    pub fn ip(&self) -> Ipv4Addr {
        match self {
            Op::Slow(ip, _)
            | Op::Drop(ip)
            | Op::Fatal(ip)
            | Op::Trap(ip, _)
            | Op::Empty(ip, _)
            | Op::UnknownWord(ip, _)
            | Op::Password(ip, _)
            | Op::LegacyLogin(ip, _)
            | Op::NoApiPolicy(ip, _)
            | Op::RotateCert(ip)
            | Op::RotateHostKey(ip)
            | Op::Down(ip)
            | Op::Up(ip)
            | Op::Config(ip, _)
            | Op::Counter(ip, _, _)
            | Op::Reboot(ip)
            | Op::Clear(ip) => *ip,
        }
    }
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (ip, arg) = rest.trim_start().split_once(' ').unwrap_or((rest.trim(), ""));
        if verb.is_empty() {
            return Err("empty command".to_owned());
        }
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{verb}: expected a device address, got {ip:?}"))?;
        let arg = arg.trim();
        let need = |what: &str| -> Result<String, String> {
            if arg.is_empty() {
                Err(format!("{verb}: missing {what}"))
            } else {
                Ok(arg.to_owned())
            }
        };
        let none = |op: Op| -> Result<Op, String> {
            if arg.is_empty() {
                Ok(op)
            } else {
                Err(format!("{verb}: unexpected {arg:?}"))
            }
        };
        match verb {
            "slow" => {
                let ms: u64 = need("milliseconds")?
                    .parse()
                    .map_err(|_| format!("slow: {arg:?} is not a number of milliseconds"))?;
                Ok(Op::Slow(ip, Duration::from_millis(ms.min(3_600_000))))
            }
            "drop" => none(Op::Drop(ip)),
            "fatal" => none(Op::Fatal(ip)),
            "trap" => Ok(Op::Trap(ip, need("command path")?)),
            "empty" => Ok(Op::Empty(ip, need("command path")?)),
            "unknown-word" => Ok(Op::UnknownWord(ip, need("reply word")?)),
            "password" => Ok(Op::Password(ip, need("password")?)),
            "legacy-login" => Ok(Op::LegacyLogin(ip, on_off(arg)?)),
            "no-api-policy" => Ok(Op::NoApiPolicy(ip, on_off(arg)?)),
            "rotate-cert" => none(Op::RotateCert(ip)),
            "rotate-host-key" => none(Op::RotateHostKey(ip)),
            "down" => none(Op::Down(ip)),
            "up" => none(Op::Up(ip)),
            "config" => Ok(Op::Config(ip, need("config line")?)),
            "counter" => {
                let (iface, what) = arg
                    .split_once(' ')
                    .ok_or_else(|| "counter: expected <iface> wrap|reset".to_owned())?;
                let what = match what.trim() {
                    "wrap" => CounterOp::Wrap,
                    "reset" => CounterOp::Reset,
                    other => return Err(format!("counter: expected wrap or reset, not {other:?}")),
                };
                Ok(Op::Counter(ip, iface.to_owned(), what))
            }
            "reboot" => none(Op::Reboot(ip)),
            "clear" => none(Op::Clear(ip)),
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

/// Serves the control port until the listener fails.
pub async fn serve(listener: TcpListener, fleet: Arc<Fleet>) {
    loop {
        let Ok((sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if !peer.ip().is_loopback() {
            continue;
        }
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let (read, mut write) = sock.into_split();
            let mut read = BufReader::new(read);
            loop {
                let mut line = String::new();
                match (&mut read).take(MAX_LINE).read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if !line.ends_with('\n') && line.len() as u64 >= MAX_LINE {
                    let _ = write.write_all(b"error line too long\n").await;
                    return;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let answer = match fleet.control(&line).await {
                    Ok(()) => "ok\n".to_owned(),
                    Err(e) => format!("error {e}\n"),
                };
                if write.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Binds the control port, refusing anything but loopback.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("control address {addr} is not loopback; the control port has no authentication"),
        ));
    }
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let ip = Ipv4Addr::new(127, 0, 1, 1);
        let cases = [
            ("slow 127.0.1.1 250", Op::Slow(ip, Duration::from_millis(250))),
            ("drop 127.0.1.1", Op::Drop(ip)),
            ("fatal 127.0.1.1", Op::Fatal(ip)),
            (
                "trap 127.0.1.1 /system/resource/print",
                Op::Trap(ip, "/system/resource/print".into()),
            ),
            (
                "empty 127.0.1.1 /ip/neighbor/print",
                Op::Empty(ip, "/ip/neighbor/print".into()),
            ),
            ("unknown-word 127.0.1.1 !foo", Op::UnknownWord(ip, "!foo".into())),
            ("password 127.0.1.1 s3cret", Op::Password(ip, "s3cret".into())),
            ("legacy-login 127.0.1.1 on", Op::LegacyLogin(ip, true)),
            ("no-api-policy 127.0.1.1 off", Op::NoApiPolicy(ip, false)),
            ("rotate-cert 127.0.1.1", Op::RotateCert(ip)),
            ("rotate-host-key 127.0.1.1", Op::RotateHostKey(ip)),
            ("down 127.0.1.1", Op::Down(ip)),
            ("up 127.0.1.1\n", Op::Up(ip)),
            (
                "config 127.0.1.1 /ip dns set servers=1.1.1.1",
                Op::Config(ip, "/ip dns set servers=1.1.1.1".into()),
            ),
            (
                "counter 127.0.1.1 ether1 wrap",
                Op::Counter(ip, "ether1".into(), CounterOp::Wrap),
            ),
            (
                "counter 127.0.1.1 ether2 reset",
                Op::Counter(ip, "ether2".into(), CounterOp::Reset),
            ),
            ("reboot 127.0.1.1", Op::Reboot(ip)),
            ("clear 127.0.1.1", Op::Clear(ip)),
        ];
        for (line, op) in cases {
            assert_eq!(line.parse::<Op>(), Ok(op), "{line}");
        }
    }

    #[test]
    fn refuses_bad_lines() {
        for line in [
            "",
            "fly 127.0.1.1",
            "slow 127.0.1.1",
            "slow 127.0.1.1 soon",
            "drop nowhere",
            "drop 127.0.1.1 now",
            "legacy-login 127.0.1.1 maybe",
            "counter 127.0.1.1 ether1",
            "counter 127.0.1.1 ether1 explode",
        ] {
            assert!(line.parse::<Op>().is_err(), "{line}");
        }
    }
}
