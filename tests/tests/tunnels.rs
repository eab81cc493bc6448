//! Tunnels end to end, with real processes and real peers: a real OpenSSH
//! server (Debian's `sshd`) on a simulated device's loopback address, reached
//! only through `outpost tunnel` → the collector's API → the agent's own
//! tunnel stream. The real `ssh` runs a command and `scp` copies 100 MB
//! intact; refusals (viewer, another tenant's device, a port the policy
//! does not allow, a limit, a wrong one-time secret on the agent's stream)
//! are refused and audited; the agent stopping mid-session ends the tunnel;
//! a 256 MiB echo with both directions full at once never stalls.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use outpost_tests::sim::Sim;
use outpost_tests::sshd::{Sshd, user};
use outpost_tests::*;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "Sim-Pass-tunnel";

fn outpost(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("outpost"));
    cmd.args(args)
        .env("OUTPOST_CONFIG_DIR", config)
        .env_remove("OUTPOST_API_TOKEN")
        .stdin(Stdio::null());
    cmd
}

/// Signs the command line in (in its own config directory) with an API token
/// of `user` at `scope`.
fn signed_in(c: &Collector, user: &str, tenant: &str, scope: &str) -> tempfile::TempDir {
    signed_in_with(c, user, tenant, scope, &[])
}

/// [`signed_in`] with more `api-token create` arguments.
fn signed_in_with(c: &Collector, user: &str, tenant: &str, scope: &str, extra: &[&str]) -> tempfile::TempDir {
    let mut args = vec![
        "api-token",
        "create",
        "--user",
        user,
        "--tenant",
        tenant,
        "--scope",
        scope,
        "--name",
        "t",
    ];
    args.extend_from_slice(extra);
    let token = c
        .cli(&args)
        .ok()
        .stdout_text()
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_owned();
    let fingerprint = c.cli(&["cert", "fingerprint"]).ok().stdout_text().trim().to_owned();
    let config = tempfile::tempdir().expect("config dir");
    let console = c.console_addr.expect("console").to_string();
    outpost(config.path(), &["login", &console, "--ca-fingerprint", &fingerprint])
        .env("OUTPOST_API_TOKEN", &token)
        .output()
        .expect("run outpost login")
        .ok();
    config
}

/// `outpost tunnel DEVICE PORT`, running; where it listens.
fn tunnel(config: &Path, device: &str, port: &str) -> (Process, SocketAddr) {
    let p = Process::spawn(outpost(config, &["tunnel", device, port]));
    let line = p.wait_log("listening on ");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (p, addr)
}

fn ssh(sshd: &Sshd, via: SocketAddr, command: &str) -> Output {
    Command::new("ssh")
        .args(sshd.client_args())
        .args(["-p", &via.port().to_string()])
        .arg(format!("{}@{}", user(), via.ip()))
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

/// 100 MB of bytes that compress badly, and their SHA-256.
fn big_file(path: &Path) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut hash = Sha256::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..100 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        hash.update(&block);
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
    hex::encode(hash.finalize())
}

fn sha256_of(path: &Path) -> String {
    let mut f = std::fs::File::open(path).expect("open");
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    hex::encode(hash.finalize())
}

/// A connection to the CLI's listener that the tunnel behind it refuses:
/// closed without a byte.
fn refused_at(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).expect("connect to the local listener");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut buf = [0u8; 64];
    assert_eq!(s.read(&mut buf).expect("read until closed"), 0, "closed without data");
}

struct Site {
    c: Collector,
    agent: Agent,
    device: String,
    sshd: Sshd,
    _sim: Sim,
}

fn site(ip: &str, extra: &[&str]) -> Site {
    // Its WinBox port answers as a byte echo.
    let sim = Sim::start_with(1, ip, "7", PASSWORD, 1, &["--winbox-echo", "8291"]);
    let sshd = Sshd::start(ip);
    let mut c = Collector::init();
    c.serve_args = vec!["--tunnel-ports".into(), format!("22,8291,{}", sshd.port)];
    c.serve_args.extend(extra.iter().map(|s| (*s).to_owned()));
    c.start();
    let mut agent = Agent::new();
    agent.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    agent.start();
    let device = c.add_sim_device("acme", "hq", &sim.devices[0], PASSWORD, false);
    wait_for("the device up", || (c.device(&device)["state"] == "up").then_some(()));
    // A token for globex makes the tenant.
    let _ = c.token("globex", "hq");
    for (name, tenant, role) in [
        ("acme-ops", "acme", "operator"),
        ("acme-view", "acme", "viewer"),
        ("globex-ops", "globex", "operator"),
    ] {
        c.cli(&["user", "add", "--username", name, "--tenant", tenant, "--role", role])
            .ok();
    }
    Site {
        c,
        agent,
        device,
        sshd,
        _sim: sim,
    }
}

