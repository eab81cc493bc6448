//! Discovery against nmap on a /24 of network namespaces: ~25 live hosts,
//! each with a few open ports of nmap's top 100. Each round flushes the
//! scanner's neighbour cache, then times `outpost-agent discover` (ICMP and
//! the same top-100 TCP ports) and, flushed again, `nmap -T4 -sn` followed by
//! `nmap -T4 -sT --top-ports 100` on the hosts it found; the rounds
//! alternate which goes first. Prints each run, the median ratio, and whether
//! the findings (hosts up, open ports per host) are identical. See
//! bench/discovery.sh.
//!
//! Environment: HOSTS (live hosts, default 25), RATE (probes/s for discover,
//! default 10000), ROUNDS (default 5), OUTPOST_BIN_DIR (where outpost-agent is).
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use outpost_testnet::{HostSpec, TestNet};

type Findings = BTreeMap<IpAddr, BTreeSet<u16>>;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ours(net: &TestNet, agent: &str, rate: usize, ports: &str) -> (Duration, Findings) {
    let start = Instant::now();
    let out = net
        .scan_command(agent)
        .args(["discover", &net.ipv4_subnet().to_string(), "--ports", ports])
        .args(["--rate", &rate.to_string(), "--no-names", "--no-mndp", "--json"])
        .output()
        .expect("run outpost-agent");
    let took = start.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut found = Findings::new();
    for h in v["hosts"].as_array().expect("hosts") {
        let addr = h["address"].as_str().expect("address").parse().expect("IP");
        let ports = h["open_ports"].as_array().expect("ports");
        found.insert(
            addr,
            ports.iter().filter_map(|p| p.as_u64()).map(|p| p as u16).collect(),
        );
    }
    (took, found)
}

fn grepable(net: &TestNet, args: &[&str]) -> Findings {
    let out = net
        .scan_command("nmap")
        .args(["-T4", "-n", "-oG", "-"])
        .args(args)
        .output()
        .expect("run nmap");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut found = Findings::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("Host: ") else {
            continue;
        };
        let Some(addr) = rest.split_whitespace().next().and_then(|a| a.parse().ok()) else {
            continue;
        };
        let entry = found.entry(addr).or_default();
        if let Some((_, ports)) = rest.split_once("Ports: ") {
            for p in ports.split(", ") {
                let mut f = p.split('/');
                if let (Some(port), Some("open")) = (f.next(), f.next()) {
                    entry.insert(port.trim().parse().expect("port"));
                }
            }
        }
    }
    found
}

fn theirs(net: &TestNet) -> (Duration, Findings) {
    let start = Instant::now();
    let up = grepable(net, &["-sn", &net.ipv4_subnet().to_string()]);
    let targets: Vec<String> = up.keys().map(IpAddr::to_string).collect();
    let mut args = vec!["-sT", "--top-ports", "100"];
    args.extend(targets.iter().map(String::as_str));
    let mut found = grepable(net, &args);
    let took = start.elapsed();
    for addr in up.keys() {
        found.entry(*addr).or_default();
    }
    (took, found)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let hosts = env("HOSTS", 25).clamp(1, 200);
    let rate = env("RATE", 10_000);
    let rounds = env("ROUNDS", 5).max(1);
    let agent = std::env::var("OUTPOST_BIN_DIR")
        .map(|d| format!("{d}/outpost-agent"))
        .unwrap_or_else(|_| "target/release/outpost-agent".into());
    // A few top-100 ports per host, varying with the host.
    const PICK: &[u16] = &[22, 80, 443, 3389, 8080, 445, 21, 25, 53, 3306, 5432, 8443];
    let mut builder = TestNet::builder();
    for i in 0..hosts {
        let n = 2 + i % 3;
        let ports: Vec<u16> = (0..n)
            .map(|k| PICK[(i * 5 + k * 7) % PICK.len()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        builder = builder.host(HostSpec::new().tcp_ports(&ports));
    }
    let net = builder.build().expect("test network (needs root, iproute2)");
    let top100: String = outpost_discovery::ports::TOP_100
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut ratios = Vec::new();
    let (mut ours_ms, mut nmap_ms) = (Vec::new(), Vec::new());
    let mut identical = true;
    for round in 0..rounds {
        let run = |first_ours: bool| {
            net.flush_neighbours().expect("flush");
            if first_ours {
                ours(&net, &agent, rate, &top100)
            } else {
                theirs(&net)
            }
        };
        let (a, b) = if round % 2 == 0 {
            let a = run(true);
            (a, run(false))
        } else {
            let b = run(false);
            (run(true), b)
        };
        let (ours_t, ours_f) = a;
        let (nmap_t, nmap_f) = b;
        let same = ours_f == nmap_f;
        identical &= same;
        let ratio = ours_t.as_secs_f64() / nmap_t.as_secs_f64();
        ratios.push(ratio);
        ours_ms.push(ours_t.as_secs_f64() * 1e3);
        nmap_ms.push(nmap_t.as_secs_f64() * 1e3);
        println!(
            "round {round}: discover {:.0} ms, nmap -sn + -sT {:.0} ms, ratio {ratio:.2}, hosts {} / {}, open ports {} / {}, identical: {same}",
            ours_t.as_secs_f64() * 1e3,
            nmap_t.as_secs_f64() * 1e3,
            ours_f.len(),
            nmap_f.len(),
            ours_f.values().map(BTreeSet::len).sum::<usize>(),
            nmap_f.values().map(BTreeSet::len).sum::<usize>(),
        );
        if !same {
            for addr in ours_f.keys().chain(nmap_f.keys()).collect::<BTreeSet<_>>() {
                if ours_f.get(addr) != nmap_f.get(addr) {
                    println!("  {addr}: discover {:?}, nmap {:?}", ours_f.get(addr), nmap_f.get(addr));
                }
            }
        }
    }
    println!(
        "summary: {hosts} live hosts on a /24, rate {rate}/s, {rounds} rounds: discover median {:.0} ms, nmap median {:.0} ms, median ratio {:.2}, findings identical in every round: {identical}",
        median(ours_ms),
        median(nmap_ms),
        median(ratios)
    );
}
