//! The hub's claims and limits.
use outpost_proto::agent_v1::TunnelHello;

use super::*;

async fn hub(policy: TunnelPolicy) -> (TunnelHub, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).await.expect("store");
    let hub = TunnelHub::new(
        store,
        Arc::default(),
        policy,
        tokio_util::sync::CancellationToken::new(),
    );
    (hub, dir)
}

fn pending(hub: &TunnelHub, id: &str, agent: AgentId, secret: [u8; 32]) -> oneshot::Receiver<AgentStream> {
    let (tx, rx) = oneshot::channel();
    lock(&hub.pending).insert(
        id.to_owned(),
        Pending {
            agent,
            secret,
            stream: tx,
        },
    );
    rx
}

fn hello(id: &str, secret: &[u8]) -> TunnelHello {
    TunnelHello {
        tunnel_id: id.to_owned(),
        secret: secret.to_vec(),
    }
}

#[tokio::test]
async fn only_the_asked_agent_with_the_secret_claims_a_tunnel_and_only_once() {
    let (hub, _dir) = hub(TunnelPolicy::default()).await;
    let (asked, other) = (AgentId::random(), AgentId::random());
    let secret = [9u8; 32];
    let _rx = pending(&hub, "t1", asked, secret);
    assert!(
        hub.claim(other, &hello("t1", &secret)).is_none(),
        "another agent, right secret"
    );
    assert!(hub.claim(asked, &hello("t1", &[8u8; 32])).is_none(), "wrong secret");
    assert!(
        hub.claim(asked, &hello("t1", &secret[..16])).is_none(),
        "a prefix of the secret"
    );
    assert!(hub.claim(asked, &hello("t2", &secret)).is_none(), "unknown id");
    assert!(
        hub.claim(asked, &hello("t1", &secret)).is_some(),
        "the agent asked, with its secret"
    );
    assert!(hub.claim(asked, &hello("t1", &secret)).is_none(), "single use");
}

#[tokio::test]
async fn limits_hold_per_user_per_device_and_in_total_and_slots_come_back() {
    let policy = TunnelPolicy {
        per_user: 2,
        per_device: 3,
        total: 4,
        ..TunnelPolicy::default()
    };
    let (hub, _dir) = hub(policy).await;
    let a1 = hub.reserve("ann", "d1").expect("first");
    let _a2 = hub.reserve("ann", "d2").expect("second");
    let refused = hub.reserve("ann", "d3").err().expect("third for ann");
    assert!(refused.to_string().contains("ann has 2 tunnels open"), "{refused}");
    let _b1 = hub.reserve("bob", "d1").expect("bob");
    let _c1 = hub.reserve("cat", "d1").expect("cat");
    let refused = hub.reserve("dan", "d1").err().expect("a fourth on d1");
    assert!(matches!(refused, TunnelRefused::Limit(_)), "{refused:?}");
    let refused = hub.reserve("dan", "d9").err().expect("a fifth in total");
    assert!(refused.to_string().contains("4 tunnels are open"), "{refused}");
    drop(a1);
    hub.reserve("dan", "d9").expect("a slot came back");
    assert_eq!(lock(&hub.counts).per_user.get("ann"), Some(&1));
}
