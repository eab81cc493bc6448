//! API-SSL against a self-signed loopback server: trust on first use, then
//! pinning; and what a router without a certificate looks like.

mod support;

use std::sync::Arc;

use outpost_routeros::{Client, ClientConfig, Error, ErrorKind, Fingerprint};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use support::Peer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

struct Router {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl Router {
    fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["router.lan".to_owned()]).expect("rcgen makes a cert");
        Self {
            cert: made.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()).into(),
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::from(<[u8; 32]>::from(Sha256::digest(self.cert.as_ref())))
    }

    /// Serves one TLS connection on loopback (TLS 1.2 only if `tls12_only`)
    /// and accepts the login if the handshake succeeds.
    async fn serve_once(&self, tls12_only: bool) -> u16 {
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("ring supports these versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .expect("rcgen's key matches its cert");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let port = listener.local_addr().expect("bound").port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            // A refused handshake is what some tests want.
            if let Ok(tls) = acceptor.accept(tcp).await {
                let mut peer = Peer::new(tls);
                peer.accept_login("admin", "s3cret").await;
                // Hold the session open until the client goes.
                let _ = peer.conn.read_sentence().await;
            }
        });
        port
    }
}

fn config(port: u16, pin: Option<Fingerprint>) -> ClientConfig {
    ClientConfig {
        port,
        ..ClientConfig::tls("127.0.0.1", "admin", "s3cret", pin)
    }
}

#[tokio::test]
async fn first_use_reports_the_fingerprint_and_the_pin_then_holds() {
    let router = Router::new();

    let port = router.serve_once(false).await;
    let (_client, info) = Client::connect(config(port, None)).await.expect("first use");
    assert_eq!(info.tls_fingerprint, Some(router.fingerprint()));

    let port = router.serve_once(true).await;
    let (_client, info) = Client::connect(config(port, Some(router.fingerprint())))
        .await
        .expect("pinned, over TLS 1.2");
    assert_eq!(info.tls_fingerprint, Some(router.fingerprint()));

    let other = Fingerprint::from([7u8; 32]);
    let port = router.serve_once(false).await;
    let err = Client::connect(config(port, Some(other))).await.expect_err("wrong pin");
    match &err {
        Error::PinMismatch { expected, presented } => {
            assert_eq!(*expected, other);
            assert_eq!(*presented, router.fingerprint());
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::TlsPinMismatch);
}

#[tokio::test]
async fn a_router_without_a_certificate_is_explained() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let port = listener.local_addr().expect("bound").port();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut hello = [0u8; 512];
        let _ = tcp.read(&mut hello).await;
        // What RouterOS without a certificate answers a client offering no
        // anonymous suites: a fatal handshake_failure alert (TLS record 0x15).
        let _ = tcp.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).await;
    });
    let err = Client::connect(config(port, None)).await.expect_err("no common suite");
    assert!(matches!(err, Error::AnonymousTlsUnsupported), "{err:?}");
    assert!(err.to_string().contains("create a certificate on the router"));
}
