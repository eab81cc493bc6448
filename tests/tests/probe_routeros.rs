//! `outpost-agent probe-routeros`: what an installer runs to check a router
//! and its credentials, against simulated routers, with each failure named.
use std::process::{Command, Output, Stdio};

use outpost_tests::sim::Sim;
use outpost_tests::{OutputExt as _, bin};

const PASSWORD: &str = "Probe-Pass-31c9";

fn probe(address: &str, port: u16, password: &str, extra: &[&str]) -> Output {
    Command::new(bin("outpost-agent"))
        .args([
            "probe-routeros",
            address,
            "--user",
            "admin",
            "--port",
            &port.to_string(),
        ])
        .args(extra)
        .env("OUTPOST_ROS_PASSWORD", password)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run probe-routeros")
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got {}", out.stdout_text());
    out.stderr_text()
}

#[test]
fn probe_prints_the_basics_and_names_each_failure() {
    let sim = Sim::start(3, "127.0.43.1", "mixed", PASSWORD);
    let d = sim.devices[0].clone();

    // Plain API: identity, version, board, uptime, CPU and memory.
    let out = probe(&d.ip, d.api_port, PASSWORD, &[]).ok().stdout_text();
    for want in [
        format!("identity:  {}", d.identity),
        format!("version:   {}", d.ros),
        "board:".into(),
        "uptime:".into(),
        "cpu:".into(),
        "memory:".into(),
    ] {
        assert!(out.contains(&want), "{want:?} missing from:\n{out}");
    }

    // API-SSL: the certificate's fingerprint, and a pin that holds or fails.
    let tls = probe(&d.ip, d.api_ssl_port, PASSWORD, &["--tls"]).ok().stdout_text();
    let fingerprint = tls
        .lines()
        .find_map(|l| l.strip_prefix("api-ssl certificate sha256: "))
        .expect("fingerprint line")
        .trim()
        .to_owned();
    probe(&d.ip, d.api_ssl_port, PASSWORD, &["--tls", "--pin", &fingerprint]).ok();
    let wrong_pin = "ab".repeat(32);
    let err = failure(&probe(&d.ip, d.api_ssl_port, PASSWORD, &["--tls", "--pin", &wrong_pin]));
    assert!(err.contains("does not match the pinned"), "{err}");

    // Wrong password, missing api policy, nothing listening, too slow.
    let err = failure(&probe(&d.ip, d.api_port, "wrong", &[]));
    assert!(
        err.contains("login refused") && err.contains("invalid user name or password"),
        "{err}"
    );
    sim.control(&format!("no-api-policy {} on", d.ip));
    let err = failure(&probe(&d.ip, d.api_port, PASSWORD, &[]));
    assert!(err.contains("'api' policy"), "{err}");
    sim.control(&format!("clear {}", d.ip));
    sim.control(&format!("down {}", d.ip));
    let err = failure(&probe(&d.ip, d.api_port, PASSWORD, &[]));
    assert!(err.contains("refused"), "{err}");
    sim.control(&format!("up {}", d.ip));

    // A pre-6.43 router answers the login with a challenge.
    sim.control(&format!("legacy-login {} on", d.ip));
    probe(&d.ip, d.api_port, PASSWORD, &[]).ok();

    // No password anywhere and no terminal to ask on.
    let out = Command::new(bin("outpost-agent"))
        .args(["probe-routeros", &d.ip, "--user", "admin"])
        .env_remove("OUTPOST_ROS_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(failure(&out).contains("OUTPOST_ROS_PASSWORD"));
}
