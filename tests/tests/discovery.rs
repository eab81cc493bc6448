//! `outpost-agent discover` against real hosts: a test network of network
//! namespaces (one per host, each with its own MAC and kernel), with Debian's
//! `nmap` on the same network as the ground truth, and simulated MikroTiks
//! announcing themselves over MNDP on loopback.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Command;

use outpost_testnet::{HostSpec, SNMP_COMMUNITY, TestNet, snmp_sys_name};
use outpost_tests::bin;
use outpost_tests::sim::Sim;
use serde_json::Value;

/// Ports of the comparison: the agent's default list, given to nmap as is.
const PORTS: &str = "top100";

fn agent() -> String {
    bin("outpost-agent").to_string_lossy().into_owned()
}

fn run_json(mut cmd: Command) -> Value {
    let out = cmd.output().expect("run outpost-agent discover");
    assert!(
        out.status.success(),
        "discover failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    assert_eq!(text.trim().lines().count(), 1, "exactly one JSON object: {text}");
    serde_json::from_str(&text).expect("discover --json prints JSON")
}

fn discover_in(net: &TestNet, extra: &[&str]) -> Value {
    let v6 = ipnet::Ipv6Net::new(net.scan_ipv6(), 120).expect("prefix").trunc();
    let mut cmd = net.scan_command(&agent());
    cmd.args(["discover", &net.ipv4_subnet().to_string(), &v6.to_string()])
        .args(["--ports", PORTS, "--rate", "5000", "--no-names", "--json"])
        .args(["--mndp-refresh", &format!("{}:5678", broadcast(net))])
        .args(extra);
    run_json(cmd)
}

/// The test network's own broadcast address: a refresh request must stay on it.
fn broadcast(net: &TestNet) -> IpAddr {
    let subnet = ipnet::Ipv4Net::new(net.scan_ipv4(), 24).expect("prefix");
    IpAddr::V4(subnet.broadcast())
}

fn hosts(found: &Value) -> BTreeMap<IpAddr, &Value> {
    found["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| (h["address"].as_str().expect("address").parse().expect("an IP"), h))
        .collect()
}

fn ports_of(h: &Value) -> Vec<u16> {
    h["open_ports"]
        .as_array()
        .expect("open_ports")
        .iter()
        .map(|p| u16::try_from(p.as_u64().expect("port")).expect("u16"))
        .collect()
}

/// nmap's grepable output: up hosts and their open TCP ports.
fn nmap(net: &TestNet, args: &[&str]) -> BTreeMap<IpAddr, Vec<u16>> {
    let out = net
        .scan_command("nmap")
        .args(["-T4", "-n", "-oG", "-"])
        .args(args)
        .output()
        .expect("run nmap (scripts/install-deps installs it)");
    assert!(out.status.success(), "nmap: {}", String::from_utf8_lossy(&out.stderr));
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("Host: ") else {
            continue;
        };
        let Some(addr) = rest.split_whitespace().next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        let entry: &mut Vec<u16> = found.entry(addr).or_default();
        if let Some((_, ports)) = rest.split_once("Ports: ") {
            for p in ports.split(", ") {
                let mut f = p.split('/');
                if let (Some(port), Some("open")) = (f.next(), f.next()) {
                    entry.push(port.trim().parse().expect("port"));
                }
            }
        }
    }
    found
}

fn nmap_port_list() -> String {
    outpost_discovery::ports::default_ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn test_network() -> Option<TestNet> {
    TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22, 80])) // 0: SSH and HTTP banners
        .host(HostSpec::new().tcp_ports(&[443, 8728, 3389])) // 1
        .host(HostSpec::snmpd().tcp_ports(&[22])) // 2: real snmpd
        .host(HostSpec::icmp_only()) // 3: answers ICMP, no ports
        .host(HostSpec::silent()) // 4: nothing answers
        .host(HostSpec::new().ipv6().tcp_ports(&[22, 8291])) // 5: IPv6 only
        .build_or_skip()
}

