//! ICMP echo sweep. Raw sockets need `CAP_NET_RAW`; unprivileged (datagram)
//! ICMP sockets need the process's group inside `net.ipv4.ping_group_range`
//! (which also governs ICMPv6), and a fresh network namespace allows nobody
//! (`1 0`). So the sweep tries raw, then datagram, per address family, and
//! when neither opens it says exactly what to grant; the scan then finds
//! hosts with TCP probes and the neighbour table instead of failing.
//!
//! Linux rewrites the echo identifier of datagram sockets, so replies are
//! matched on (address, sequence): every address gets its own sequence.
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

/// Which kind of ICMP socket a sweep uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpMode {
    /// Raw socket (`CAP_NET_RAW`).
    Raw,
    /// Unprivileged datagram socket (`ping_group_range`).
    Dgram,
    /// Neither could be opened: no echo sweep.
    None,
}

impl IcmpMode {
    /// As reported: "raw", "dgram", "none".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Dgram => "dgram",
            Self::None => "none",
        }
    }
}

/// Echo clients for both families, whichever could be opened.
pub struct Pinger {
    v4: Option<Client>,
    v6: Option<Client>,
    mode: IcmpMode,
    /// What could not be opened and what to grant, when something could not.
    pub warnings: Vec<String>,
    seq: AtomicU16,
    ident: u16,
}

impl std::fmt::Debug for Pinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinger")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn open(kind: ICMP, typ: socket2::Type) -> std::io::Result<Client> {
    // One type only: surge-ping's own fallback would hide which one worked.
    let config = Config::builder().kind(kind).sock_type_hint(typ).build();
    let client = Client::new(&config)?;
    if client.get_socket().get_type() != typ {
        return Err(std::io::Error::other("opened another socket type than asked"));
    }
    Ok(client)
}

fn open_family(kind: ICMP) -> (Option<Client>, IcmpMode, Option<std::io::Error>) {
    match open(kind, socket2::Type::RAW) {
        Ok(c) => (Some(c), IcmpMode::Raw, None),
        Err(_) => match open(kind, socket2::Type::DGRAM) {
            Ok(c) => (Some(c), IcmpMode::Dgram, None),
            Err(e) => (None, IcmpMode::None, Some(e)),
        },
    }
}

/// What to grant for ICMP, in words.
#[cfg(windows)]
fn advice(error: &std::io::Error) -> String {
    format!(
        "ICMP echo is not permitted ({error}): run the agent as its Windows service or as an administrator; \
         hosts are found with TCP probes and the neighbour table instead"
    )
}

/// What to grant for ICMP, in words.
#[cfg(not(windows))]
fn advice(error: &std::io::Error) -> String {
    #[cfg(unix)]
    let gid = nix::unistd::getgid().as_raw();
    format!(
        "ICMP echo is not permitted ({error}): grant the agent CAP_NET_RAW \
         (AmbientCapabilities=CAP_NET_RAW in its systemd unit, or `setcap cap_net_raw+ep` on the binary) \
         or allow its group in unprivileged ICMP (`sysctl net.ipv4.ping_group_range=\"{gid} {gid}\"`); \
         hosts are found with TCP probes and the neighbour table instead"
    )
}

impl Pinger {
    /// Opens echo sockets for IPv4 and IPv6.
    pub fn open() -> Self {
        let (v4, mode4, err4) = open_family(ICMP::V4);
        let (v6, mode6, err6) = open_family(ICMP::V6);
        let mut warnings = Vec::new();
        if let Some(e) = err4.as_ref().or(err6.as_ref()) {
            warnings.push(advice(e));
        }
        let mode = match (mode4, mode6) {
            (IcmpMode::Raw, _) | (_, IcmpMode::Raw) => IcmpMode::Raw,
            (IcmpMode::Dgram, _) | (_, IcmpMode::Dgram) => IcmpMode::Dgram,
            _ => IcmpMode::None,
        };
        Self {
            v4,
            v6,
            mode,
            warnings,
            seq: AtomicU16::new(rand::random()),
            ident: rand::random(),
        }
    }

    /// The socket kind in use (raw when either family has a raw socket).
    pub fn mode(&self) -> IcmpMode {
        self.mode
    }

    /// Whether `addr`'s family can be pinged.
    pub fn can_ping(&self, addr: &IpAddr) -> bool {
        match addr {
            IpAddr::V4(_) => self.v4.is_some(),
            IpAddr::V6(_) => self.v6.is_some(),
        }
    }

    /// One echo to `addr`; the round trip when a reply came within `timeout`.
    pub async fn echo(&self, addr: IpAddr, timeout: Duration) -> Option<Duration> {
        let client = match addr {
            IpAddr::V4(_) => self.v4.as_ref()?,
            IpAddr::V6(_) => self.v6.as_ref()?,
        };
        let mut pinger = client.pinger(addr, PingIdentifier(self.ident)).await;
        pinger.timeout(timeout);
        let seq = PingSequence(self.seq.fetch_add(1, Ordering::Relaxed));
        match pinger.ping(seq, &[0u8; 16]).await {
            Ok((_, rtt)) => Some(rtt),
            Err(SurgeError::Timeout { .. }) => None,
            Err(e) => {
                // Unreachable networks and the like: the host is not there.
                tracing::debug!(%addr, error = %e, "echo failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_answers_when_icmp_can_be_opened_and_the_mode_says_which() {
        let p = Pinger::open();
        match p.mode() {
            IcmpMode::None => {
                assert!(
                    !p.warnings.is_empty() && p.warnings[0].contains("CAP_NET_RAW"),
                    "{:?}",
                    p.warnings
                );
                println!("no ICMP here: {:?}", p.warnings);
            }
            _ => {
                let rtt = p.echo("127.0.0.1".parse().unwrap(), Duration::from_secs(2)).await;
                assert!(rtt.is_some(), "127.0.0.1 answers echo ({:?})", p.mode());
            }
        }
    }
}
