//! Runs the real nmap against a port this test opens on 127.0.0.1 and
//! imports its XML, so a change in nmap's output shows up here; and kills a
//! real nmap mid-scan, whose cut-short output must be refused.
//!
//! Skipped, with a message, when nmap is not installed; with
//! `OUTPOST_REQUIRE_NMAP=1` (as in CI, where `scripts/install-deps` installs
//! it) a missing nmap fails the test instead.

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};

use outpost_discovery::nmap_xml::{self, HostState, NmapXmlError, PortState, Protocol};

/// Whether nmap can run; skips (or, with `OUTPOST_REQUIRE_NMAP=1`, fails).
fn nmap_present() -> bool {
    let version = Command::new("nmap").arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        if std::env::var("OUTPOST_REQUIRE_NMAP").as_deref() == Ok("1") {
            panic!("nmap is required (OUTPOST_REQUIRE_NMAP=1) but cannot run: {version:?}");
        }
        eprintln!("skipped: nmap is not installed (apt-get install nmap, or scripts/install-deps)");
        return false;
    }
    true
}

#[test]
fn imports_a_real_nmap_scan_of_loopback() {
    if !nmap_present() {
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
    assert!(scan.finished);
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

#[test]
fn a_real_nmap_killed_mid_scan_is_refused_with_where_its_output_ends() {
    if !nmap_present() {
        return;
    }
    // One host at a time, slowly: the first host is written whole long
    // before the second is done, and nmap is killed in between.
    let mut nmap = Command::new("nmap")
        .args([
            "-oX",
            "-",
            "-n",
            "-sT",
            "--max-hostgroup",
            "1",
            "--scan-delay",
            "100ms",
            "-p",
            "1-40",
        ])
        .args(["127.0.0.1", "127.0.0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = nmap.stdout.take().unwrap();
    let mut xml = Vec::new();
    let mut chunk = [0u8; 4096];
    // Bounded: nmap's whole output for two hosts is a few KB.
    while !String::from_utf8_lossy(&xml).contains("</host>") && xml.len() < 1 << 20 {
        let n = stdout.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "nmap ended before its first host: {}",
            String::from_utf8_lossy(&xml)
        );
        xml.extend_from_slice(&chunk[..n]);
    }
    nmap.kill().unwrap();
    stdout.read_to_end(&mut xml).unwrap();
    assert!(!nmap.wait().unwrap().success());

    let e = nmap_xml::parse(&xml).unwrap_err();
    let NmapXmlError::Truncated { position, hosts } = &e else {
        panic!("{e}\n{}", String::from_utf8_lossy(&xml));
    };
    assert_eq!(position.offset, xml.len() as u64, "{e}");
    assert_eq!(*hosts, 1, "{e}");
    assert!(e.to_string().contains("nothing was imported"), "{e}");
}