#[test]
fn discovery_finds_exactly_what_the_test_network_holds_and_nmap_agrees() {
    let Some(net) = test_network() else { return };
    net.flush_neighbours().expect("flush");
    let found = discover_in(
        &net,
        &[
            "--snmp-community",
            SNMP_COMMUNITY,
            "--snmp-v3",
            "outpost:sha:authpass1:aes:privpass1",
        ],
    );
    let by_addr = hosts(&found);

    // Exactly the live hosts and the scanner's own addresses; never the silent one.
    let mut want: BTreeSet<IpAddr> = [0, 1, 2, 3, 5].iter().map(|&i| net.host(i).addr()).collect();
    want.insert(IpAddr::V4(net.scan_ipv4()));
    want.insert(IpAddr::V6(net.scan_ipv6()));
    assert_eq!(by_addr.keys().copied().collect::<BTreeSet<_>>(), want, "{found:#}");
    assert!(!by_addr.contains_key(&net.host(4).addr()), "the silent host");

    for (i, ports) in [
        (0, vec![22, 80]),
        (1, vec![443, 3389, 8728]),
        (2, vec![22]),
        (3, vec![]),
        (5, vec![22, 8291]),
    ] {
        let h = by_addr[&net.host(i).addr()];
        assert_eq!(ports_of(h), ports, "host {i}: {h:#}");
        assert_eq!(
            h["mac"],
            net.host(i).mac().to_string(),
            "host {i}: MAC from the neighbour table"
        );
    }
    // The ICMP-only host drops every TCP segment: found by its echo reply
    // alone, with no open port (nmap agrees below).
    let h3 = by_addr[&net.host(3).addr()];
    assert!(net.host(3).drops_tcp());
    assert_eq!(h3["seen_by"], serde_json::json!(["icmp"]), "{h3:#}");
    let h0 = by_addr[&net.host(0).addr()];
    let services = h0["services"].as_array().expect("services");
    assert_eq!(services[0]["product"], "OpenSSH", "{h0:#}");
    assert_eq!(services[1]["service"], "http");
    assert_eq!(services[1]["product"], "nginx");

    // SNMP: the real snmpd answers v2c; the others have no agent, which is no error.
    let h2 = by_addr[&net.host(2).addr()];
    assert_eq!(h2["snmp"]["name"], snmp_sys_name(2), "{h2:#}");
    assert!(!h2["snmp"]["interfaces"].as_array().expect("interfaces").is_empty());
    assert!(h0["snmp"].is_null() && h0["snmp_error"].is_null(), "{h0:#}");
    assert_eq!(found["stats"]["icmp"], "raw");
    assert_eq!(found["stats"]["hosts_up"], want.len());

    // nmap on the same network, neighbour caches flushed first: the same hosts
    // up, the same ports open, both ways.
    net.flush_neighbours().expect("flush");
    let v4 = net.ipv4_subnet().to_string();
    let v6 = ipnet::Ipv6Net::new(net.scan_ipv6(), 120)
        .expect("prefix")
        .trunc()
        .to_string();
    let mut up: BTreeSet<IpAddr> = nmap(&net, &["-sn", &v4]).into_keys().collect();
    up.extend(nmap(&net, &["-6", "-sn", &v6]).into_keys());
    assert_eq!(up, want, "nmap -sn and discover find the same hosts");
    let list = nmap_port_list();
    let targets: Vec<String> = up.iter().map(IpAddr::to_string).collect();
    let (v4t, v6t): (Vec<&String>, Vec<&String>) = targets.iter().partition(|t| !t.contains(':'));
    let mut ports = nmap(
        &net,
        &[
            &["-sT", "-Pn", "-p", &list][..],
            &v4t.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    ports.extend(nmap(
        &net,
        &[
            &["-6", "-sT", "-Pn", "-p", &list][..],
            &v6t.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ]
        .concat(),
    ));
    for addr in &want {
        let mut theirs = ports.get(addr).cloned().unwrap_or_default();
        theirs.sort_unstable();
        assert_eq!(ports_of(by_addr[addr]), theirs, "{addr}: nmap -sT and discover agree");
    }
}

#[test]
fn snmp_timeouts_and_wrong_credentials_are_named_results() {
    let Some(net) = TestNet::builder().host(HostSpec::snmpd()).build_or_skip() else {
        return;
    };
    let addr = net.host(0).addr().to_string();
    let mut cmd = net.scan_command(&agent());
    cmd.args(["discover", &addr, "--ports", "22", "--no-names", "--no-mndp", "--json"])
        .args(["--snmp-community", "not-the-community"]);
    let started = std::time::Instant::now();
    let found = run_json(cmd);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "no hang");
    let h = &found["hosts"][0];
    let e = h["snmp_error"].as_str().expect("an SNMP error");
    assert!(e.contains("no answer") && e.contains("community"), "{e}");

    let mut cmd = net.scan_command(&agent());
    cmd.args(["discover", &addr, "--ports", "22", "--no-names", "--no-mndp", "--json"])
        .args(["--snmp-v3", "intruder:sha:authpass1:aes:privpass1"]);
    let found = run_json(cmd);
    let e = found["hosts"][0]["snmp_error"]
        .as_str()
        .expect("an SNMP error")
        .to_lowercase();
    assert!(e.contains("does not know") && e.contains("intruder"), "{e}");
}

#[test]
fn without_icmp_permission_hosts_are_found_by_tcp_or_their_neighbour_entry_and_what_to_grant_is_named() {
    let Some(net) = TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22]))
        .host(HostSpec::icmp_only())
        .host(HostSpec::silent())
        .build_or_skip()
    else {
        return;
    };
    // An unprivileged user, in a namespace whose ping_group_range allows nobody.
    let mut cmd = net.scan_command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", &agent()])
        .args([
            "discover",
            &net.ipv4_subnet().to_string(),
            "--ports",
            "22,80",
            "--no-names",
            "--no-mndp",
            "--json",
        ]);
    let found = run_json(cmd);
    assert_eq!(found["stats"]["icmp"], "none");
    let warning = found["stats"]["warnings"][0].as_str().expect("a warning");
    assert!(
        warning.contains("CAP_NET_RAW") && warning.contains("ping_group_range"),
        "{warning}"
    );
    let by_addr = hosts(&found);
    let h0 = by_addr
        .get(&net.host(0).addr())
        .unwrap_or_else(|| panic!("host 0 found by TCP: {found:#}"));
    assert_eq!(h0["seen_by"], serde_json::json!(["tcp"]), "{h0:#}");
    assert_eq!(ports_of(h0), vec![22]);
    // The ICMP-only host drops the TCP probes, so nothing it sends says it is
    // there; but the probes made the kernel ask for its MAC, and its answer
    // left a confirmed neighbour entry: that is how it is found.
    assert!(net.host(1).drops_tcp());
    let h1 = by_addr
        .get(&net.host(1).addr())
        .unwrap_or_else(|| panic!("the ICMP-only host, by its neighbour entry: {found:#}"));
    assert_eq!(h1["seen_by"], serde_json::json!(["arp"]), "{h1:#}");
    assert_eq!(h1["mac"], net.host(1).mac().to_string());
    assert!(ports_of(h1).is_empty(), "{h1:#}");
    // The silent host's entry is static, never an answer: not found.
    assert!(!by_addr.contains_key(&net.host(2).addr()), "not the silent host");
}

