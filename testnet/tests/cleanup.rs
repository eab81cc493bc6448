//! Nothing outlives a network: Drop removes it, and a network leaked by a
//! process that died is removed by the next build.

use std::process::Command;
use std::sync::Mutex;

use outpost_testnet::{HostSpec, TestNet};

/// The tests here look at all namespaces; one at a time, so one's network
/// is not mistaken for another's leftovers.
static SERIAL: Mutex<()> = Mutex::new(());

const LEAK_ENV: &str = "OUTPOST_TESTNET_LEAK";

fn namespaces_of(id: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            name.strip_prefix(id)
                .is_some_and(|rest| rest == "s" || rest.starts_with('h'))
        })
        .map(str::to_owned)
        .collect()
}

fn pids_in(ns: &str) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Running, not a zombie waiting for a slow pid 1.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

fn full_network() -> outpost_testnet::Builder {
    TestNet::builder()
        .host(HostSpec::snmpd())
        .host(HostSpec::new().tcp_ports(&[22, 80]))
        .host(HostSpec::silent())
}

#[test]
fn drop_leaves_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(net) = full_network().build_or_skip() else {
        return;
    };
    let id = net.id().to_owned();
    let namespaces = namespaces_of(&id);
    // Scan side and the two live hosts; the silent host has none.
    assert_eq!(namespaces.len(), 3, "{namespaces:?}");
    let snmpd_pids = pids_in(net.host(0).namespace().expect("live host"));
    assert!(!snmpd_pids.is_empty(), "snmpd is not running");
    drop(net);
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
    for pid in snmpd_pids {
        assert!(!alive(pid), "snmpd {pid} survived the network");
    }
}

/// Run by [`a_leaked_network_is_removed_by_the_next_build`] in a child
/// process: builds a network and leaks it, as a crash would.
#[test]
#[ignore = "a helper, run in a child process by a_leaked_network_is_removed_by_the_next_build"]
fn leak_a_network() {
    if std::env::var_os(LEAK_ENV).is_none() {
        return;
    }
    let net = full_network().build().expect("building the network to leak");
    println!("LEAKED {}", net.id());
    std::mem::forget(net);
}

#[test]
fn a_leaked_network_is_removed_by_the_next_build() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Skips here, before the child would fail, when networks are unavailable.
    let Some(first) = TestNet::builder().build_or_skip() else {
        return;
    };
    drop(first);

    let exe = std::env::current_exe().expect("test binary path");
    let child = Command::new(exe)
        .args([
            "--exact",
            "leak_a_network",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LEAK_ENV, "1")
        .output()
        .expect("running the child test process");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let id = stdout
        .lines()
        // The harness prints "test leak_a_network ... " on the same line.
        .find_map(|l| l.split_once("LEAKED ").map(|(_, id)| id))
        .unwrap_or_else(|| panic!("the child did not report its network:\n{stdout}"))
        .trim()
        .to_owned();

    // The child is gone; its network and its snmpd are not.
    let leaked = namespaces_of(&id);
    assert_eq!(leaked.len(), 3, "{leaked:?}");
    let snmpd_pids = pids_in(&format!("{id}h0"));
    assert!(
        !snmpd_pids.is_empty() && snmpd_pids.iter().all(|&p| alive(p)),
        "the leaked snmpd is not running"
    );

    let leaked_dirs = || {
        let prefix = format!("outpost-testnet-{id}-");
        std::fs::read_dir(std::env::temp_dir())
            .expect("reading the temporary directory")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count()
    };
    assert_eq!(leaked_dirs(), 1, "the leaked network's temporary directory");

    let second = TestNet::builder()
        .host(HostSpec::icmp_only())
        .build()
        .expect("the second build");
    assert_eq!(
        namespaces_of(&id),
        Vec::<String>::new(),
        "the leaked network survived a build"
    );
    assert_eq!(
        leaked_dirs(),
        0,
        "the leaked network's temporary directory survived a build"
    );
    for pid in snmpd_pids {
        assert!(!alive(pid), "the leaked snmpd {pid} survived");
    }
    drop(second);
}
