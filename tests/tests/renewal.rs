//! The running agent renews its certificate over mTLS at two thirds of its
//! lifetime, keeps its identity, and carries on with the new one.
use outpost_agent::credentials::Credentials;
use outpost_tests::{Agent, Collector, OutputExt, wait_for};

#[test]
fn running_agent_renews_before_expiry() {
    let mut c = Collector::init();
    c.serve_args = vec!["--agent-cert-lifetime".into(), "60s".into()];
    c.start();
    let mut a = Agent::new();
    a.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    let before = Credentials::load(a.data_dir()).expect("credentials");
    assert!(
        before.not_after - before.not_before <= 70,
        "short-lived certificate issued"
    );

    a.start();
    a.running().wait_log("certificate renewed");
    let after = Credentials::load(a.data_dir()).expect("renewed credentials");
    assert_eq!(after.identity, before.identity);
    assert!(after.not_after > before.not_after);
    assert_ne!(after.chain[0].as_ref(), before.chain[0].as_ref());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.data_dir().join("identity.pem"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let id = a.id();
    wait_for("the collector to record the renewal", || {
        c.agents()
            .into_iter()
            .find(|r| r["id"] == id.as_str() && r["cert_not_after_ms"].as_i64() == Some(after.not_after * 1000))
    });

    // The stream opened with the old certificate ends when that certificate
    // expires; the agent reconnects with the renewed one and stays online.
    c.server().wait_log("reason=\"certificate expired\"");
    wait_for("the agent to reconnect with the renewed certificate", || {
        let connects = a
            .running()
            .log()
            .iter()
            .filter(|l| l.contains("connected to the collector"))
            .count();
        (connects >= 2).then_some(())
    });
    wait_for("the agent online again", || {
        c.agents()
            .into_iter()
            .find(|r| r["id"] == id.as_str() && r["online"] == true)
    });
    let out = a.cli(&["check-config"]).ok().stdout_text();
    assert!(out.contains(&format!("valid until {}", after.not_after)), "{out}");
}