#[test]
fn an_unprivileged_agent_pings_with_dgram_sockets_where_ping_group_range_allows_it() {
    let Some(net) = TestNet::builder()
        .host(HostSpec::icmp_only()) // 0
        .host(HostSpec::new().ipv6()) // 1: IPv6 only
        .host(HostSpec::silent()) // 2
        .build_or_skip()
    else {
        return;
    };
    // Every group may open ICMP datagram sockets in the scan namespace (the
    // range covers ICMPv6 too); the agent runs as nobody, with no capability.
    ok(
        net.scan_command("sysctl")
            .args(["-w", "net.ipv4.ping_group_range=0 2147483647"]),
        "allow unprivileged ICMP",
    );
    net.flush_neighbours().expect("flush");
    let v6 = ipnet::Ipv6Net::new(net.scan_ipv6(), 120).expect("prefix").trunc();
    let mut cmd = net.scan_command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(agent())
        .args(["discover", &net.ipv4_subnet().to_string(), &v6.to_string()])
        .args(["--ports", "22", "--no-names", "--no-mndp", "--json"]);
    let found = run_json(cmd);
    assert_eq!(found["stats"]["icmp"], "dgram", "{:#}", found["stats"]);
    let warnings = found["stats"]["warnings"].as_array().expect("warnings");
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("CAP_NET_RAW"))),
        "nothing to grant: {warnings:?}"
    );
    let by_addr = hosts(&found);
    for i in [0, 1] {
        let h = by_addr
            .get(&net.host(i).addr())
            .unwrap_or_else(|| panic!("host {i} by its echo reply: {found:#}"));
        assert_eq!(h["seen_by"], serde_json::json!(["icmp"]), "host {i}: {h:#}");
        assert!(h["rtt_us"].is_u64(), "host {i}: {h:#}");
    }
    assert!(!by_addr.contains_key(&net.host(2).addr()), "not the silent host");
}

