//! Discovery between a real collector and an agent speaking raw protocol: a
//! job added on the command line reaches the agent after `Welcome` (and its
//! deletion does too); discovered hosts land in the inventory; a malformed
//! host report is refused alone in the `Ack` and the stream stays up.
use std::time::Duration;

use outpost_proto::agent_v1::{
    AgentMessage, Batch, CollectorMessage, DiscoveredHost, DiscoveredHosts, DiscoveryAssignment, Observation, OpenPort,
    ScanFinished, ScanProgress, agent_message, collector_message, command, observation, snmp_credential,
};
use outpost_tests::raw::{agent_tls, client, hello};
use outpost_tests::{OutputExt, collector_with_agent};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn hosts(seq: u64, address: &str) -> Observation {
    Observation {
        seq,
        observed_at_ms: 1_700_000_000_000 + seq as i64,
        source: None,
        body: Some(observation::Body::DiscoveredHosts(DiscoveredHosts {
            scan_id: "scan-1".into(),
            scanned_ports: vec![22, 8728],
            hosts: vec![DiscoveredHost {
                address: address.into(),
                mac: "02:00:00:00:00:01".into(),
                names: vec!["gw".into()],
                open_ports: vec![OpenPort {
                    port: 8728,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })),
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

async fn next(inbound: &mut tonic::Streaming<CollectorMessage>) -> collector_message::Kind {
    let wait = tokio::time::timeout(Duration::from_secs(30), inbound.message());
    wait.await
        .expect("a message within 30 s")
        .expect("stream healthy")
        .expect("a message")
        .kind
        .expect("kind")
}

/// The next discovery assignment, skipping other commands.
async fn next_assignment(inbound: &mut tonic::Streaming<CollectorMessage>) -> DiscoveryAssignment {
    loop {
        if let collector_message::Kind::Command(c) = next(inbound).await
            && let Some(command::Kind::AssignDiscovery(a)) = c.kind
        {
            return a;
        }
    }
}

/// The next message that is not a command.
async fn next_reply(inbound: &mut tonic::Streaming<CollectorMessage>) -> collector_message::Kind {
    loop {
        let kind = next(inbound).await;
        if !matches!(kind, collector_message::Kind::Command(_)) {
            return kind;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_reach_the_agent_and_its_reports_build_the_inventory() {
    let (c, a) = tokio::task::spawn_blocking(|| collector_with_agent("acme", "hq"))
        .await
        .expect("setup");
    c.cli(&[
        "discovery",
        "job",
        "add",
        "--tenant",
        "acme",
        "--site",
        "hq",
        "--targets",
        "192.0.2.0/24",
        "--ports",
        "22,8728",
        "--snmp-community",
        "n0t-public",
    ])
    .ok();

    let mut cl = client(&c.agent_endpoint(), agent_tls(a.data_dir()))
        .await
        .expect("mTLS");
    let (tx, rx) = mpsc::channel(8);
    tx.send(hello()).await.expect("hello");
    let mut inbound = cl.connect(ReceiverStream::new(rx)).await.expect("connect").into_inner();
    assert!(matches!(next(&mut inbound).await, collector_message::Kind::Welcome(_)));
    let assignment = next_assignment(&mut inbound).await;
    assert_eq!(assignment.jobs.len(), 1);
    let job = &assignment.jobs[0];
    assert_eq!(
        (job.targets.as_slice(), job.ports.as_slice()),
        (&["192.0.2.0/24".to_owned()][..], &[22, 8728][..])
    );
    assert!(matches!(
        &job.snmp[0].kind,
        Some(snmp_credential::Kind::Community(c)) if c == "n0t-public"
    ));

    tx.send(AgentMessage {
        kind: Some(agent_message::Kind::ScanProgress(ScanProgress {
            scan_id: "scan-1".into(),
            phase: "tcp".into(),
            done: 10,
            total: 254,
            hosts_found: 1,
        })),
    })
    .await
    .expect("progress");
    let finished = Observation {
        seq: 3,
        observed_at_ms: 1_700_000_000_010,
        source: None,
        body: Some(observation::Body::ScanFinished(ScanFinished {
            scan_id: "scan-1".into(),
            job_id: job.job_id.clone(),
            source: "scan".into(),
            targets: vec!["192.0.2.0/24".into()],
            started_ms: 1_700_000_000_000,
            finished_ms: 1_700_000_000_010,
            addresses: 254,
            hosts_found: 1,
            ..Default::default()
        })),
    };
    tx.send(batch(vec![hosts(1, "192.0.2.1"), hosts(2, "192.0.2.999"), finished]))
        .await
        .expect("send");
    let collector_message::Kind::Ack(ack) = next_reply(&mut inbound).await else {
        panic!("expected an Ack")
    };
    assert_eq!(ack.acked_through, 3);
    assert_eq!(ack.rejected.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    assert!(
        ack.rejected[0].reason.contains("is not an IPv4 or IPv6 address"),
        "{:?}",
        ack.rejected
    );

    let listed: serde_json::Value =
        serde_json::from_slice(&c.cli(&["discovery", "hosts", "--json"]).ok().stdout).expect("json");
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["address"], "192.0.2.1");
    assert_eq!(listed[0]["name"], "gw");
    let adoptable: serde_json::Value =
        serde_json::from_slice(&c.cli(&["discovery", "hosts", "--adoptable", "--json"]).ok().stdout).expect("json");
    assert_eq!(adoptable[0]["adopt"]["api_port"], 8728);
    assert_eq!(
        c.count("SELECT COUNT(*) FROM discovery_scans WHERE state = 'finished'"),
        1
    );

    // The stream is still up, and a deleted job is taken back within seconds.
    c.cli(&["discovery", "job", "delete", &job.job_id]).ok();
    assert!(next_assignment(&mut inbound).await.jobs.is_empty());
}

#[test]
fn a_job_over_what_an_agent_scans_is_refused_naming_the_count_and_the_cap() {
    assert_eq!(
        outpost_store::inventory::jobs::MAX_JOB_ADDRESSES,
        outpost_discovery::targets::DEFAULT_MAX_ADDRESSES as u128,
        "the collector refuses exactly what agents refuse"
    );
    let c = outpost_tests::Collector::init();
    let _ = c.token("acme", "hq");
    let add = |targets: &str| {
        c.cli(&[
            "discovery",
            "job",
            "add",
            "--tenant",
            "acme",
            "--site",
            "hq",
            "--targets",
            targets,
        ])
    };
    // 4094 + 254, counted as the agent counts them.
    let out = add("10.0.0.0/20,10.0.16.0/24");
    assert!(!out.status.success(), "{}", out.stdout_text());
    let err = out.stderr_text();
    assert!(
        err.contains("4348 addresses") && err.contains("more than the 4096 an agent scans"),
        "{err}"
    );
    assert_eq!(c.count("SELECT COUNT(*) FROM discovery_jobs"), 0, "nothing stored");
    // 4094 + 2: exactly the cap.
    add("10.0.0.0/20,10.0.16.0/31").ok();
    assert_eq!(c.count("SELECT COUNT(*) FROM discovery_jobs"), 1);
}
