//! Each host kind behaves as specified, seen from inside the scan namespace
//! the way a scanner sees it: ping, TCP connects, the neighbour table, SNMP.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use outpost_testnet::{HTTP_SERVER, HostSpec, SSH_BANNER, TestNet};

fn ping(net: &TestNet, addr: IpAddr) -> bool {
    net.scan_command("ping")
        .args(["-c1", "-W1", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running ping (Debian package iputils-ping)")
        .success()
}

fn connect(net: &TestNet, addr: IpAddr, port: u16) -> std::io::Result<TcpStream> {
    let target = SocketAddr::new(addr, port);
    net.run_in_scan(|| TcpStream::connect_timeout(&target, Duration::from_millis(700)))
        .expect("entering the scan namespace")
}

/// Reads until `until` is in what was read, EOF, or 3 s.
fn read_text(stream: &mut TcpStream, until: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("set_read_timeout");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(until) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading: {e}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn neighbours(net: &TestNet) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", net.scan_namespace(), "neigh", "show", "dev", net.bridge()])
        .output()
        .expect("ip neigh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The neighbour-table line for `addr`, if any.
fn neighbour(table: &str, addr: IpAddr) -> Option<String> {
    let addr = addr.to_string();
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(addr.as_str()))
        .map(str::to_owned)
}

#[test]
fn host_kinds_behave_as_specified() {
    let Some(net) = TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22, 80]).ipv4())
        .host(HostSpec::icmp_only())
        .host(HostSpec::silent())
        .host(HostSpec::new().ipv6().tcp_ports(&[22]))
        .host(HostSpec::new().ipv4().ipv6())
        .build_or_skip()
    else {
        return;
    };
    let [open, icmp, silent, v6only, dual] = [0, 1, 2, 3, 4].map(|i| net.host(i));
    assert!(
        net.ipv4_subnet().to_string().starts_with("10.77."),
        "{}",
        net.ipv4_subnet()
    );
    assert!(
        net.ipv6_subnet().to_string().starts_with("fd77:"),
        "{}",
        net.ipv6_subnet()
    );

    // ICMP: every live host answers on each of its addresses, the silent one does not.
    for host in [open, icmp, v6only, dual] {
        for addr in host.addrs() {
            assert!(ping(&net, addr), "host {} at {addr} should answer ping", host.index());
        }
    }
    assert!(!ping(&net, silent.addr()), "the silent host answered ping");

    // Addresses: families as asked for.
    assert!(open.ipv4().is_some() && open.ipv6().is_none());
    assert!(v6only.ipv4().is_none() && v6only.ipv6().is_some());
    assert!(dual.ipv4().is_some() && dual.ipv6().is_some());
    let v6only_ns = v6only.namespace().expect("a live host has a namespace");
    let v4_on_v6only = std::process::Command::new("ip")
        .args(["-n", v6only_ns, "-4", "addr", "show", "dev", "eth0"])
        .output()
        .expect("ip addr");
    assert!(
        v4_on_v6only.stdout.is_empty(),
        "the IPv6-only host has IPv4: {}",
        String::from_utf8_lossy(&v4_on_v6only.stdout)
    );

    // TCP: banners on open ports, a reset for a closed port, silence from the
    // ICMP-only host and the silent one.
    let mut ssh = connect(&net, open.addr(), 22).expect("connect to port 22");
    assert_eq!(read_text(&mut ssh, "\r\n"), format!("{SSH_BANNER}\r\n"));
    let mut http = connect(&net, open.addr(), 80).expect("connect to port 80");
    http.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .expect("send request");
    let response = read_text(&mut http, "</html>");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains(&format!("\r\nServer: {HTTP_SERVER}\r\n")),
        "{response}"
    );
    let refused = connect(&net, dual.addr(), 22).expect_err("no listener on the dual-stack host");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
    // Dropped, not refused: no reset comes back, the connect times out.
    assert!(icmp.drops_tcp());
    let dropped = connect(&net, icmp.addr(), 22).expect_err("the ICMP-only host drops TCP");
    assert_eq!(dropped.kind(), ErrorKind::TimedOut, "{dropped}");
    let silence = connect(&net, silent.addr(), 22).expect_err("the silent host accepted a connection");
    assert_eq!(silence.kind(), ErrorKind::TimedOut, "{silence}");
    let mut ssh6 = connect(&net, v6only.addr(), 22).expect("connect over IPv6");
    assert!(read_text(&mut ssh6, "\r\n").starts_with(SSH_BANNER));

    // Neighbours: each host's own MAC; the silent host's entry is permanent.
    let table = neighbours(&net);
    for host in [open, icmp, dual] {
        let line = neighbour(&table, host.addr())
            .unwrap_or_else(|| panic!("no neighbour entry for {}:\n{table}", host.addr()));
        assert!(line.contains(&host.mac().to_string()), "{line}");
    }
    let line = neighbour(&table, silent.addr()).expect("the silent host's neighbour entry");
    assert!(
        line.contains(&silent.mac().to_string()) && line.contains("PERMANENT"),
        "{line}"
    );
    let mut macs: Vec<_> = net.hosts().iter().map(|h| h.mac()).collect();
    macs.sort();
    macs.dedup();
    assert_eq!(macs.len(), net.hosts().len(), "MACs are not unique");

    // Flushing forgets learned entries but keeps the silent host.
    net.flush_neighbours().expect("flush");
    let table = neighbours(&net);
    assert!(neighbour(&table, open.addr()).is_none(), "not flushed:\n{table}");
    assert!(
        neighbour(&table, silent.addr()).is_some_and(|l| l.contains("PERMANENT")),
        "silent host lost:\n{table}"
    );
}

