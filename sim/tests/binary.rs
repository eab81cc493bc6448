//! The `outpost-sim` binary: start-up lines, refusal of non-loopback
//! addresses, the control port, and MNDP announcements.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_outpost-sim");

#[tokio::test]
async fn prints_devices_then_ready_and_obeys_the_control_port() {
    // Ask the OS for a free control port.
    let control = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("probe")
        .local_addr()
        .expect("addr");
    let mut child = Command::new(BIN)
        .args([
            "--devices",
            "3",
            "--first-ip",
            "127.0.95.254",
            "--ros",
            "7",
            "--api-port",
            "0",
        ])
        .args([
            "--api-ssl-port",
            "0",
            "--ssh-port",
            "0",
            "--control",
            &control.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut devices = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("start-up within 30 s")
            .expect("read")
            .expect("a line");
        if line == "ready 3 devices" {
            break;
        }
        if let Some(addr) = line.strip_prefix("control ") {
            assert_eq!(addr, control.to_string(), "the control line names the bound address");
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], "device", "{line}");
        assert!(f[2].starts_with("api=") && f[3].starts_with("api-ssl=") && f[4].starts_with("ssh="));
        assert!(f[5].starts_with("ros=7.") && f[6].starts_with("identity="));
        devices.push(f[1].to_owned());
    }
    assert_eq!(
        devices,
        ["127.0.95.254", "127.0.96.1", "127.0.96.2"],
        "skips .255 and .0"
    );

    let sock = tokio::net::TcpStream::connect(control).await.expect("control");
    let (r, mut w) = sock.into_split();
    let mut answers = BufReader::new(r).lines();
    w.write_all(b"slow 127.0.96.1 10\nslow 127.0.9.9 10\nrotate-host-key 127.0.96.1\n")
        .await
        .expect("write");
    assert_eq!(answers.next_line().await.expect("read").as_deref(), Some("ok"));
    let e = answers.next_line().await.expect("read").expect("line");
    assert_eq!(e, "error no device at 127.0.9.9");
    assert_eq!(answers.next_line().await.expect("read").as_deref(), Some("ok"));
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn refuses_addresses_outside_loopback() {
    let out = Command::new(BIN)
        .args(["--devices", "1", "--first-ip", "10.0.0.1"])
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");

    let out = Command::new(BIN)
        .args([
            "--devices",
            "1",
            "--first-ip",
            "127.0.97.1",
            "--mndp-to",
            "192.0.2.1:5678",
        ])
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--mndp-to 192.0.2.1:5678 is not a loopback address"),
        "{err}"
    );
}

#[tokio::test]
async fn announces_every_device_over_mndp() {
    let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let to = rx.local_addr().expect("addr").to_string();
    let mut child = Command::new(BIN)
        .args(["--devices", "2", "--first-ip", "127.0.98.1", "--ros", "mixed"])
        .args(["--api-port", "0", "--api-ssl-port", "0", "--ssh-port", "0"])
        .args(["--mndp-to", &to, "--mndp-interval", "3600"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // ip -> (api address, identity), from the start-up lines.
    let mut devices = std::collections::HashMap::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("start-up within 30 s")
            .expect("read")
            .expect("a line");
        if line == "ready 2 devices" {
            break;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let ip: std::net::Ipv4Addr = f[1].parse().expect("ip");
        let api_port: u16 = f[2].strip_prefix("api=").expect("api=").parse().expect("port");
        let identity = f[6].strip_prefix("identity=").expect("identity=").to_owned();
        devices.insert(ip, (std::net::SocketAddr::from((ip, api_port)), identity));
    }

    let mut seen = std::collections::HashSet::new();
    let mut buf = [0u8; 2048];
    while seen.len() < 2 {
        let (len, from) = tokio::time::timeout(Duration::from_secs(10), rx.recv_from(&mut buf))
            .await
            .expect("an announcement within 10 s")
            .expect("recv");
        let a = outpost_discovery::mndp::parse(&buf[..len]).expect("a valid MNDP announcement");
        let std::net::IpAddr::V4(ip) = from.ip() else {
            panic!("from {from}");
        };
        let (api, identity) = devices.get(&ip).unwrap_or_else(|| panic!("from {from}, not a device"));
        assert_eq!(a.identity.as_ref(), Some(identity));
        assert_eq!(a.ipv4, Some(ip), "the device's own address");
        assert_eq!(a.platform.as_deref(), Some("MikroTik"));
        assert_eq!(a.interface.as_deref(), Some("ether1"));
        assert!(a.board.is_some() && a.software_id.is_some() && a.uptime_secs.is_some());
        // The MAC is ether1's, as the device's API reports it.
        let mac = a.mac.expect("a MAC");
        let reply = common::call(
            &mut common::logged_in(*api).await,
            &["/interface/print", "?name=ether1", "=.proplist=mac-address"],
        )
        .await;
        let rows = common::rows(&reply);
        let api_mac = rows[0].get("mac-address").expect("mac-address");
        let announced = mac.map(|b| format!("{b:02X}")).join(":");
        assert_eq!(&announced, api_mac);
        seen.insert(ip);
    }
    child.kill().await.expect("kill");
}
