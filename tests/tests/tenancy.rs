//! An agent of tenant A sending data that names tenant B, another site or
//! another agent: rejected and logged, nothing written, the stream stays up.

use outpost_proto::agent_v1::{
    AgentMessage, Batch, CollectorMessage, MetricSample, Observation, Source, agent_message, collector_message,
    observation,
};
use outpost_tests::raw::{agent_tls, client, hello};
use outpost_tests::{Agent, OutputExt, collector_with_agent};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn obs(seq: u64, source: Option<Source>) -> Observation {
    Observation {
        seq,
        observed_at_ms: 1,
        source,
        body: Some(observation::Body::Metric(MetricSample {
            name: "probe".into(),
            value: seq as f64,
            subject: String::new(),
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

/// The next message that is not a command (the collector sends its device
/// assignment right after `Welcome`).
async fn next(inbound: &mut tonic::Streaming<CollectorMessage>) -> collector_message::Kind {
    loop {
        let kind = inbound
            .message()
            .await
            .expect("stream healthy")
            .expect("a message")
            .kind
            .expect("kind");
        if !matches!(kind, collector_message::Kind::Command(_)) {
            return kind;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_of_another_tenant_or_agent_are_rejected_and_the_stream_stays_up() {
    let (c, a) = tokio::task::spawn_blocking(|| collector_with_agent("alpha", "a1"))
        .await
        .expect("setup");
    let b = tokio::task::spawn_blocking({
        let (endpoint, token) = (c.agent_endpoint(), c.token("beta", "b1"));
        move || {
            let b = Agent::new();
            b.enroll(&endpoint, &token).ok();
            b
        }
    })
    .await
    .expect("enroll b");
    let ia = outpost_agent::credentials::Credentials::load(a.data_dir())
        .expect("a")
        .identity;
    let ib = outpost_agent::credentials::Credentials::load(b.data_dir())
        .expect("b")
        .identity;

    let mut cl = client(&c.agent_endpoint(), agent_tls(a.data_dir()))
        .await
        .expect("mTLS as A");
    let (tx, rx) = mpsc::channel(8);
    tx.send(hello()).await.expect("hello");
    let mut inbound = cl.connect(ReceiverStream::new(rx)).await.expect("connect").into_inner();
    assert!(matches!(next(&mut inbound).await, collector_message::Kind::Welcome(_)));

    let as_b = Source {
        tenant: ib.tenant.to_string(),
        site: ib.site.to_string(),
        agent_id: ib.agent.to_string(),
    };
    let other_site = Source {
        site: ib.site.to_string(),
        ..Default::default()
    };
    let other_agent = Source {
        agent_id: ib.agent.to_string(),
        ..Default::default()
    };
    let own = Source {
        tenant: ia.tenant.to_string(),
        site: ia.site.to_string(),
        agent_id: ia.agent.to_string(),
    };

    tx.send(batch(vec![obs(1, Some(as_b))])).await.expect("send");
    let collector_message::Kind::Ack(ack) = next(&mut inbound).await else {
        panic!("expected an Ack")
    };
    assert_eq!(ack.acked_through, 1);
    assert_eq!(ack.rejected.len(), 1);
    assert!(ack.rejected[0].reason.contains("another tenant"), "{:?}", ack.rejected);

    tx.send(batch(vec![
        obs(2, Some(other_site)),
        obs(3, Some(other_agent)),
        obs(4, Some(own)),
        obs(5, None),
    ]))
    .await
    .expect("send on the same stream");
    let collector_message::Kind::Ack(ack) = next(&mut inbound).await else {
        panic!("expected an Ack")
    };
    assert_eq!(ack.acked_through, 5);
    assert_eq!(ack.rejected.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);

    // Nothing was written for B or as B; A's valid rows were.
    assert_eq!(
        c.count(&format!(
            "SELECT COUNT(*) FROM metric_samples WHERE tenant_id = '{}'",
            ib.tenant
        )),
        0
    );
    assert_eq!(
        c.count(&format!(
            "SELECT COUNT(*) FROM metric_samples WHERE agent_id = '{}'",
            ib.agent
        )),
        0
    );
    assert_eq!(
        c.count(&format!(
            "SELECT COUNT(*) FROM metric_samples WHERE agent_id = '{}'",
            ia.agent
        )),
        2
    );
    c.server().wait_log("observation rejected");
    drop(tx);
}
