//! Who may stream as an agent, and what an agent does when it may not:
//! re-enrollment keeps the id (same site) or starts clean, enrollment retries,
//! one live instance per agent id, only the current certificate, revoked and
//! expired agents told exactly what to do, deleted sites disconnected.
use std::time::Duration;

use outpost_proto::PROTOCOL_VERSION;
use outpost_proto::agent_v1::{AgentMessage, CollectorMessage, EnrollRequest, collector_message};
use outpost_tests::raw::{agent_tls, anonymous_tls, client, hello_as};
use outpost_tests::{Agent, Collector, OutputExt, collector_with_agent, wait_for};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Opens `Connect` as `instance` with the agent credentials in `dir`; returns the
/// first answer (Welcome or an error status) and the live stream.
async fn open_stream(
    addr: &str,
    dir: &std::path::Path,
    instance: &str,
) -> (
    Result<CollectorMessage, tonic::Status>,
    Option<tonic::Streaming<CollectorMessage>>,
    mpsc::Sender<AgentMessage>,
) {
    let mut client = client(addr, agent_tls(dir)).await.expect("dial");
    let (tx, rx) = mpsc::channel(4);
    tx.send(hello_as(instance)).await.expect("hello");
    let mut inbound = match client.connect(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(status) => return (Err(status), None, tx),
    };
    match inbound.message().await {
        Ok(Some(m)) => (Ok(m), Some(inbound), tx),
        Ok(None) => (Err(tonic::Status::unknown("closed")), None, tx),
        Err(status) => (Err(status), None, tx),
    }
}

fn is_welcome(m: &Result<CollectorMessage, tonic::Status>) -> bool {
    matches!(
        m,
        Ok(CollectorMessage {
            kind: Some(collector_message::Kind::Welcome(_))
        })
    )
}

fn row(c: &Collector, id: &str) -> serde_json::Value {
    c.agents().into_iter().find(|r| r["id"] == id).expect("agent listed")
}

fn metric_rows(c: &Collector, agent: &str) -> i64 {
    c.count(&format!(
        "SELECT COUNT(*) FROM metric_samples WHERE agent_id = '{agent}' AND name = 'synthetic.sample'"
    ))
}

#[test]
fn a_same_site_re_enrollment_keeps_the_id_and_the_outbox_and_retires_the_old_certificate() {
    let (c, mut a) = collector_with_agent("acme", "hq");
    let id = a.id();
    // Data waiting in the outbox, never sent.
    a.cli(&["synth", "--count", "500"]).ok();
    let old_identity = tempfile::tempdir().expect("tempdir");
    for f in ["identity.pem", "ca.crt"] {
        std::fs::copy(a.data_dir().join(f), old_identity.path().join(f)).expect("keep the old identity");
    }

    let out = a.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    assert!(out.stdout_text().contains(&id), "{}", out.stdout_text());
    assert_eq!(a.id(), id, "same agent id");
    assert!(out.stdout_text().contains("kept"), "{}", out.stdout_text());

    a.start();
    wait_for("the outbox to arrive under the same id", || {
        (metric_rows(&c, &id) == 500).then_some(())
    });
    assert_eq!(c.agents().len(), 1, "no second agent record");

    // The certificate from before the re-enrollment no longer connects.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (first, _, _) = rt.block_on(open_stream(&c.agent_endpoint(), old_identity.path(), "old"));
    let status = first.expect_err("old certificate refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("replaced"), "{status:?}");
}

#[test]
fn re_enrolling_for_another_tenant_sets_the_outbox_aside_and_never_sends_it() {
    let (c, mut a) = collector_with_agent("acme", "hq");
    let id = a.id();
    a.cli(&["synth", "--count", "200"]).ok();
    let out = a.enroll(&c.agent_endpoint(), &c.token("globex", "hq")).ok();
    let new_id = a.id();
    assert_ne!(new_id, id, "{}", out.stdout_text());
    assert!(out.stdout_text().contains("moved aside"), "{}", out.stdout_text());
    let aside: Vec<String> = std::fs::read_dir(a.data_dir())
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("outbox.set-aside."))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].contains(&id), "named after the old agent: {aside:?}");
    // The new identity streams; not one of the old records reaches the new tenant.
    a.start();
    a.running().wait_log("connected to the collector");
    wait_for("host facts of the new agent", || {
        (c.count(&format!("SELECT COUNT(*) FROM host_facts WHERE agent_id = '{new_id}'")) > 0).then_some(())
    });
    assert_eq!(c.count("SELECT COUNT(*) FROM metric_samples"), 0);
    assert_eq!(c.agents().len(), 2);
}

