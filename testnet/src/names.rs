//! Namespace names, subnet allocation and cleanup of networks left behind.
//!
//! A network's id is `op{pid}x{n}`: `pid` is the process that built it and
//! `n` (1..=254) its subnet, 10.77.n.0/24 and fd77:n::/64. The scan-side
//! namespace is `{id}s`, host namespaces `{id}h{i}`. Interface names live
//! inside those namespaces (`br0`, `v{i}`, `eth0`), so none of them meets
//! the 15-character limit or another network's names.
//!
//! `n` is unique among the networks that exist, across threads and
//! processes: it is chosen under an exclusive lock on [`LOCK_PATH`] from the
//! numbers not used by any existing namespace, and claimed by creating the
//! scan namespace before the lock is released. Subnet 10.77.0.0/24 is left
//! for networks built by hand.
//!
//! The pid in the name makes cleanup after a crash possible: a network whose
//! creator is no longer running belongs to nobody and is removed (its
//! processes killed first, as a live process keeps a namespace alive), and
//! so is its temporary directory, `outpost-testnet-{id}-*` (snmpd's files).
//! A reused pid only delays that until the new process exits.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::TestNetError;
use crate::ip::{ip, netns_list, netns_pids};

/// Serialises subnet allocation between processes (flock(2)).
pub const LOCK_PATH: &str = "/run/outpost-testnet.lock";

const PREFIX: &str = "op";

/// How long processes in a namespace get to exit on SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// The parts of a test namespace's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetName {
    pub(crate) pid: u32,
    pub(crate) subnet: u8,
}

/// The network id for a creator pid and a subnet number.
pub(crate) fn net_id(pid: u32, subnet: u8) -> String {
    format!("{PREFIX}{pid}x{subnet}")
}

/// Parses a namespace name made by this crate; anything else is `None`, so
/// namespaces of other tools are never touched.
pub(crate) fn parse(name: &str) -> Option<NetName> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('x')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (subnet, role) = rest.split_at(digits);
    let role_ok = role == "s"
        || role
            .strip_prefix('h')
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || !role_ok {
        return None;
    }
    let subnet: u8 = subnet.parse().ok()?;
    if subnet == 0 || subnet == 255 {
        return None;
    }
    Some(NetName {
        pid: pid.parse().ok()?,
        subnet,
    })
}

/// Whether `pid` runs; a zombie does not (its parent may be a pid 1 that is
/// slow to reap, or never does).
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S …": comm may hold spaces and parentheses, the state
    // follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Holds [`LOCK_PATH`] locked until dropped.
struct Lock(#[allow(dead_code)] File);

fn lock() -> Result<Lock, TestNetError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .map_err(|e| TestNetError::io(format!("opening {LOCK_PATH}"), e))?;
    file.lock()
        .map_err(|e| TestNetError::io(format!("locking {LOCK_PATH}"), e))?;
    Ok(Lock(file))
}

/// Removes the namespaces of test networks whose creating process is gone,
/// and returns their names.
///
/// [`Builder::build`](crate::Builder::build) calls this first, so networks
/// leaked by a crashed or killed test disappear with the next test run.
pub fn cleanup_stale() -> Result<Vec<String>, TestNetError> {
    let _lock = lock()?;
    cleanup_stale_locked()
}

fn cleanup_stale_locked() -> Result<Vec<String>, TestNetError> {
    let mut removed = Vec::new();
    for name in netns_list()? {
        let Some(parsed) = parse(&name) else { continue };
        if alive(parsed.pid) {
            continue;
        }
        tracing::info!(namespace = %name, pid = parsed.pid, "removing a test namespace whose creator is gone");
        remove_namespace(&name)?;
        removed.push(name);
    }
    remove_stale_temp_dirs();
    Ok(removed)
}

const TEMP_PREFIX: &str = "outpost-testnet-";

/// The prefix of network `id`'s temporary directory.
pub(crate) fn temp_dir_prefix(id: &str) -> String {
    format!("{TEMP_PREFIX}{id}-")
}

/// Best effort: a directory that cannot be removed only wastes space.
fn remove_stale_temp_dirs() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .map(|(id, _)| id)
        else {
            continue;
        };
        if parse(&scan_ns(id)).is_some_and(|net| !alive(net.pid))
            && let Err(e) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a stale test directory");
        }
    }
}

/// Chooses a free subnet and claims it by creating the scan namespace.
/// Returns the network id.
pub(crate) fn claim(pid: u32) -> Result<String, TestNetError> {
    let _lock = lock()?;
    cleanup_stale_locked()?;
    let used: HashSet<u8> = netns_list()?
        .iter()
        .filter_map(|n| parse(n))
        .map(|n| n.subnet)
        .collect();
    let subnet = (1..=254u8)
        .find(|n| !used.contains(n))
        .ok_or(TestNetError::NoFreeSubnet)?;
    let id = net_id(pid, subnet);
    ip(&["netns", "add", &scan_ns(&id)])?;
    Ok(id)
}

/// The scan-side namespace of network `id`.
pub(crate) fn scan_ns(id: &str) -> String {
    format!("{id}s")
}

/// The namespace of host `index` of network `id`.
pub(crate) fn host_ns(id: &str, index: usize) -> String {
    format!("{id}h{index}")
}

/// Kills every process in namespace `ns` (SIGTERM, then SIGKILL after a
/// grace period) and deletes it. A namespace that no longer exists is fine.
pub(crate) fn remove_namespace(ns: &str) -> Result<(), TestNetError> {
    if !Path::new("/run/netns").join(ns).exists() {
        return Ok(());
    }
    let me = std::process::id();
    let others = |pids: Vec<i32>| {
        pids.into_iter()
            .filter(|&p| p > 0 && p as u32 != me)
            .collect::<Vec<_>>()
    };
    let mut pids = others(netns_pids(ns)?);
    for &pid in &pids {
        // Already gone is fine: it exited between listing and signalling.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + TERM_GRACE;
    while !pids.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        pids = others(netns_pids(ns)?);
    }
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    ip(&["netns", "del", ns])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let id = net_id(4_194_303, 254);
        assert_eq!(
            parse(&scan_ns(&id)),
            Some(NetName {
                pid: 4_194_303,
                subnet: 254
            })
        );
        assert_eq!(
            parse(&host_ns(&id, 12)),
            Some(NetName {
                pid: 4_194_303,
                subnet: 254
            })
        );
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "scan",
            "h1",
            "op",
            "opx1s",
            "op12x0s",
            "op12x255s",
            "op12x3",
            "op12x3h",
            "op12x3q",
            "op12x3h1a",
            "opa1x3s",
            "op1x999s",
            "op12x3s ",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }
}
