//! The inventory in a real browser, with a real collector and an agent
//! speaking raw protocol: four scans' hosts reported over the agent port,
//! then headless Chromium signs in, lists the inventory, sorts and filters
//! it, opens a router's page and its history, sets the site's credential
//! profile, adopts the router (its device page then exists), asks for a scan
//! now, sees its progress update live, and its summary once the agent has
//! reported it finished.
//!
//! The browser side is `console/tests/inventory.mjs`; see `console_browser.rs`
//! for what it needs and when it is skipped.
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outpost_proto::agent_v1::{
    AgentMessage, Batch, CollectorMessage, DiscoveredHost, DiscoveredHosts, LldpNeighbor, MndpInfo, Observation,
    OpenPort, OsMatch, ScanFinished, ScanProgress, SnmpInterface, SnmpSystem, agent_message, collector_message,
    command, observation,
};
use outpost_tests::browser::{self, BrowserScript};
use outpost_tests::raw::{agent_tls, client, hello};
use outpost_tests::{OutputExt as _, collector_with_agent};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const PROFILE_PASSWORD: &str = "Adopt-With-7f3e";
const PORTS: [u32; 5] = [22, 80, 8728, 8729, 9100];

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit")
}

fn port(port: u32, service: &str, banner: &str) -> OpenPort {
    OpenPort {
        port,
        protocol: "tcp".into(),
        service: service.into(),
        banner: banner.into(),
        ..Default::default()
    }
}

fn host(address: &str, mac: &str, vendor: &str, name: &str, ports: Vec<OpenPort>) -> DiscoveredHost {
    DiscoveredHost {
        address: address.into(),
        mac: mac.into(),
        vendor: vendor.into(),
        names: if name.is_empty() { Vec::new() } else { vec![name.into()] },
        open_ports: ports,
        seen_by: vec!["icmp".into(), "arp".into()],
        rtt_us: 350,
        ..Default::default()
    }
}

/// The router: RouterOS by its API ports, MNDP and SNMP; port 80 from the
/// second scan on.
fn router(with_http: bool) -> DiscoveredHost {
    let mut ports = vec![
        port(22, "ssh", "SSH-2.0-ROSSSH"),
        port(8728, "routeros-api", ""),
        port(8729, "routeros-api-ssl", ""),
    ];
    if with_http {
        ports.push(port(80, "http", "Server: mikrotik routeros"));
    }
    let mut h = host("192.0.2.1", "02:00:00:00:00:01", "Routerboard.com", "hq-gw", ports);
    h.mndp = Some(MndpInfo {
        identity: "hq-gw".into(),
        mac: "02:00:00:00:00:01".into(),
        version: "7.16.1".into(),
        platform: "MikroTik".into(),
        board: "RB5009UG+S+".into(),
        uptime_secs: 90_061,
        software_id: "QWER-T1Y2".into(),
        interface: "ether2".into(),
        ipv4: "192.0.2.1".into(),
        ipv6: String::new(),
    });
    h.snmp = Some(SnmpSystem {
        descr: "RouterOS RB5009UG+S+".into(),
        object_id: "1.3.6.1.4.1.14988.1".into(),
        name: "hq-gw".into(),
        location: "hq rack".into(),
        uptime_ticks: 9_006_100,
        interfaces: vec![SnmpInterface {
            index: 1,
            name: "ether1".into(),
            descr: "ether1".into(),
            alias: "wan".into(),
            if_type: 6,
            mac: "02:00:00:00:00:01".into(),
            oper_up: true,
            speed_mbps: 1000,
        }],
        lldp_neighbors: vec![LldpNeighbor {
            local_port: "ether2".into(),
            chassis_id: "02:00:00:00:00:50".into(),
            port_id: "1/0/7".into(),
            port_descr: "to hq-gw".into(),
            sys_name: "hq-switch".into(),
        }],
        error: String::new(),
    });
    h.os_matches = vec![OsMatch {
        name: "MikroTik RouterOS 7".into(),
        accuracy: 96,
    }];
    h
}

fn pc() -> DiscoveredHost {
    host("192.0.2.3", "02:00:00:00:00:03", "Dell", "pc-3", Vec::new())
}

fn printer() -> DiscoveredHost {
    host(
        "192.0.2.20",
        "02:00:00:00:00:14",
        "Hewlett Packard",
        "printer",
        vec![port(80, "http", ""), port(9100, "jetdirect", "")],
    )
}

