//! The browser terminal's WebSocket end to end, with real processes: the
//! console's `/devices/{id}/terminal/ws` → the collector's SSH client → a
//! tunnel through the agent → the simulated device's SSH console. A small
//! WebSocket client of its own speaks the frames (RFC 6455), so what is
//! tested is the bytes the browser would exchange.
use std::io::{Read, Write};

use outpost_tests::http::{self, ReadWrite};
use outpost_tests::sim::Sim;
use outpost_tests::*;

const PASSWORD: &str = "Sim-Pass-terminal";

/// Sends the upgrade request; answers the status and the connection.
fn upgrade(console: &http::Console, path: &str, cookie: &str, origin: &str) -> (u16, Box<dyn ReadWrite>) {
    let mut conn = console.connect();
    let addr = console.url();
    let host = addr.split_once("://").map(|(_, h)| h).expect("a host");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: {origin}\r\nCookie: {cookie}\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).expect("send the upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 * 1024, "an endless header");
        conn.read_exact(&mut byte).expect("read the answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, conn)
}

/// (ended, asciicast) of every recording: the header, then its chunks.
fn recordings(c: &Collector) -> Vec<(bool, String)> {
    c.on_sqlite("ro", async |db| {
        let rows: Vec<(Option<i64>, String)> = sqlx::query_as(
            "SELECT r.ended_at_ms, r.asciicast || COALESCE((SELECT group_concat(events, '') FROM \
             (SELECT events FROM terminal_recording_chunks k WHERE k.recording_id = r.id ORDER BY seq)), '') \
             FROM terminal_recordings r",
        )
        .fetch_all(db)
        .await
        .expect("recordings");
        rows.into_iter().map(|(e, c)| (e.is_some(), c)).collect()
    })
}

/// Adds a console user; their password.
fn add_user(c: &Collector, name: &str, tenant: &str, role: &str) -> String {
    let out = c
        .cli(&["user", "add", "--username", name, "--tenant", tenant, "--role", role])
        .ok();
    out.stdout_text()
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("password line")
        .trim()
        .to_owned()
}

/// Sends one masked frame (clients must mask).
fn send(conn: &mut dyn ReadWrite, opcode: u8, payload: &[u8]) {
    let mask = [0x1f, 0x2e, 0x3d, 0x4c];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).expect("a short frame").to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    conn.write_all(&frame).expect("send a frame");
}

/// Reads one frame: (opcode, payload).
fn recv(conn: &mut dyn ReadWrite) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).expect("a frame header");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            conn.read_exact(&mut b).expect("length");
            usize::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            conn.read_exact(&mut b).expect("length");
            usize::try_from(u64::from_be_bytes(b)).expect("length")
        }
        n => usize::from(n),
    };
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).expect("payload");
    (head[0] & 0x0f, payload)
}

/// Reads binary frames until `needle` has appeared; everything read.
fn read_until(conn: &mut dyn ReadWrite, needle: &str) -> String {
    let mut seen = String::new();
    for _ in 0..1000 {
        if seen.contains(needle) {
            return seen;
        }
        match recv(conn) {
            (2, data) => seen.push_str(&String::from_utf8_lossy(&data)),
            (8, _) => panic!("closed before {needle:?}; saw {seen:?}"),
            _ => {}
        }
    }
    panic!("{needle:?} did not appear; saw {seen:?}")
}

/// A collector whose tunnels allow SSH, an agent of acme/hq, and a simulated
/// device of that site with an SSH console, polled and up.
struct Site {
    c: Collector,
    device: String,
    sim: Sim,
    _agent: Agent,
}

fn site(ip: &str) -> Site {
    let sim = Sim::start_with(1, ip, "7", PASSWORD, 1, &[]);
    let ssh_port = sim.devices[0].ssh_port.expect("the simulator serves SSH");
    let mut c = Collector::init();
    c.serve_args = vec!["--tunnel-ports".into(), format!("22,{ssh_port}")];
    c.start();
    let mut agent = Agent::new();
    agent.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    agent.start();
    let device = c.add_sim_device("acme", "hq", &sim.devices[0], PASSWORD, false);
    wait_for("the device up", || (c.device(&device)["state"] == "up").then_some(()));
    Site {
        c,
        device,
        sim,
        _agent: agent,
    }
}