/// A v2c GET of sysName.0 with community `public`, encoded by hand.
const GET_SYS_NAME: [u8; 40] = [
    0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x19, 0x02, 0x01, 0x07, 0x02,
    0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x05, 0x00,
    0x05, 0x00,
];

fn snmp_get_sys_name(net: &TestNet, addr: IpAddr) -> Vec<u8> {
    net.run_in_scan(|| {
        let socket = UdpSocket::bind(SocketAddr::new(
            if addr.is_ipv4() {
                [0u8; 4].into()
            } else {
                [0u16; 8].into()
            },
            0,
        ))
        .expect("bind");
        socket.connect((addr, 161)).expect("connect");
        socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        socket.send(&GET_SYS_NAME).expect("send");
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf).expect("an answer from snmpd");
        buf[..n].to_vec()
    })
    .expect("entering the scan namespace")
}

#[test]
fn snmpd_host_answers_on_both_families() {
    let Some(net) = TestNet::builder().host(HostSpec::snmpd().ipv4().ipv6()).build_or_skip() else {
        return;
    };
    let host = net.host(0);
    let want = outpost_testnet::snmp_sys_name(0);
    for addr in host.addrs() {
        let answer = snmp_get_sys_name(&net, addr);
        // A GetResponse (0xa2) carrying the configured sysName.
        assert!(answer.contains(&0xa2), "{answer:02x?}");
        assert!(
            answer.windows(want.len()).any(|w| w == want.as_bytes()),
            "sysName {want} not in {answer:02x?}"
        );
    }
    assert!(net.snmpd_log(0).is_some_and(|p| p.exists()));
}

#[test]
fn networks_built_in_parallel_get_their_own_subnets() {
    let nets: Vec<Option<TestNet>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| TestNet::builder().host(HostSpec::icmp_only()).build_or_skip()))
            .collect();
        handles.into_iter().map(|h| h.join().expect("builder thread")).collect()
    });
    let nets: Vec<TestNet> = nets.into_iter().flatten().collect();
    if nets.is_empty() {
        return;
    }
    let mut subnets: Vec<String> = nets.iter().map(|n| n.ipv4_subnet().to_string()).collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), nets.len(), "{subnets:?}");
    for net in &nets {
        assert!(ping(net, net.host(0).addr()));
    }
}
