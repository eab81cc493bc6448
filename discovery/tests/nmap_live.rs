//! Runs the real nmap against a port this test opens on 127.0.0.1 and
//! imports its XML, so a change in nmap's output shows up here.
//!
//! Skipped, with a message, when nmap is not installed; with
//! `OUTPOST_REQUIRE_NMAP=1` (as in CI, where `scripts/install-deps` installs
//! it) a missing nmap fails the test instead.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::Command;

use outpost_discovery::nmap_xml::{self, HostState, PortState, Protocol};

#[test]
fn imports_a_real_nmap_scan_of_loopback() {
    let version = Command::new("nmap").arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        if std::env::var("OUTPOST_REQUIRE_NMAP").as_deref() == Ok("1") {
            panic!("nmap is required (OUTPOST_REQUIRE_NMAP=1) but cannot run: {version:?}");
        }
        eprintln!("skipped: nmap is not installed (apt-get install nmap, or scripts/install-deps)");
        return;
    }

    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    // A port that was free a moment ago is, almost surely, still closed.
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    // -n: no reverse DNS, so nothing leaves loopback.
    let out = Command::new("nmap")
        .args(["-oX", "-", "-n", "-sT", "-p"])
        .arg(format!("{open_port},{closed_port}"))
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let scan = nmap_xml::parse(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out.stdout)));
    assert!(!scan.partial && scan.finished);
    assert!(
        scan.args.as_deref().is_some_and(|a| a.contains("-sT")),
        "{:?}",
        scan.args
    );
    assert!(scan.started.is_some_and(|s| s > 1_600_000_000));
    assert_eq!(scan.hosts.len(), 1);
    let host = &scan.hosts[0];
    assert_eq!(host.state, HostState::Up);
    assert_eq!(host.addresses, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert_eq!(host.mac, None, "loopback has no MAC");
    let state = |port: u16| {
        host.ports
            .iter()
            .find(|p| p.port == port && p.protocol == Protocol::Tcp)
            .map(|p| p.state)
    };
    assert_eq!(state(open_port), Some(PortState::Open), "{:?}", host.ports);
    assert_eq!(state(closed_port), Some(PortState::Closed), "{:?}", host.ports);
    drop(open);
}
