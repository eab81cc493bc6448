//! Enrollment is refused, with a message saying why and a non-zero exit, for a
//! reused, expired, malformed or foreign token and for a deleted site.
use outpost_tests::{Agent, Collector, OutputExt};

fn refused(c: &Collector, token: &str, why: &str) {
    let a = Agent::new();
    let out = a.enroll(&c.agent_endpoint(), token);
    assert!(!out.status.success(), "enrollment should fail: {}", out.stdout_text());
    let err = out.stderr_text();
    assert!(err.contains(why), "expected {why:?} in: {err}");
    assert!(
        !a.data_dir().join("identity.pem").exists(),
        "no identity written on failure"
    );
}

#[test]
fn refusals_name_the_reason() {
    let mut c = Collector::init();
    c.start();

    let token = c.token("acme", "hq");
    Agent::new().enroll(&c.agent_endpoint(), &token).ok();
    refused(&c, &token, "already been used");

    let short = c.token_with("acme", "hq", "1s");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    refused(&c, &short, "expired");

    let doomed = c.token("acme", "closing");
    c.cli(&["site", "delete", "--tenant", "acme", "--site", "closing"]).ok();
    refused(
        &c,
        &doomed,
        "site this enrollment token was issued for has been deleted",
    );

    refused(&c, "outpost1.nonsense", "invalid enrollment token");

    // A token from another collector pins another CA: the TLS handshake fails
    // before the token is ever sent.
    let other = Collector::init();
    let foreign = other.token("acme", "hq");
    refused(&c, &foreign, "pinned by the enrollment token");

    // Nothing reachable: a clear connection error.
    let nowhere = Agent::new().enroll("127.0.0.1:1", &c.token("acme", "hq"));
    assert!(!nowhere.status.success());
    assert!(nowhere.stderr_text().contains("cannot"), "{}", nowhere.stderr_text());

    // The collector logged every refusal and is still serving.
    c.server().wait_log("enrollment refused");
    Agent::new().enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
}