#[test]
fn a_copied_data_directory_is_refused_as_a_second_instance() {
    let (c, mut a) = collector_with_agent("acme", "hq");
    let id = a.id();
    a.set_config("max_backoff_secs", "2");
    a.start();
    a.running().wait_log("connected to the collector");
    // A cloned machine: the same data directory, copied byte for byte.
    let mut clone = outpost_tests::Agent::new();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", a.data_dir().display()))
        .arg(clone.data_dir())
        .status()
        .expect("cp");
    assert!(copied.success());
    assert_eq!(clone.id(), id);
    clone.start();
    let line = clone
        .running()
        .wait_log("another instance of this agent identity is streaming");
    assert!(
        line.contains("ERROR") && line.contains("outpost-agent enroll"),
        "{line}"
    );
    c.server().wait_log("agent id used by two instances (cloned machine?)");
    let listed = c.cli(&["agent", "list"]).ok().stdout_text();
    assert!(
        listed.contains("agent id used by two instances (cloned machine?)"),
        "{listed}"
    );
    // The original keeps streaming; the clone sends nothing.
    assert!(!a.running().logged("uplink down"), "{:?}", a.running().log());
    assert!(!clone.running().logged("connected to the collector"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enrollment_retry_gets_the_same_certificate_and_nothing_else_reuses_the_token() {
    let mut c = tokio::task::spawn_blocking(|| {
        let mut c = Collector::init();
        c.start();
        c
    })
    .await
    .expect("collector");
    let token = c.token("acme", "hq");
    let mut anon = client(&c.agent_endpoint(), anonymous_tls(c.data_dir()))
        .await
        .expect("dial");
    let key = outpost_certs::keys::generate_key_and_csr("retry").expect("csr");
    let ask = |csr: Vec<u8>| EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        token: token.clone(),
        csr_der: csr,
        hostname: "h".into(),
        agent_version: "t".into(),
        previous_certificate_der: vec![],
    };
    let first = anon
        .enroll(ask(key.csr_der.clone()))
        .await
        .expect("enroll")
        .into_inner();
    // The answer was "lost": the agent asks again with the same key.
    let again = anon.enroll(ask(key.csr_der.clone())).await.expect("retry").into_inner();
    assert_eq!(first.certificate_chain_der, again.certificate_chain_der);
    assert_eq!(first.agent_id, again.agent_id);
    let other = outpost_certs::keys::generate_key_and_csr("thief").expect("csr");
    let refused = anon.enroll(ask(other.csr_der)).await.expect_err("another key");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("already been used"), "{refused:?}");
    c.server().wait_log("retried=true");
    tokio::task::spawn_blocking(move || {
        assert_eq!(c.agents().len(), 1);
        c.kill9();
    })
    .await
    .expect("check");
}

#[test]
fn one_instance_streams_per_agent_id_and_the_same_instance_replaces_its_old_stream() {
    let (c, mut a) = collector_with_agent("acme", "hq");
    let id = a.id();
    a.set_config("max_backoff_secs", "2");
    a.start();
    a.running().wait_log("connected to the collector");
    let instance = wait_for("the agent's instance id", || {
        let r = row(&c, &id);
        r["instance_id"].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // A second instance (a clone) is refused while the agent streams, and named.
    let (clone, _, _) = rt.block_on(open_stream(&c.agent_endpoint(), a.data_dir(), "a-cloned-machine"));
    let status = clone.expect_err("second instance refused");
    assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("cloned machine?"), "{status:?}");
    c.server().wait_log("agent id used by two instances (cloned machine?)");
    let note = row(&c, &id)["instance_conflict"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(note.contains("a-cloned-machine"), "{note}");
    let listed = c.cli(&["agent", "list"]).ok().stdout_text();
    assert!(
        listed.contains("agent id used by two instances (cloned machine?)"),
        "{listed}"
    );

    // The same instance opening a new stream (its old connection looked dead to
    // it) replaces the old stream instead of being refused.
    a.kill9();
    let (first, stream, _keep) = rt.block_on(open_stream(&c.agent_endpoint(), a.data_dir(), &instance));
    assert!(is_welcome(&first), "{first:?}");
    let mut old = stream.expect("stream");
    a.start();
    a.running().wait_log("connected to the collector");
    let ended = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match old.message().await {
                    Ok(Some(_)) => continue,
                    other => return other,
                }
            }
        })
        .await
    });
    match ended {
        Ok(Err(status)) => assert!(status.message().contains("replaced"), "{status:?}"),
        Ok(Ok(None)) => {}
        other => panic!("the old stream was not ended: {other:?}"),
    }
}