#[test]
fn the_terminal_websocket_runs_a_shell_on_the_device_and_is_audited() {
    let Site { c, device, sim, _agent } = site("127.0.67.1");

    let console = c.console();
    let cookie = http::login(&console, "admin", &c.admin_password);
    let path = format!("/devices/{device}/terminal/ws");

    let (status, _) = upgrade(&console, &path, &cookie, "https://elsewhere.example");
    assert_eq!(status, 403, "another origin is refused");

    // Refused over a real upgrade, before any tunnel: a viewer of the tenant
    // (403), another tenant's admin (404), no session and an expired one
    // (sent to sign in).
    c.token("globex", "hq");
    let viewer_password = add_user(&c, "vera", "acme", "viewer");
    let viewer = http::login(&console, "vera", &viewer_password);
    assert_eq!(upgrade(&console, &path, &viewer, &console.url()).0, 403, "a viewer");
    let other_password = add_user(&c, "gus", "globex", "admin");
    let other = http::login(&console, "gus", &other_password);
    assert_eq!(
        upgrade(&console, &path, &other, &console.url()).0,
        404,
        "another tenant"
    );
    assert_eq!(upgrade(&console, &path, "", &console.url()).0, 303, "no session");
    let expiring = http::login(&console, "admin", &c.admin_password);
    c.on_sqlite("rw", async |db| {
        sqlx::query("UPDATE sessions SET expires_at_ms = 1")
            .execute(db)
            .await
            .expect("expire the sessions")
    });
    assert_eq!(
        upgrade(&console, &path, &expiring, &console.url()).0,
        303,
        "an expired session"
    );
    let cookie = http::login(&console, "admin", &c.admin_password);
    let page = http::request(
        &console,
        "GET",
        &format!("/devices/{device}/terminal"),
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(page.status, 200, "{page:?}");

    let (status, mut ws) = upgrade(&console, &path, &cookie, &console.url());
    assert_eq!(status, 101);
    send(&mut *ws, 1, br#"{"type":"resize","cols":100,"rows":30}"#);
    let identity = &sim.devices[0].identity;
    let prompt = format!("[admin@{identity}] > ");
    read_until(&mut *ws, &prompt);
    send(&mut *ws, 2, b"/system identity print\r");
    let out = read_until(&mut *ws, &format!("  name: {identity}\r\n{prompt}"));
    assert!(out.starts_with("/system identity print\r\n"), "{out:?}");

    // A size outside the bounds ends the session with the reason.
    send(&mut *ws, 1, br#"{"type":"resize","cols":501,"rows":30}"#);
    read_until(&mut *ws, "outside 1x1 to 500x200");

    let csv = wait_for("terminal.close in the audit log", || {
        let out = c.audit_csv();
        out.contains("terminal.close").then_some(out)
    });
    assert!(csv.contains("terminal.open"), "{csv}");
    let refused = |who: &str, reason: &str| {
        csv.lines().any(|l| {
            l.contains("tunnel.refused")
                && l.contains(who)
                && l.contains(reason)
                && l.contains(r#"""via"":""terminal"""#)
        })
    };
    assert!(refused("vera", "permission denied"), "the viewer's refusal: {csv}");
    assert!(refused("gus", "device not found"), "the other tenant's refusal: {csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains("tunnel.open") && l.contains(r#"""via"":""terminal"""#)),
        "{csv}"
    );

    // The session's recording: asciicast v2, closed, with input, output and the size.
    let cast = wait_for("the recording closed", || {
        recordings(&c)
            .into_iter()
            .find(|(ended, _)| *ended)
            .map(|(_, cast)| cast)
    });
    let mut lines = cast.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().expect("a header")).expect("json header");
    assert_eq!(
        (header["version"].as_i64(), header["width"].as_i64()),
        (Some(2), Some(80))
    );
    let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).expect("json event")).collect();
    let has = |code: &str, needle: &str| {
        events
            .iter()
            .any(|e| e[1] == code && e[2].as_str().is_some_and(|d| d.contains(needle)))
    };
    assert!(has("r", "100x30"), "{cast}");
    assert!(has("i", "/system identity print"), "{cast}");
    assert!(has("o", &format!("name: {identity}")), "{cast}");
}

#[test]
fn the_terminal_page_runs_the_shell_in_a_browser() {
    use outpost_tests::browser::{self, BrowserScript};
    let root = browser::workspace_root();
    if !browser::available(&root) {
        return;
    }
    let Site { c, device, sim, _agent } = site("127.0.68.1");

    let url = c.console().url();
    let pin = browser::spki_pin(&c.data_dir().join("server.pem"));
    let screenshot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("terminal_browser_failure.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut script = BrowserScript::spawn(
        &root,
        "terminal.mjs",
        &[
            ("CONSOLE_URL", &url),
            ("CONSOLE_SPKI", &pin),
            ("CONSOLE_USER", "admin"),
            ("CONSOLE_PASSWORD", &c.admin_password),
            ("DEVICE", &device),
            ("IDENTITY", &sim.devices[0].identity),
        ],
        screenshot,
    );
    script.expect_line("PROMPT");
    script.expect_line("IDENTITY");
    script.expect_line("REPLAYED");
    let status = script.wait_exit();
    if !status.success() {
        script.fail(&format!("exited with {status}"));
    }
}
