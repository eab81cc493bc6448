//! The agent-port certificate is renewed without a restart and warned about
//! before it ends; an agent with a skewed clock warns and does not renew in a
//! loop.
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use outpost_tests::raw::anonymous_tls;
use outpost_tests::{Collector, OutputExt, Process, bin, collector_with_agent, wait_for};

/// The certificate the agent port presents right now.
fn served_certificate(c: &Collector) -> Vec<u8> {
    let tls = anonymous_tls(c.data_dir());
    let addr = c.agent_endpoint();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(&tls))
            .connect(name, tcp)
            .await
            .expect("handshake");
        stream.get_ref().1.peer_certificates().expect("server certificate")[0].to_vec()
    })
}

#[test]
fn a_renewed_server_certificate_is_served_without_a_restart() {
    let (c, mut a) = collector_with_agent("acme", "hq");
    a.start();
    a.running().wait_log("connected to the collector");
    let before = served_certificate(&c);

    let out = c
        .cli(&["cert", "renew", "--san", "collector.renewed.example"])
        .ok()
        .stdout_text();
    assert!(
        out.contains("collector.renewed.example") && out.contains("127.0.0.1"),
        "{out}"
    );
    c.server().wait_log("agent-port certificate reloaded");
    let after = served_certificate(&c);
    assert_ne!(before, after, "a new certificate is served");
    let names = outpost_certs::ca::certificate_names(&after).expect("names");
    assert!(names.contains(&"collector.renewed.example".to_owned()), "{names:?}");
    // Same CA: agents notice nothing and reconnect as before.
    a.kill9();
    a.start();
    a.running().wait_log("connected to the collector");

    // A certificate near its end is warned about, in the log and in `agent list`.
    let ca = outpost_certs::ca::CertificateAuthority::from_pem(
        &std::fs::read_to_string(c.data_dir().join("ca.crt")).expect("ca.crt"),
        &std::fs::read_to_string(c.data_dir().join("ca.key")).expect("ca.key"),
    )
    .expect("ca");
    let short = ca
        .issue_server_valid_for(&["127.0.0.1".into()], Duration::from_secs(10 * 86_400))
        .expect("issue");
    outpost_certs::files::write_private(
        &c.data_dir().join("server.pem"),
        format!("{}{}", short.key_pem, short.chain_pem).as_bytes(),
    )
    .expect("write server.pem");
    let line = c.server().wait_log("the agent-port certificate expires on");
    assert!(line.contains("cert renew"), "{line}");
    let listed = c.cli(&["agent", "list"]).ok();
    assert!(
        listed.stderr_text().contains("the agent-port certificate expires on"),
        "{}",
        listed.stderr_text()
    );

    // A broken file is refused; the port keeps serving the last good certificate.
    let served = served_certificate(&c);
    std::fs::write(c.data_dir().join("server.pem"), b"not a certificate").expect("break it");
    c.server().wait_log("still serving the previous one");
    assert_eq!(served_certificate(&c), served);
}

#[test]
fn an_agent_with_a_skewed_clock_warns_and_renews_on_the_collectors_clock() {
    let mut c = Collector::init();
    c.serve_args = vec!["--agent-cert-lifetime".into(), "60s".into()];
    c.start();
    let a = outpost_tests::Agent::new();
    a.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    // The agent's clock runs two hours ahead (libfaketime); its timers do not.
    let mut cmd = Command::new("faketime");
    cmd.args(["-f", "+2h"])
        .arg(bin("outpost-agent"))
        .args(["run", "--data-dir"])
        .arg(a.data_dir())
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let agent = Process::spawn(cmd);
    let warning = agent.wait_log("clock is");
    assert!(warning.contains("ahead of the collector's"), "{warning}");
    agent.wait_log("certificate renewed");
    // Renewal follows the certificate's lifetime on the collector's clock: with
    // 60 s certificates, a few renewals in 50 s, not one every few seconds.
    std::thread::sleep(Duration::from_secs(50));
    let renewals = agent.log().iter().filter(|l| l.contains("certificate renewed")).count();
    assert!((1..=3).contains(&renewals), "{renewals} renewals in 50 s");
    wait_for("the agent to stay connected", || {
        agent.logged("connected to the collector").then_some(())
    });
}