#[test]
fn deleting_a_site_disconnects_and_revokes_its_agents() {
    let (c, mut a) = collector_with_agent("acme", "doomed");
    a.set_config("max_backoff_secs", "3");
    a.start();
    a.running().wait_log("connected to the collector");
    let out = c.cli(&["site", "delete", "--tenant", "acme", "--site", "doomed"]).ok();
    assert!(
        out.stdout_text().contains("1 agent(s) are revoked"),
        "{}",
        out.stdout_text()
    );
    // The connection, not just the stream, is closed by the collector…
    c.server().wait_log("closing a revoked agent's connection");
    // …and the agent says, at error level, what happened and what to do,
    // then knocks only at its longest backoff.
    let line = a.running().wait_log("the collector has revoked this agent");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("outpost-agent enroll"), "{line}");
    a.running().wait_log("delay_ms=3000");
    assert!(row(&c, &a.id())["revoked"].as_bool().unwrap_or(false));
}

#[test]
fn a_revoked_agent_loses_its_connection_and_is_told_so() {
    let (c, mut a) = collector_with_agent("acme", "hq");
    a.set_config("max_backoff_secs", "3");
    a.start();
    a.running().wait_log("connected to the collector");
    let pid = a.running().pid();
    let port = c.agent_addr.expect("port").port();
    let established = || {
        let out = std::process::Command::new("ss")
            .args(["-Htnp", "state", "established", &format!("( dport = :{port} )")])
            .output()
            .expect("ss");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!("pid={pid},")))
            .count()
    };
    assert!(established() >= 1, "the agent is connected before the revocation");
    let revoked_at = std::time::Instant::now();
    c.cli(&["agent", "revoke", &a.id()]).ok();
    c.server().wait_log("closing a revoked agent's connection");
    a.running().wait_log("the collector has revoked this agent");
    wait_for("the agent's TCP connection to close", || {
        (established() == 0).then_some(())
    });
    // For the record (the README says "about 2 s"), not asserted: timing on a
    // shared machine belongs in benchmarks.
    eprintln!("revocation → connection closed in {:?}", revoked_at.elapsed());
    // Reconnect attempts are refused at the handshake and stay at the longest delay.
    a.running().wait_log("delay_ms=3000");
}

