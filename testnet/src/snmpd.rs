//! Debian's `snmpd` on a test host: configuration, start, readiness.
//!
//! The configuration file lives next to, not inside, the persistent
//! directory: snmpd rewrites `PERSISTENT/snmpd.conf` with the users it
//! created. `-C` keeps it from reading the system's configuration, `-f -Lo`
//! keeps it in the foreground logging to stdout (a log file per host),
//! `-I -smux` skips the SMUX port and `-m ''` the MIB files, which Debian
//! does not ship and snmpd would complain about at length.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::Host;
use crate::{TestNetError, netns};

/// The SNMPv2c read community of every `snmpd` host.
pub const SNMP_COMMUNITY: &str = "public";

/// `sysLocation.0` of every `snmpd` host.
pub const SNMP_SYS_LOCATION: &str = "test lab, rack 7";

/// `sysContact.0` of every `snmpd` host.
pub const SNMP_SYS_CONTACT: &str = "noc@example.invalid";

/// An SNMPv3 user configured on every `snmpd` host, at security level
/// authPriv, with protocols as net-snmp names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnmpV3User {
    /// The user name.
    pub name: &'static str,
    /// `MD5`, `SHA`, `SHA-224`, `SHA-256`, `SHA-384` or `SHA-512`.
    pub auth_protocol: &'static str,
    /// The authentication password.
    pub auth_password: &'static str,
    /// `DES`, `AES` (AES-128), `AES-192` or `AES-256`.
    pub priv_protocol: &'static str,
    /// The privacy password.
    pub priv_password: &'static str,
}

/// The main SNMPv3 user: SHA-1 and AES-128, the most common setup.
pub const SNMP_V3_USER: SnmpV3User = SnmpV3User {
    name: "outpost",
    auth_protocol: "SHA",
    auth_password: "authpass1",
    priv_protocol: "AES",
    priv_password: "privpass1",
};

/// Every SNMPv3 user on `snmpd` hosts: [`SNMP_V3_USER`] and one per other
/// protocol pair worth testing. The AES-192/256 users with a hash shorter
/// than the key need net-snmp's key extension (Blumenthal's draft).
pub const SNMP_V3_USERS: &[SnmpV3User] = &[
    SNMP_V3_USER,
    SnmpV3User {
        name: "md5des",
        auth_protocol: "MD5",
        auth_password: "authpass2",
        priv_protocol: "DES",
        priv_password: "privpass2",
    },
    SnmpV3User {
        name: "sha256aes256",
        auth_protocol: "SHA-256",
        auth_password: "authpass3",
        priv_protocol: "AES-256",
        priv_password: "privpass3",
    },
    SnmpV3User {
        name: "sha512aes192",
        auth_protocol: "SHA-512",
        auth_password: "authpass4",
        priv_protocol: "AES-192",
        priv_password: "privpass4",
    },
    SnmpV3User {
        name: "sha1aes256",
        auth_protocol: "SHA",
        auth_password: "authpass5",
        priv_protocol: "AES-256",
        priv_password: "privpass5",
    },
];

/// `sysName.0` of the `snmpd` on host `index`.
pub fn snmp_sys_name(index: usize) -> String {
    format!("testnet-h{index}")
}

/// Longest wait for a new snmpd to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Where `snmpd` is, or what to install.
pub(crate) fn find_snmpd() -> Result<PathBuf, TestNetError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("snmpd"))
        .find(|p| p.is_file())
        .ok_or_else(|| TestNetError::Unavailable {
            needed: "snmpd is not installed: install Debian's `snmpd` package (scripts/install-deps does)".into(),
        })
}

fn config(host: &Host) -> String {
    let mut conf = format!("rocommunity {SNMP_COMMUNITY} default\nrocommunity6 {SNMP_COMMUNITY} default\n");
    for u in SNMP_V3_USERS {
        // Writing to a String cannot fail.
        let _ = writeln!(
            conf,
            "createUser {} {} {} {} {}\nrouser {} priv",
            u.name, u.auth_protocol, u.auth_password, u.priv_protocol, u.priv_password, u.name
        );
    }
    let _ = writeln!(
        conf,
        "sysName {}\nsysLocation {SNMP_SYS_LOCATION}\nsysContact {SNMP_SYS_CONTACT}",
        snmp_sys_name(host.index)
    );
    conf
}

/// Starts snmpd for `host` in its namespace, with its files under `dir`.
pub(crate) fn start(snmpd: &Path, dir: &Path, host: &Host) -> Result<Child, TestNetError> {
    let ns = host.namespace().ok_or_else(|| TestNetError::Unavailable {
        needed: "snmpd needs a live host (a silent host has no namespace)".into(),
    })?;
    let state = dir.join("state");
    std::fs::create_dir_all(&state).map_err(|e| TestNetError::io(format!("creating {}", state.display()), e))?;
    let conf = dir.join("snmpd.conf");
    std::fs::write(&conf, config(host)).map_err(|e| TestNetError::io(format!("writing {}", conf.display()), e))?;
    let log_path = dir.join("snmpd.log");
    let log = File::create(&log_path).map_err(|e| TestNetError::io(format!("creating {}", log_path.display()), e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| TestNetError::io("duplicating a log file handle", e))?;
    let mut endpoints = Vec::new();
    if let Some(v4) = host.ipv4() {
        endpoints.push(format!("udp:{v4}:161"));
    }
    if let Some(v6) = host.ipv6() {
        endpoints.push(format!("udp6:[{v6}]:161"));
    }
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(snmpd)
        .args(["-f", "-Lo", "-C", "-I", "-smux", "-m", ""])
        .arg("-c")
        .arg(&conf)
        .arg(format!("--persistentDir={}", state.display()))
        .args(&endpoints)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| TestNetError::io(format!("starting snmpd in {ns}"), e))
}

/// A v2c GET of sysUpTime.0 with community `public`, request id 1,
/// encoded by hand so readiness does not depend on the client under test.
const PROBE: [u8; 40] = [
    0x30, 0x26, // message
    0x02, 0x01, 0x01, // version 2c
    0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // community
    0xa0, 0x19, // GetRequest
    0x02, 0x01, 0x01, // request id
    0x02, 0x01, 0x00, // error status
    0x02, 0x01, 0x00, // error index
    0x30, 0x0e, 0x30, 0x0c, // varbind list, varbind
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00, // 1.3.6.1.2.1.1.3.0
    0x05, 0x00, // NULL
];

/// Waits until the snmpd in `child` answers a v2c GET sent to `addr` from
/// namespace `scan_ns`, or fails with its log.
pub(crate) fn wait_ready(child: &mut Child, scan_ns: &str, addr: IpAddr, log: &Path) -> Result<(), TestNetError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let target = SocketAddr::new(addr, 161);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(TestNetError::Command {
                command: format!("snmpd for {addr}"),
                status: status.to_string(),
                stderr: std::fs::read_to_string(log).unwrap_or_default(),
            });
        }
        if netns::run_in(scan_ns, || probe(target))? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(TestNetError::NotReady {
        what: format!("snmpd on {addr} (log: {})", log.display()),
        waited: READY_TIMEOUT,
    })
}

/// Whether anything answers [`PROBE`] at `target` within 300 ms.
fn probe(target: SocketAddr) -> bool {
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = UdpSocket::bind(bind) else {
        return false;
    };
    if socket.connect(target).is_err() || socket.set_read_timeout(Some(Duration::from_millis(300))).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    // A refused send or receive (ICMP port unreachable) means not yet bound.
    socket.send(&PROBE).is_ok() && socket.recv(&mut buf).is_ok_and(|n| n > 0)
}