#[test]
fn ssh_and_scp_work_through_outpost_tunnel_and_every_session_is_audited() {
    let s = site("127.0.61.1", &[]);
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (_tunnel, via) = tunnel(ops.path(), &s.device, &s.sshd.port.to_string());

    let out = ssh(&s.sshd, via, "echo through-the-tunnel");
    assert!(out.status.success(), "ssh: {}", out.stderr_text());
    assert_eq!(out.stdout_text().trim(), "through-the-tunnel");

    let files = tempfile::tempdir().expect("files");
    let sent = files.path().join("sent.bin");
    let want = big_file(&sent);
    let received: PathBuf = files.path().join("received.bin");
    let out = Command::new("scp")
        .args(s.sshd.client_args())
        .args(["-P", &via.port().to_string()])
        .arg(&sent)
        .arg(format!("{}@{}:{}", user(), via.ip(), received.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run scp");
    assert!(out.status.success(), "scp: {}", out.stderr_text());
    assert_eq!(sha256_of(&received), want, "100 MB arrived intact");

    // Each connection was its own audited tunnel, with its bytes.
    let csv = wait_for("both tunnels closed in the audit log", || {
        let csv = s.c.audit_csv();
        (csv.matches("tunnel.close").count() >= 2).then_some(csv)
    });
    assert!(csv.matches("tunnel.open").count() >= 2, "{csv}");
    let big = csv
        .lines()
        .filter(|l| l.contains("tunnel.close"))
        .filter_map(|l| {
            let at = l.find("bytes_to_device")?;
            let digits: String = l[at..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        big >= 100 << 20,
        "the scp tunnel carried {big} bytes to the device: {csv}"
    );
    assert!(csv.contains("acme-ops"), "the user is named: {csv}");
}

#[test]
fn refusals_are_refused_and_audited() {
    let s = site("127.0.62.1", &["--tunnel-max-per-user", "2"]);
    let port = s.sshd.port.to_string();

    // A viewer may look at the device but not open a tunnel to it.
    let viewer = signed_in(&s.c, "acme-view", "acme", "read");
    let (v, via) = tunnel(viewer.path(), &s.device, &port);
    refused_at(via);
    wait_for("the viewer's refusal", || v.logged("permission denied").then_some(()));

    // Another tenant's device does not exist for them.
    let globex = signed_in(&s.c, "globex-ops", "globex", "operate");
    let out = outpost(globex.path(), &["tunnel", &s.device, &port])
        .output()
        .expect("run outpost");
    assert!(!out.status.success());
    assert!(out.stderr_text().contains("not found"), "{}", out.stderr_text());

    // A port outside the policy.
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (p, via) = tunnel(ops.path(), &s.device, "8728");
    refused_at(via);
    wait_for("the port refusal", || {
        p.logged("port 8728 is not allowed").then_some(())
    });

    // Two tunnels per user: a third waits for none of them and is refused.
    let (_t, via) = tunnel(ops.path(), &s.device, &port);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(via).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut banner = [0u8; 4];
        conn.read_exact(&mut banner).expect("sshd's banner through the tunnel");
        assert_eq!(&banner, b"SSH-");
        held.push(conn);
    }
    refused_at(via);

    // A credential that expired after the command line started.
    let brief = signed_in_with(&s.c, "acme-ops", "acme", "operate", &["--ttl", "3s"]);
    let (e, via) = tunnel(brief.path(), &s.device, &port);
    std::thread::sleep(Duration::from_secs(4));
    refused_at(via);
    wait_for("the expired credential's refusal", || {
        e.logged("log in again").then_some(())
    });

    // A tunnel stream with a made-up id and secret, from the agent's own
    // certificate, is refused at once.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let status = rt.block_on(async {
        use outpost_proto::agent_v1::{TunnelFrame, TunnelHello, tunnel_frame};
        let mut client = raw::client(&s.c.agent_endpoint(), raw::agent_tls(s.agent.data_dir()))
            .await
            .expect("agent client");
        let hello = TunnelFrame {
            kind: Some(tunnel_frame::Kind::Hello(TunnelHello {
                tunnel_id: uuid::Uuid::new_v4().to_string(),
                secret: vec![7; 32],
            })),
        };
        match client.tunnel(futures::stream::iter([hello])).await {
            Ok(mut r) => r.get_mut().message().await.expect_err("refused"),
            Err(status) => status,
        }
    });
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    let csv = s.c.audit_csv();
    assert!(csv.contains("tunnel.refused"), "{csv}");
    assert!(csv.contains("is not allowed for tunnels"), "the port refusal: {csv}");
    assert!(csv.contains("tunnels open, the most allowed"), "the limit: {csv}");
    assert!(csv.contains("tunnel.attach"), "the wrong secret: {csv}");
    let refused = |who: &str, reason: &str| {
        csv.lines()
            .any(|l| l.contains("tunnel.refused") && l.contains(who) && l.contains(reason))
    };
    assert!(refused("acme-view", "permission denied"), "the viewer: {csv}");
    drop(held);
}

#[test]
fn a_tunnel_ends_with_a_reason_when_its_agent_stops_and_telemetry_resumes() {
    let mut s = site("127.0.63.1", &[]);
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (_t, via) = tunnel(ops.path(), &s.device, &s.sshd.port.to_string());
    let mut conn = TcpStream::connect(via).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut banner = [0u8; 4];
    conn.read_exact(&mut banner).expect("banner");
    assert_eq!(&banner, b"SSH-");

    s.agent.kill9();
    // The local connection is closed (nothing hangs) ...
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    // ... and the audit log says why.
    let csv = wait_for("the tunnel closed in the audit log", || {
        let csv = s.c.audit_csv();
        csv.contains("tunnel.close").then_some(csv)
    });
    assert!(
        csv.contains("the agent's connection was lost") || csv.contains("the agent ended the tunnel"),
        "{csv}"
    );

    // The agent comes back and its device is polled again.
    s.agent.start();
    let before = s.c.device(&s.device)["last_poll_ms"].as_i64().unwrap_or(0);
    wait_for("polls after the restart", || {
        (s.c.device(&s.device)["last_poll_ms"].as_i64().unwrap_or(0) > before).then_some(())
    });
}

/// 256 KiB for connection `n`, different for each.
fn payload(n: u64) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d ^ (n + 1);
    (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn fifty_winbox_tunnels_echo_binary_and_honour_half_close_while_telemetry_flows() {
    const TUNNELS: usize = 50;
    let s = site(
        "127.0.64.1",
        &["--tunnel-max-per-user", "60", "--tunnel-max-per-device", "60"],
    );
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (_t, via) = tunnel(ops.path(), &s.device, "winbox");
    let echoed = std::sync::Arc::new(std::sync::Barrier::new(TUNNELS + 1));
    let release = std::sync::Arc::new(std::sync::Barrier::new(TUNNELS + 1));
    let workers: Vec<_> = (0..TUNNELS as u64)
        .map(|n| {
            let (echoed, release) = (echoed.clone(), release.clone());
            std::thread::spawn(move || {
                let data = payload(n);
                let mut conn = TcpStream::connect(via).expect("connect");
                conn.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
                let mut writer = conn.try_clone().expect("clone");
                let sent = data.clone();
                let w = std::thread::spawn(move || writer.write_all(&sent).expect("write"));
                let mut back = vec![0u8; data.len()];
                conn.read_exact(&mut back).expect("the echo");
                w.join().expect("writer");
                assert!(back == data, "connection {n}: bytes changed on the way");
                echoed.wait();
                release.wait();
                // Half-close: the echo answers with its own FIN, no byte more.
                conn.shutdown(std::net::Shutdown::Write).expect("half-close");
                let mut rest = Vec::new();
                conn.read_to_end(&mut rest).expect("read to the end");
                assert!(rest.is_empty(), "connection {n}: {} stray bytes", rest.len());
            })
        })
        .collect();
    echoed.wait();
    // All fifty are open and idle now: the device is still polled meanwhile.
    let before = s.c.device(&s.device)["last_poll_ms"].as_i64().unwrap_or(0);
    wait_for("a poll while fifty tunnels are open", || {
        (s.c.device(&s.device)["last_poll_ms"].as_i64().unwrap_or(0) > before).then_some(())
    });
    release.wait();
    for w in workers {
        w.join().expect("tunnel worker");
    }
    let csv = wait_for("fifty tunnels closed in the audit log", || {
        let csv = s.c.audit_csv();
        (csv.lines()
            .filter(|l| l.contains("tunnel.close") && l.contains("ended") && l.contains("closed"))
            .count()
            >= TUNNELS)
            .then_some(csv)
    });
    assert!(csv.matches("tunnel.open").count() >= TUNNELS, "{csv}");
}

#[test]
fn the_console_opens_a_listener_on_the_collector_for_its_user_only() {
    use outpost_tests::http;
    let s = site("127.0.65.1", &[]);
    // The administrator (an MSP administrator) asks from the console, from 127.0.0.1.
    let console = s.c.console();
    let cookie = http::login(&console, "admin", &s.c.admin_password);
    let page = http::request(
        &console,
        "GET",
        &format!("/devices/{}", s.device),
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("id=\"open-tunnel\""), "the device page offers it");
    let body = format!("csrf={}&port=winbox", http::form_encode(&http::csrf_of(&page.body)));
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let answer = http::request(
        &console,
        "POST",
        &format!("/devices/{}/tunnel", s.device),
        &headers,
        &body,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let at = answer.body.find("Connect to ").expect("the address to use") + "Connect to ".len();
    let addr: SocketAddr = answer.body[at..]
        .split(' ')
        .next()
        .expect("address")
        .parse()
        .expect("a socket address");
    assert!(addr.ip().is_loopback(), "on loopback by default: {addr}");
    assert!(
        answer.body.contains("Only connections from 127.0.0.1"),
        "{}",
        answer.body
    );

    // From the user's address: the device's WinBox port (an echo here).
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    conn.write_all(b"winbox hello").expect("write");
    let mut back = [0u8; 12];
    conn.read_exact(&mut back).expect("the echo");
    assert_eq!(&back, b"winbox hello");
    drop(conn);

    // From another address: closed without a byte, and audited.
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    other
        .bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .expect("bind 127.0.0.2");
    other.connect(&addr.into()).expect("connect from 127.0.0.2");
    let mut other: TcpStream = other.into();
    other.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut buf = [0u8; 16];
    assert_eq!(other.read(&mut buf).unwrap_or(0), 0, "refused");

    let csv = wait_for("the listener's tunnel and refusal in the audit log", || {
        let csv = s.c.audit_csv();
        (csv.contains("tunnel.close") && csv.contains("to a listener for 127.0.0.1")).then_some(csv)
    });
    assert!(
        csv.lines()
            .any(|l| l.contains("tunnel.open") && l.contains(r#"""via"":""port"""#)),
        "the tunnel is recorded as opened through the collector's listener: {csv}"
    );

    // A viewer may not open one.
    let out =
        s.c.cli(&[
            "user",
            "add",
            "--username",
            "vera",
            "--tenant",
            "acme",
            "--role",
            "viewer",
        ])
        .ok();
    let password = out
        .stdout_text()
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("password line")
        .trim()
        .to_owned();
    let vera = http::login(&console, "vera", &password);
    let page = http::request(
        &console,
        "GET",
        &format!("/devices/{}", s.device),
        &[("Cookie", &vera)],
        "",
    );
    let body = format!("csrf={}&port=winbox", http::form_encode(&http::csrf_of(&page.body)));
    let headers = [
        ("Cookie", vera.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let refused = http::request(
        &console,
        "POST",
        &format!("/devices/{}/tunnel", s.device),
        &headers,
        &body,
    );
    assert_eq!(refused.status, 403, "{refused:?}");
}

#[test]
fn a_tunnel_ends_when_its_collector_stops_and_a_new_one_works_after_the_restart() {
    let mut s = site("127.0.66.1", &[]);
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (t, via) = tunnel(ops.path(), &s.device, "winbox");
    let mut conn = TcpStream::connect(via).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    conn.write_all(b"before").expect("write");
    let mut back = [0u8; 6];
    conn.read_exact(&mut back).expect("echo");

    s.c.kill9();
    // The local connection is closed, not left hanging.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    wait_for("the command line to say why", || {
        t.logged("connection from").then_some(())
    });

    // Same ports: the agent and the command line find it again.
    s.c.start();
    let before = s.c.device(&s.device)["last_poll_ms"].as_i64().unwrap_or(0);
    wait_for("polls after the restart", || {
        (s.c.device(&s.device)["last_poll_ms"].as_i64().unwrap_or(0) > before).then_some(())
    });
    let echoed = wait_for("a new tunnel through the restarted collector", || {
        let mut c = TcpStream::connect(via).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        c.write_all(b"after").ok()?;
        let mut b = [0u8; 5];
        c.read_exact(&mut b).ok()?;
        Some(b)
    });
    assert_eq!(&echoed, b"after");
}

#[test]
fn an_idle_tunnel_is_closed_and_says_so_and_a_busy_one_ends_at_its_maximum_duration() {
    let s = site("127.0.67.1", &["--tunnel-idle", "2s", "--tunnel-max-duration", "4s"]);
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (_t, via) = tunnel(ops.path(), &s.device, "winbox");
    let mut conn = TcpStream::connect(via).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    conn.write_all(b"ping").expect("write");
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).expect("echo");
    // Nothing more: closed after 2 s of silence.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    let csv = wait_for("the idle close in the audit log", || {
        let csv = s.c.audit_csv();
        csv.contains("idle for 2 s").then_some(csv)
    });
    assert!(
        csv.lines()
            .any(|l| l.contains("tunnel.close") && l.contains("idle for 2 s")),
        "{csv}"
    );

    // Busy, never idle for 2 s: still closed when its 4 s are up.
    let mut conn = TcpStream::connect(via).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut echoed = 0;
    for _ in 0..100 {
        if conn.write_all(b"busy").is_err() || conn.read_exact(&mut back).is_err() {
            break;
        }
        echoed += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(echoed >= 10, "the busy tunnel carried only {echoed} echoes");
    assert!(echoed < 100, "the busy tunnel was never closed");
    let csv = wait_for("the maximum-duration close in the audit log", || {
        let csv = s.c.audit_csv();
        csv.contains("maximum duration of 4 s reached").then_some(csv)
    });
    assert!(
        csv.lines()
            .any(|l| l.contains("tunnel.close") && l.contains("maximum duration of 4 s reached")),
        "{csv}"
    );
}

/// A bulk echo, written and read at once: both directions of the tunnel are
/// full at the same time, so neither may wait on the other (the collector
/// once copied both in one loop and stalled after some hundred MB, each
/// direction waiting for room the other would have made).
#[test]
fn a_bulk_echo_with_both_directions_full_never_stalls() {
    const BYTES: u64 = 256 << 20;
    let s = site("127.0.65.1", &[]);
    let ops = signed_in(&s.c, "acme-ops", "acme", "operate");
    let (_t, via) = tunnel(ops.path(), &s.device, "winbox");
    let mut conn = TcpStream::connect(via).expect("connect");
    // A stall fails the test here instead of waiting for the idle timeout.
    conn.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut writer = conn.try_clone().expect("clone");
    let w = std::thread::spawn(move || {
        let block: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..BYTES / block.len() as u64 {
            writer.write_all(&block).expect("write");
        }
        writer.shutdown(std::net::Shutdown::Write).expect("half-close");
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = conn.read(&mut buf).expect("the echo moved on within 60 s");
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            let at = (got + i as u64) % (64 * 1024);
            assert_eq!(u64::from(*b), at % 251, "byte {} changed on the way", got + i as u64);
        }
        got += n as u64;
    }
    w.join().expect("writer");
    assert_eq!(got, BYTES, "every byte came back, then the echo's FIN");
    let csv = wait_for("the tunnel closed in the audit log", || {
        let csv = s.c.audit_csv();
        csv.lines().any(|l| l.contains("tunnel.close")).then_some(csv)
    });
    let close = csv.lines().find(|l| l.contains("tunnel.close")).unwrap_or_default();
    for field in ["bytes_to_device", "bytes_from_device"] {
        let counted = close.find(field).and_then(|at| {
            let digits: String = close[at..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        });
        assert_eq!(counted, Some(BYTES), "{field} in {close}");
    }
}