#[test]
fn an_agent_whose_certificate_expired_offline_says_how_to_recover_and_recovers() {
    let mut c = Collector::init();
    c.serve_args = vec!["--agent-cert-lifetime".into(), "60s".into()];
    c.start();
    let mut a = Agent::new();
    a.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    let id = a.id();
    a.cli(&["synth", "--count", "300"]).ok();
    let creds = outpost_agent::credentials::Credentials::load(a.data_dir()).expect("creds");
    // Offline past the certificate's end.
    wait_for("the certificate to expire", || {
        (outpost_agent::now_ms() / 1000 > creds.not_after + 1).then_some(())
    });
    a.set_config("max_backoff_secs", "2");
    a.start();
    let line = a.running().wait_log("certificate expired");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("same-site re-enrollment"), "{line}");
    assert!(line.contains("outpost-agent enroll --collector"), "{line}");
    a.running().wait_log("delay_ms=2000");
    a.kill9();
    // The recovery it named: a same-site token, same id, outbox kept.
    a.enroll(&c.agent_endpoint(), &c.token("acme", "hq")).ok();
    assert_eq!(a.id(), id);
    a.start();
    wait_for("the outbox to arrive", || (metric_rows(&c, &id) == 300).then_some(()));
}

/// A TCP proxy to the collector that "loses" the answers on its first
/// `lose` connections: once the client's TLS handshake is done and its
/// request is out (its second write), nothing more from the server reaches
/// it, and both sides are cut two seconds later — after the collector has
/// signed and committed. Later connections pass untouched.
fn lossy_proxy(upstream: std::net::SocketAddr, lose: usize) -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    let seen = Arc::new(AtomicUsize::new(0));
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let lossy = seen.fetch_add(1, Ordering::SeqCst) < lose;
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let blocked = Arc::new(AtomicBool::new(false));
                let up = {
                    let blocked = blocked.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut writes = 0;
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            writes += 1;
                            if lossy && writes >= 2 {
                                blocked.store(true, Ordering::SeqCst);
                            }
                        }
                    })
                };
                let down = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 || blocked.load(Ordering::SeqCst) {
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    // Hold the client's side until the server has had time to
                    // sign and commit, then cut it.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    drop(cw);
                });
                let _ = down.await;
                up.abort();
            });
        }
    });
    (addr, rt)
}

#[test]
fn a_lost_enrollment_answer_is_recovered_with_the_same_token() {
    let mut c = Collector::init();
    c.start();
    let upstream = c.agent_addr.expect("agent port");

    // The answer to the first attempt is lost; the command retries by itself
    // with the same key and gets the certificate already signed.
    let (proxy, _rt) = lossy_proxy(upstream, 1);
    let a = Agent::new();
    let out = a.enroll(&proxy.to_string(), &c.token("acme", "hq")).ok();
    assert!(
        out.stderr_text().contains("retrying with the same key"),
        "{}",
        out.stderr_text()
    );
    c.server().wait_log("retried=true");
    assert_eq!(c.agents().len(), 1);
    assert!(!a.data_dir().join("enroll-pending.pem").exists());

    // Every attempt of the first command is lost: it fails, keeping its key;
    // running it again with the same token finishes the enrollment.
    let (proxy, _rt2) = lossy_proxy(upstream, 3);
    let b = Agent::new();
    let token = c.token("acme", "branch");
    let failed = b.enroll(&proxy.to_string(), &token);
    assert!(!failed.status.success());
    assert!(b.data_dir().join("enroll-pending.pem").exists());
    let again = b.enroll(&proxy.to_string(), &token).ok();
    assert!(
        again.stdout_text().contains("Enrolled as agent"),
        "{}",
        again.stdout_text()
    );
    assert_eq!(c.agents().len(), 2, "one agent for the token, not two");
    // Signed once per token; every later attempt got the same certificate back:
    // one retry in the first case, two lost ones and the final one in the second.
    let log = c.server().log();
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("retried=false"), 2, "{log:?}");
    assert_eq!(count("retried=true"), 4, "{log:?}");
}