/// The agent's reports, numbered from its outbox.
struct Outbox {
    seq: u64,
}

impl Outbox {
    fn hosts(&mut self, scan: &str, at: i64, hosts: Vec<DiscoveredHost>) -> Observation {
        self.seq += 1;
        Observation {
            seq: self.seq,
            observed_at_ms: at,
            source: None,
            body: Some(observation::Body::DiscoveredHosts(DiscoveredHosts {
                scan_id: scan.into(),
                job_id: String::new(),
                scanned_ports: PORTS.to_vec(),
                hosts,
            })),
        }
    }

    fn finished(&mut self, scan: &str, at: i64, found: u32, warnings: &[&str]) -> Observation {
        self.seq += 1;
        Observation {
            seq: self.seq,
            observed_at_ms: at,
            source: None,
            body: Some(observation::Body::ScanFinished(ScanFinished {
                scan_id: scan.into(),
                job_id: String::new(),
                source: "scan".into(),
                targets: vec!["192.0.2.0/24".into()],
                started_ms: at - 4_000,
                finished_ms: at,
                addresses: 254,
                hosts_found: found,
                partial: false,
                warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
                icmp: if warnings.is_empty() {
                    "raw".into()
                } else {
                    "none".into()
                },
                probes_sent: 1_270,
            })),
        }
    }
}

fn batch(observations: Vec<Observation>) -> AgentMessage {
    AgentMessage {
        kind: Some(agent_message::Kind::Batch(Batch {
            observations,
            outbox_depth: 0,
        })),
    }
}

/// What the collector told the agent that the test waits for.
enum Heard {
    Acked(u64),
    ScanAsked(String),
}

/// Reads the agent's Connect stream: every Ack and ScanNow is passed on; a
/// ScanNow is answered at once with the scan's progress, as a real agent's
/// first report would.
async fn listen(
    mut inbound: tonic::Streaming<CollectorMessage>,
    outbound: mpsc::Sender<AgentMessage>,
    heard: std_mpsc::Sender<Heard>,
) {
    while let Ok(Some(message)) = inbound.message().await {
        match message.kind {
            Some(collector_message::Kind::Ack(ack)) => {
                let _ = heard.send(Heard::Acked(ack.acked_through));
            }
            Some(collector_message::Kind::Command(c)) => {
                if let Some(command::Kind::ScanNow(now)) = c.kind {
                    let progress = AgentMessage {
                        kind: Some(agent_message::Kind::ScanProgress(ScanProgress {
                            scan_id: now.scan_id.clone(),
                            phase: "tcp".into(),
                            done: 100,
                            total: 254,
                            hosts_found: 2,
                        })),
                    };
                    if outbound.send(progress).await.is_err() {
                        return;
                    }
                    let _ = heard.send(Heard::ScanAsked(now.scan_id));
                }
            }
            _ => {}
        }
    }
}

fn wait_heard(heard: &std_mpsc::Receiver<Heard>, what: &str, mut want: impl FnMut(&Heard) -> bool) -> Heard {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match heard.recv_timeout(left) {
            Ok(h) if want(&h) => return h,
            Ok(_) => {}
            Err(e) => panic!("the agent did not hear {what}: {e}"),
        }
    }
}

