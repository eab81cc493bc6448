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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::fleet::Fleet;

/// Longest control line accepted.
const MAX_LINE: u64 = 4096;

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
    use crate::ops::{CounterOp, Op};
    use std::net::Ipv4Addr;

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
