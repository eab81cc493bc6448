//! Certificates from another CA, expired certificates and revoked agents are
//! refused at the TLS handshake; without a client certificate every call but
//! `Enroll` is `UNAUTHENTICATED`.
use std::sync::Arc;
use std::time::Duration;

use outpost_certs::ca::{CertificateAuthority, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::{AgentIdentity, SiteId, TenantId};
use outpost_proto::PROTOCOL_VERSION;
use outpost_proto::agent_v1::{EnrollRequest, RenewRequest};
use outpost_tests::raw::{agent_tls, anonymous_tls, client, hello};
use outpost_tests::{Agent, Collector, OutputExt, collector_with_agent, wait_for};

/// A client config presenting a certificate for `identity` signed by `ca`,
/// trusting the real collector CA.
fn tls_with_cert(
    collector: &Collector,
    ca: &CertificateAuthority,
    identity: &AgentIdentity,
    validity: Validity,
) -> Arc<rustls::ClientConfig> {
    let req = generate_key_and_csr("test").expect("csr");
    let cert = ca.sign_agent_csr(&req.csr_der, identity, validity).expect("sign");
    let ca_pem = std::fs::read(collector.data_dir().join("ca.crt")).expect("ca.crt");
    let trusted = outpost_certs::pem::certificates("ca", &ca_pem).expect("pem").remove(0);
    let key = outpost_certs::pem::private_key("key", req.key_pem.as_bytes()).expect("key");
    Arc::new(outpost_certs::tls::agent_client_config(&trusted, vec![cert.der.into()], key).expect("config"))
}

/// Tries a `Connect` and returns the error text, or `None` if it got a Welcome.
async fn try_connect(addr: &str, tls: Arc<rustls::ClientConfig>) -> Option<String> {
    let mut client = match client(addr, tls).await {
        Ok(c) => c,
        Err(e) => return Some(outpost_agent::dial::chain(&e)),
    };
    let stream = tokio_stream::iter(vec![hello()]);
    match client.connect(stream).await {
        Err(status) => Some(format!("{status:?}")),
        Ok(resp) => match resp.into_inner().message().await {
            Ok(Some(_)) => None,
            Ok(None) => Some("closed".into()),
            Err(status) => Some(format!("{status:?}")),
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_ca_expired_and_revoked_certificates_are_refused() {
    let (c, a) = tokio::task::spawn_blocking(|| collector_with_agent("acme", "hq"))
        .await
        .expect("setup");
    let addr = c.agent_endpoint();
    let creds = outpost_agent::credentials::Credentials::load(a.data_dir()).expect("creds");

    // The genuine agent gets in.
    assert_eq!(try_connect(&addr, agent_tls(a.data_dir())).await, None);

    // Same identity, signed by another CA.
    let foreign = CertificateAuthority::generate("impostor").expect("ca");
    let err = try_connect(
        &addr,
        tls_with_cert(
            &c,
            &foreign,
            &creds.identity,
            Validity::starting_now(Duration::from_secs(3600)),
        ),
    )
    .await
    .expect("foreign CA refused");
    assert!(!err.is_empty());
    c.server().wait_log("agent TLS handshake refused");

    // Our own CA, but expired.
    let ca_dir = c.data_dir();
    let ca = CertificateAuthority::from_pem(
        &std::fs::read_to_string(ca_dir.join("ca.crt")).expect("ca.crt"),
        &std::fs::read_to_string(ca_dir.join("ca.key")).expect("ca.key"),
    )
    .expect("load CA");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let expired = Validity {
        not_before: now - 2 * 86_400,
        not_after: now - 86_400,
    };
    let err = try_connect(&addr, tls_with_cert(&c, &ca, &creds.identity, expired))
        .await
        .expect("expired refused");
    assert!(!err.is_empty());
    wait_for("the expired certificate refusal in the log", || {
        c.server()
            .log()
            .into_iter()
            .find(|l| l.contains("handshake refused") && l.contains("expired"))
    });

    // Our own CA and valid, but for an agent that was never enrolled: the
    // handshake passes (the certificate is genuine) and the stream is refused.
    let ghost = AgentIdentity {
        tenant: TenantId::random(),
        site: SiteId::random(),
        agent: creds.identity.agent,
    };
    let ghost_err = try_connect(
        &addr,
        tls_with_cert(
            &c,
            &ca,
            &AgentIdentity {
                agent: outpost_certs::AgentId::random(),
                ..ghost
            },
            Validity::starting_now(Duration::from_secs(600)),
        ),
    )
    .await
    .expect("unknown agent refused");
    assert!(ghost_err.contains("PermissionDenied"), "{ghost_err}");

    // Revoked: refused at the handshake once the collector reloads its list.
    let id = creds.identity.agent.to_string();
    let out = c.cli(&["agent", "revoke", &id]).ok();
    assert!(out.stdout_text().contains("Revoked"), "{}", out.stdout_text());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let refused_at_handshake = || {
        c.server()
            .log()
            .iter()
            .any(|l| l.contains("handshake refused") && l.contains("Revoked"))
    };
    loop {
        // Until the collector reloads its revocation list, the database check
        // refuses the stream; after that, the handshake itself fails.
        let err = try_connect(&addr, agent_tls(a.data_dir()))
            .await
            .expect("revoked agent refused");
        // The client sees the refusal as an alert, a broken pipe or a closed
        // connection depending on timing; the collector's log says why.
        if !err.contains("PermissionDenied") {
            wait_for("the revocation refusal in the log", || {
                refused_at_handshake().then_some(())
            });
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revoked agent never refused at the handshake"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = c.agents();
    assert_eq!(listed[0]["revoked"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_client_certificate_only_enroll_is_allowed() {
    let (c, _a) = tokio::task::spawn_blocking(|| collector_with_agent("acme", "hq"))
        .await
        .expect("setup");
    let addr = c.agent_endpoint();
    let mut anon = client(&addr, anonymous_tls(c.data_dir()))
        .await
        .expect("TLS without a client certificate");

    let status = anon
        .connect(tokio_stream::iter(vec![hello()]))
        .await
        .expect_err("Connect refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    // The tunnel stream, answered by its own route in front of the service.
    let hello = outpost_proto::agent_v1::TunnelFrame {
        kind: Some(outpost_proto::agent_v1::tunnel_frame::Kind::Hello(
            outpost_proto::agent_v1::TunnelHello {
                tunnel_id: "t".into(),
                secret: vec![1; 32],
            },
        )),
    };
    let status = anon
        .tunnel(tokio_stream::iter(vec![hello]))
        .await
        .expect_err("Tunnel refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let status = anon
        .renew(RenewRequest {
            protocol_version: PROTOCOL_VERSION,
            csr_der: generate_key_and_csr("x").expect("csr").csr_der,
        })
        .await
        .expect_err("Renew refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    // Enroll is reachable (and validates its input).
    let status = anon
        .enroll(EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("malformed enrollment token"), "{status:?}");
    let token = tokio::task::spawn_blocking({
        let dir = c.data_dir().to_owned();
        move || {
            let out = std::process::Command::new(outpost_tests::bin("outpost-collector"))
                .args(["token", "create", "--tenant", "acme", "--site", "hq", "--data-dir"])
                .arg(&dir)
                .output()
                .expect("token");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned()
        }
    })
    .await
    .expect("token");
    let resp = anon
        .enroll(EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            token,
            csr_der: b"not a CSR".to_vec(),
            hostname: "h".into(),
            agent_version: "t".into(),
            previous_certificate_der: vec![],
        })
        .await
        .expect_err("bad CSR");
    assert_eq!(resp.code(), tonic::Code::InvalidArgument, "{resp:?}");
    assert!(resp.message().contains("certificate signing request"), "{resp:?}");
    drop(c);
    let _ = Agent::new();
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_over_mtls_keeps_the_identity() {
    let (c, a) = tokio::task::spawn_blocking(|| collector_with_agent("acme", "hq"))
        .await
        .expect("setup");
    let addr = c.agent_endpoint();
    let before = outpost_agent::credentials::Credentials::load(a.data_dir()).expect("creds");
    let mut cl = client(&addr, agent_tls(a.data_dir())).await.expect("mTLS");
    let req = generate_key_and_csr("renewed").expect("csr");
    let resp = cl
        .renew(RenewRequest {
            protocol_version: PROTOCOL_VERSION,
            csr_der: req.csr_der,
        })
        .await
        .expect("renew")
        .into_inner();
    let leaf = &resp.certificate_chain_der[0];
    assert_eq!(
        AgentIdentity::from_certificate_der(leaf).expect("identity"),
        before.identity
    );
    let validity = outpost_certs::ca::certificate_validity(leaf).expect("validity");
    assert_ne!(
        validity.serial,
        outpost_certs::ca::certificate_validity(before.chain[0].as_ref())
            .expect("v")
            .serial
    );
    // A garbage CSR is refused with a clear status.
    let bad = cl
        .renew(RenewRequest {
            protocol_version: PROTOCOL_VERSION,
            csr_der: vec![1, 2, 3],
        })
        .await
        .expect_err("bad CSR");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