#[test]
fn the_inventory_in_a_browser() {
    let root = browser::workspace_root();
    if !browser::available(&root) {
        return;
    }
    let (c, a) = collector_with_agent("acme", "hq");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (outbound, rx) = mpsc::channel(16);
    let (heard_tx, heard) = std_mpsc::channel();
    let endpoint = c.agent_endpoint();
    let tls = agent_tls(a.data_dir());
    let inbound = rt.block_on(async {
        outbound.send(hello()).await.expect("hello");
        let mut cl = client(&endpoint, tls).await.expect("mTLS");
        let mut inbound = cl.connect(ReceiverStream::new(rx)).await.expect("connect").into_inner();
        let first = inbound.message().await.expect("stream healthy").expect("a message");
        assert!(matches!(first.kind, Some(collector_message::Kind::Welcome(_))));
        inbound
    });
    rt.spawn(listen(inbound, outbound.clone(), heard_tx));

    // Four complete scans over the last minutes: the NAS is gone after the
    // last three missed it, another MAC answered at the PC's address in the
    // second, and the router opened port 80.
    let mut outbox = Outbox { seq: 0 };
    let t = now_ms() - 5 * 60_000;
    let nas = host("192.0.2.100", "02:00:00:00:00:64", "Synology", "nas", Vec::new());
    let intruder = host("192.0.2.3", "02:00:00:00:00:99", "", "", Vec::new());
    let mut observations = vec![
        outbox.hosts("scan-1", t, vec![router(false), pc(), printer(), nas]),
        outbox.finished("scan-1", t + 1_000, 4, &[]),
        outbox.hosts("scan-2", t + 60_000, vec![router(true), pc(), printer(), intruder]),
        outbox.finished("scan-2", t + 61_000, 4, &[]),
    ];
    for (i, scan) in ["scan-3", "scan-4"].into_iter().enumerate() {
        let at = t + 120_000 + 60_000 * i as i64;
        observations.push(outbox.hosts(scan, at, vec![router(true), pc(), printer()]));
        observations.push(outbox.finished(scan, at + 1_000, 3, &[]));
    }
    outbound.blocking_send(batch(observations)).expect("send");
    let through = outbox.seq;
    wait_heard(
        &heard,
        "the Ack of the scans",
        |h| matches!(h, Heard::Acked(n) if *n >= through),
    );

    let listed: serde_json::Value =
        serde_json::from_slice(&c.cli(&["discovery", "hosts", "--json"]).ok().stdout).expect("hosts JSON");
    let hosts: Vec<serde_json::Value> = listed
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| serde_json::json!({ "id": h["id"], "address": h["address"], "mac": h["mac"] }))
        .collect();
    assert_eq!(hosts.len(), 5, "{listed}");

    let url = c.console().url();
    let pin = browser::spki_pin(&c.data_dir().join("server.pem"));
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console_inventory_browser_failure.png");
    let _ = std::fs::remove_file(&screenshot);
    let hosts = serde_json::Value::from(hosts).to_string();
    let mut script = BrowserScript::spawn(
        &root,
        "inventory.mjs",
        &[
            ("CONSOLE_URL", &url),
            ("CONSOLE_SPKI", &pin),
            ("CONSOLE_USER", "admin"),
            ("CONSOLE_PASSWORD", &c.admin_password),
            ("HOSTS", &hosts),
            ("PROFILE_PASSWORD", PROFILE_PASSWORD),
        ],
        screenshot,
    );
    script.expect_line("LISTED");
    script.expect_line("SORTED");
    script.expect_line("FILTERED");
    script.expect_line("HOST");
    script.expect_line("PROFILE");

    // Adopted through the console: a device with the router's address, its
    // API-SSL port, and the profile's user.
    let adopted = script.expect_prefix("ADOPTED ");
    let device_id = adopted.trim_start_matches("ADOPTED ").to_owned();
    let device = c.device(&device_id);
    assert_eq!(device["address"], "192.0.2.1", "{device}");
    assert_eq!(device["api_port"], 8729, "{device}");
    assert_eq!(
        c.count("SELECT COUNT(*) FROM hosts WHERE address = '192.0.2.1' AND device_id IS NOT NULL"),
        1
    );

    // "Scan now" reached the agent, whose progress the page shows live;
    // then the scan's report, and the page shows its summary.
    let asked = script.expect_prefix("SCAN ");
    let scan = asked.trim_start_matches("SCAN ").to_owned();
    let Heard::ScanAsked(sent) = wait_heard(&heard, "ScanNow", |h| matches!(h, Heard::ScanAsked(_))) else {
        unreachable!("only a ScanAsked is accepted")
    };
    assert_eq!(sent, scan, "the agent was asked for the scan the page follows");
    script.expect_line("PROGRESS");
    let at = now_ms();
    let report = vec![
        outbox.hosts(&scan, at, vec![router(true), printer()]),
        outbox.finished(&scan, at + 500, 2, &["ICMP not permitted: TCP probes only"]),
    ];
    outbound.blocking_send(batch(report)).expect("send");
    script.expect_line("SUMMARY");
    script.expect_line("DONE");
    let status = script.wait_exit();
    if !status.success() {
        script.fail(&format!("exited with {status} after DONE"));
    }
    assert_eq!(
        c.count(&format!(
            "SELECT COUNT(*) FROM discovery_scans WHERE id = '{scan}' AND state = 'finished'"
        )),
        1
    );
    drop(outbound);
    rt.shutdown_timeout(Duration::from_secs(5));
}
