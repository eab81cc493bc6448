//! Writes the seed corpus of the `agent_message` fuzz target,
//! `seeds/agent_message/` beside this crate's Cargo.toml:
//!
//!     cargo run --example make_seeds
//!
//! Each seed is an encoded `AgentMessage`: a Hello, and batches that exercise
//! each way an observation is stored or rejected, with `Source` claims that
//! match the fixed identity the target validates against (see `src/lib.rs`)
//! and ones that do not. Running it again gives the same files.
use std::path::PathBuf;

use outpost_agent_port_fuzz::{AGENT, SITE, TENANT};
use outpost_proto::agent_v1::{
    AgentMessage, Batch, Hello, HostFacts, MetricSample, Observation, Source, agent_message, observation,
};
use prost::Message as _;

fn metric(seq: u64, name: &str, value: f64, source: Option<Source>) -> Observation {
    Observation {
        seq,
        observed_at_ms: 1_700_000_000_000 + seq as i64,
        source,
        body: Some(observation::Body::Metric(MetricSample {
            name: name.into(),
            value,
            subject: "eth0".into(),
        })),
    }
}

fn own_source() -> Source {
    Source {
        tenant: TENANT.into(),
        site: SITE.into(),
        agent_id: AGENT.into(),
    }
}

fn batch(observations: Vec<Observation>) -> AgentMessage {
    AgentMessage {
        kind: Some(agent_message::Kind::Batch(Batch {
            observations,
            outbox_depth: 42,
        })),
    }
}

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/agent_message");
    std::fs::create_dir_all(&dir)?;

    let host_facts = Observation {
        seq: 3,
        observed_at_ms: 1_700_000_000_003,
        source: Some(own_source()),
        body: Some(observation::Body::HostFacts(HostFacts {
            hostname: "site-gw-01".into(),
            os: "linux".into(),
            os_version: "12".into(),
            kernel: "6.1.0".into(),
            arch: "x86_64".into(),
            addresses: vec!["192.0.2.10".into(), "2001:db8::10".into()],
            agent_version: "0.1.0".into(),
            outbox_depth: 7,
            uptime_seconds: 86_400,
        })),
    };
    let seeds = [
        (
            "hello",
            AgentMessage {
                kind: Some(agent_message::Kind::Hello(Hello {
                    protocol_version: 1,
                    agent_version: "0.1.0".into(),
                    capabilities: vec!["host_facts".into()],
                    first_unacked_seq: 1,
                    outbox_depth: 2,
                    instance_id: "6f1c1c2e-4d4b-4f0e-9d7c-0f0e1d2c3b4a".into(),
                })),
            },
        ),
        (
            "batch-stored",
            batch(vec![
                metric(1, "agent.outbox.depth", 2.0, Some(own_source())),
                metric(2, "device.cpu.load", 0.25, None),
                host_facts,
            ]),
        ),
        (
            "batch-rejected",
            batch(vec![
                metric(0, "seq.zero", 1.0, None),
                metric(5, "nan", f64::NAN, None),
                metric(6, "", 1.0, None),
                Observation {
                    seq: 7,
                    ..Default::default()
                },
                metric(
                    8,
                    "other.tenant",
                    1.0,
                    Some(Source {
                        tenant: "00000000-0000-4000-8000-000000000000".into(),
                        ..Default::default()
                    }),
                ),
                metric(
                    9,
                    "other.agent",
                    1.0,
                    Some(Source {
                        agent_id: SITE.into(),
                        ..Default::default()
                    }),
                ),
                metric(u64::MAX, "seq.out.of.range", 1.0, None),
            ]),
        ),
        ("batch-empty", batch(Vec::new())),
    ];
    for (name, message) in seeds {
        let path = dir.join(format!("{name}.pb"));
        let bytes = message.encode_to_vec();
        std::fs::write(&path, &bytes)?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