#[test]
fn simulated_mikrotiks_are_found_over_mndp_with_their_api_recognised() {
    let to = {
        // A free loopback port for the agent to listen on.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address")
    };
    let sim = Sim::start_announcing(2, "127.0.78.1", to);
    let targets: Vec<&str> = sim.devices.iter().map(|d| d.ip.as_str()).collect();
    let ports: Vec<String> = sim.devices.iter().map(|d| d.api_port.to_string()).collect();
    let mut cmd = Command::new(agent());
    cmd.arg("discover")
        .args(&targets)
        .args(["--ports", &ports.join(","), "--no-names", "--json"])
        .args(["--mndp-listen", &to.to_string(), "--no-mndp-refresh"]);
    let found = run_json(cmd);
    let by_addr = hosts(&found);
    for d in &sim.devices {
        let h = by_addr[&d.ip.parse::<IpAddr>().expect("an IP")];
        assert_eq!(h["mndp"]["identity"], d.identity.as_str(), "{h:#}");
        assert_eq!(h["mndp"]["ipv4"], d.ip.as_str());
        assert_eq!(h["mndp"]["platform"], "MikroTik");
        assert_eq!(h["mac"], h["mndp"]["mac"]);
        assert!(
            h["names"]
                .as_array()
                .expect("names")
                .iter()
                .any(|n| n == d.identity.as_str())
        );
        assert_eq!(h["vendor"], "Routerboard.com", "MikroTik's OUI: {h:#}");
        let api = h["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["port"] == d.api_port)
            .expect("the API port open");
        assert_eq!(api["service"], "routeros-api", "recognised by its reply: {api:#}");
        assert_eq!(api["product"], "MikroTik RouterOS API");
    }
}

fn ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn without_targets_a_lan_an_ipv6_prefix_and_a_slash_16_fit_the_cap_together() {
    // The scan side has the bridge's /24 and /64; a second address on the
    // bridge adds a /16, as docker0 brings on many hosts.
    let Some(net) = TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22])) // 0
        .host(HostSpec::new().ipv6().tcp_ports(&[22])) // 1: IPv6 only
        .build_or_skip()
    else {
        return;
    };
    // Without its prefix route, so probes into the /16 fail at once (no
    // route there) instead of asking ARP for two thousand addresses: the
    // neighbour table's limit is shared by every namespace on the machine.
    // The address table, which the agent reads, still says /16.
    ok(
        net.scan_command("ip")
            .args(["addr", "add", "172.31.0.1/16", "dev", net.bridge(), "noprefixroute"]),
        "add a /16",
    );
    net.flush_neighbours().expect("flush");
    // The IPv6 host has just talked to the scan side: its neighbour entry is
    // how a /64 that cannot be swept still yields it.
    ok(
        net.scan_command("ping")
            .args(["-6", "-c1", "-W2", &net.host(1).addr().to_string()]),
        "ping the IPv6 host",
    );

    let mut cmd = net.scan_command(&agent());
    cmd.args([
        "discover",
        "--ports",
        "22",
        "--rate",
        "5000",
        "--no-names",
        "--no-mndp",
        "--json",
    ]);
    let found = run_json(cmd);
    let stats = &found["stats"];
    // 4096 in all: the /24 whole (254), then the largest block of the /16
    // around this host that fits the 3842 left, a /21 (2046).
    assert_eq!(stats["addresses"], 254 + 2046, "{stats:#}");
    let warnings: Vec<&str> = stats["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let v6 = ipnet::Ipv6Net::new(net.scan_ipv6(), 64)
        .expect("prefix")
        .trunc()
        .to_string();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("172.31.0.0/16") && w.contains("172.31.0.0/21") && w.contains("cap of 4096")),
        "{warnings:#?}"
    );
    let ipv6 = warnings.iter().filter(|w| w.contains("IPv6")).collect::<Vec<_>>();
    assert_eq!(ipv6.len(), 1, "said once: {warnings:#?}");
    assert!(
        ipv6[0].contains(&v6) && ipv6[0].contains("neighbour table"),
        "{warnings:#?}"
    );

    let by_addr = hosts(&found);
    assert_eq!(ports_of(by_addr[&net.host(0).addr()]), vec![22], "{found:#}");
    let h1 = by_addr
        .get(&net.host(1).addr())
        .unwrap_or_else(|| panic!("the IPv6 host from the neighbour table: {found:#}"));
    assert_eq!(ports_of(h1), vec![22], "{h1:#}");
    assert_eq!(h1["mac"], net.host(1).mac().to_string());

    // Explicit targets over the cap stay an error naming it and how to raise it.
    let out = net
        .scan_command(&agent())
        .args(["discover", "172.31.0.0/16", "--no-mndp", "--json"])
        .output()
        .expect("run discover");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("65534 addresses") && err.contains("cap of 4096") && err.contains("--max-addresses"),
        "{err}"
    );
}
