//! Helpers for tests that speak raw RouterOS API sentences to a simulated
//! fleet through the shared `Connection` codec (no client library).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use outpost_routeros::connection::Connection;
use outpost_sim::{Fleet, FleetConfig, RosMix};
use tokio::net::TcpStream;

pub type Sentence = Vec<String>;
pub type Conn<S = TcpStream> = Connection<S>;

/// A fleet on its own addresses; port 0 so tests never collide on ports.
pub async fn fleet(first: [u8; 4], devices: usize, ros: RosMix) -> Fleet {
    Fleet::start(FleetConfig {
        devices,
        first_ip: Ipv4Addr::from(first),
        ros,
        seed: 42,
        api_port: 0,
        api_ssl_port: 0,
        ssh_port: 0,
        ..FleetConfig::default()
    })
    .await
    .expect("fleet starts")
}

pub async fn connect(addr: SocketAddr) -> Conn {
    Connection::new(TcpStream::connect(addr).await.expect("connect"))
}

pub async fn send<S>(c: &mut Conn<S>, words: &[&str])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    c.write_sentence(words).await.expect("write");
}

pub async fn read<S>(c: &mut Conn<S>) -> Option<Sentence>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let words = tokio::time::timeout(Duration::from_secs(10), c.read_sentence())
        .await
        .expect("a reply within 10 s")
        .ok()??;
    Some(
        words
            .into_iter()
            .map(|w| String::from_utf8(w).expect("utf-8"))
            .collect(),
    )
}

/// Sends a command and reads every sentence up to and including `!done`
/// (or `!fatal`).
pub async fn call<S>(c: &mut Conn<S>, words: &[&str]) -> Vec<Sentence>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    send(c, words).await;
    let mut out = Vec::new();
    while let Some(s) = read(c).await {
        let end = s[0] == "!done" || s[0] == "!fatal";
        out.push(s);
        if end {
            break;
        }
    }
    out
}

pub async fn login<S>(c: &mut Conn<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let r = call(c, &["/login", "=name=admin", "=password=admin"]).await;
    assert_eq!(r, vec![vec!["!done".to_owned()]], "login");
}

pub async fn logged_in(addr: SocketAddr) -> Conn {
    let mut c = connect(addr).await;
    login(&mut c).await;
    c
}

/// `=name=value` words of a sentence as a map.
pub fn attrs(s: &Sentence) -> HashMap<String, String> {
    s.iter()
        .skip(1)
        .filter_map(|w| w.strip_prefix('='))
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The `!re` rows of a reply as maps.
pub fn rows(reply: &[Sentence]) -> Vec<HashMap<String, String>> {
    reply.iter().filter(|s| s[0] == "!re").map(attrs).collect()
}

pub fn tag_of(s: &Sentence) -> Option<&str> {
    s.iter().find_map(|w| w.strip_prefix(".tag="))
}

/// A TLS client that accepts exactly one certificate (pinning), so the
/// test checks the device serves the certificate it says it has.
pub fn pinned_tls(der: Vec<u8>) -> tokio_rustls::TlsConnector {
    pinned_tls_with(der, &[&rustls::version::TLS12, &rustls::version::TLS13])
}

/// [`pinned_tls`] limited to some TLS versions.
pub fn pinned_tls_with(
    der: Vec<u8>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct Pinned(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if end_entity.as_ref() == self.0.as_slice() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General("certificate is not the pinned one".into()))
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.1.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.1.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.1.signature_verification_algorithms.supported_schemes()
        }
    }
    pinned_tls_versions(der, versions, |der, p| Arc::new(Pinned(der, p)))
}

fn pinned_tls_versions(
    der: Vec<u8>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    verifier: impl FnOnce(
        Vec<u8>,
        Arc<rustls::crypto::CryptoProvider>,
    ) -> Arc<dyn rustls::client::danger::ServerCertVerifier>,
) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier(der, provider))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Waits until `f` holds, up to five seconds.
pub async fn eventually(mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 5 s");
}
