//! Tunnel throughput and latency against `ssh -L`, in the same run, on the
//! same path: a simulated device's WinBox port (a byte echo) reached through
//! `outpost tunnel` (laptop → collector's API → agent's tunnel stream →
//! device), through `ssh -L` to a real sshd on the device's address, and
//! directly (the baseline for "added latency"). All on loopback.
//!
//! Throughput: each round streams SIZE MiB into the echo and reads it back
//! on one connection (both directions busy, as in a file copy with acks);
//! MB/s of payload, median of ROUNDS, alternating which path goes first.
//! Latency: PINGS round trips of a 64-byte message on one connection,
//! TCP_NODELAY, after a warm-up; p50 and p99. See bench/tunnel.sh.
//!
//! Environment: SIZE (MiB, default 64), ROUNDS (default 5), PINGS (default
//! 5000), OUTPOST_BIN_DIR (release binaries).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_tests::sim::Sim;
use outpost_tests::sshd::{Sshd, user};
use outpost_tests::{Agent, Collector, OutputExt, Process, bin, wait_for};

const PASSWORD: &str = "bench-tunnel-pass";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Streams `bytes` through the echo at `addr`; payload MB/s.
fn throughput(addr: SocketAddr, bytes: usize) -> f64 {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    let mut writer = conn.try_clone().expect("clone");
    let start = Instant::now();
    let w = std::thread::spawn(move || {
        let block = vec![0x5au8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len());
            writer.write_all(&block[..n]).expect("write");
            left -= n;
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < bytes {
        let n = conn.read(&mut buf).expect("read");
        assert!(n > 0, "the echo closed early");
        got += n;
    }
    w.join().expect("writer");
    bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Round trips of 64 bytes at `addr`, sorted.
fn pings(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    let msg = [7u8; 64];
    let mut back = [0u8; 64];
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let t = Instant::now();
        conn.write_all(&msg).expect("write");
        conn.read_exact(&mut back).expect("read");
        if i >= 200 {
            out.push(t.elapsed());
        }
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// CPU time (user + system) of `pids` and all their descendants, in seconds.
fn cpu_secs(pids: &[u32]) -> f64 {
    fn ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields from 3 (state): utime 14, stime 15, cutime 16, cstime 17.
        [11, 12, 13, 14]
            .iter()
            .filter_map(|i| f.get(*i)?.parse::<u64>().ok())
            .sum()
    }
    fn children(pid: u32) -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
    let mut all = pids.to_vec();
    let mut i = 0;
    while i < all.len() {
        let more = children(all[i]);
        all.extend(more);
        i += 1;
    }
    // The clock tick is 100 Hz on Linux.
    all.iter().map(|p| ticks(*p)).sum::<u64>() as f64 / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let size = env("SIZE", 64) << 20;
    let rounds = env("ROUNDS", 5);
    let n_pings = env("PINGS", 5000);
    let ip = "127.0.70.1";

    let sim = Sim::start_with(1, ip, "7", PASSWORD, 1, &["--winbox-echo", "8291"]);
    let sshd = Sshd::start(ip);
    let mut c = Collector::init();
    c.start();
    let mut agent = Agent::new();
    agent.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    agent.start();
    let device = c.add_sim_device("acme", "hq", &sim.devices[0], PASSWORD, false);
    wait_for("the device up", || (c.device(&device)["state"] == "up").then_some(()));
    c.cli(&[
        "user",
        "add",
        "--username",
        "bench",
        "--tenant",
        "acme",
        "--role",
        "operator",
    ])
    .ok();
    let token = c
        .cli(&[
            "api-token",
            "create",
            "--user",
            "bench",
            "--tenant",
            "acme",
            "--scope",
            "operate",
            "--name",
            "b",
        ])
        .ok()
        .stdout_text()
        .lines()
        .last()
        .expect("token")
        .trim()
        .to_owned();
    let config = tempfile::tempdir().expect("config");
    let fingerprint = c.cli(&["cert", "fingerprint"]).ok().stdout_text().trim().to_owned();
    Command::new(bin("outpost"))
        .args([
            "login",
            &c.console_addr.expect("console").to_string(),
            "--ca-fingerprint",
            &fingerprint,
        ])
        .env("OUTPOST_CONFIG_DIR", config.path())
        .env("OUTPOST_API_TOKEN", &token)
        .stdin(Stdio::null())
        .output()
        .expect("login")
        .ok();
    let mut cmd = Command::new(bin("outpost"));
    cmd.args(["tunnel", &device, "winbox"])
        .env("OUTPOST_CONFIG_DIR", config.path());
    let tunnel = Process::spawn(cmd);
    let ours: SocketAddr = tunnel
        .wait_log("listening on ")
        .trim()
        .trim_start_matches("listening on ")
        .parse()
        .expect("tunnel address");

    let forward_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut ssh = Command::new("ssh");
    ssh.args(sshd.client_args())
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-p", &sshd.port.to_string()])
        .args(["-L", &format!("127.0.0.1:{forward_port}:{ip}:8291")])
        .arg(format!("{}@{ip}", user()));
    let ssh_process = Process::spawn(ssh);
    let ssh_pid = ssh_process.pid();
    let theirs: SocketAddr = format!("127.0.0.1:{forward_port}").parse().expect("addr");
    wait_for("ssh -L to forward", || {
        let mut s = TcpStream::connect(theirs).ok()?;
        s.write_all(b"x").ok()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok().map(|_| ())
    });
    let direct: SocketAddr = format!("{ip}:8291").parse().expect("addr");

    println!("{} MiB per round, {rounds} rounds, {n_pings} pings", size >> 20);
    let our_pids = [
        c.process.as_ref().expect("collector").pid(),
        agent.running().pid(),
        tunnel.pid(),
    ];
    let their_pids = [ssh_pid, sshd.pid()];
    let (mut cpu_ours, mut cpu_ssh) = (0.0, 0.0);
    let (mut t_ours, mut t_ssh) = (Vec::new(), Vec::new());
    let measured = |pids: &[u32], addr: SocketAddr, cpu: &mut f64| {
        let before = cpu_secs(pids);
        let mbs = throughput(addr, size);
        *cpu += cpu_secs(pids) - before;
        mbs
    };
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = measured(&our_pids, ours, &mut cpu_ours);
            (a, measured(&their_pids, theirs, &mut cpu_ssh))
        } else {
            let b = measured(&their_pids, theirs, &mut cpu_ssh);
            (measured(&our_pids, ours, &mut cpu_ours), b)
        };
        println!("round {r}: outpost tunnel {a:.1} MB/s, ssh -L {b:.1} MB/s");
        t_ours.push(a);
        t_ssh.push(b);
    }
    let (m_ours, m_ssh) = (median(t_ours), median(t_ssh));
    let l_direct = pings(direct, n_pings);
    let l_ours = pings(ours, n_pings);
    let l_ssh = pings(theirs, n_pings);
    println!("| path | MB/s (median) | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    println!(
        "| direct | | {:.0} | {:.0} |",
        pct(&l_direct, 0.5),
        pct(&l_direct, 0.99)
    );
    println!(
        "| outpost tunnel | {m_ours:.1} | {:.0} | {:.0} |",
        pct(&l_ours, 0.5),
        pct(&l_ours, 0.99)
    );
    println!(
        "| ssh -L | {m_ssh:.1} | {:.0} | {:.0} |",
        pct(&l_ssh, 0.5),
        pct(&l_ssh, 0.99)
    );
    let mb = (rounds * size) as f64 / 1e6;
    println!(
        "CPU per MB carried (both directions of the echo, every process of the path): outpost {:.2} ms (collector, agent, command line), ssh -L {:.2} ms (ssh, sshd)",
        cpu_ours * 1e3 / mb,
        cpu_ssh * 1e3 / mb
    );
    println!(
        "throughput ratio (outpost / ssh -L): {:.2}; p50 ratio {:.2}, p99 ratio {:.2}; added p50 over direct: {:.0} µs (ssh -L: {:.0} µs)",
        m_ours / m_ssh,
        pct(&l_ours, 0.5) / pct(&l_ssh, 0.5),
        pct(&l_ours, 0.99) / pct(&l_ssh, 0.99),
        pct(&l_ours, 0.5) - pct(&l_direct, 0.5),
        pct(&l_ssh, 0.5) - pct(&l_direct, 0.5),
    );
    drop(tunnel);
    drop(sim);
}
