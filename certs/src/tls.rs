//! rustls configurations for the agent port.
//!
//! * Collector side: TLS 1.3 only; a client certificate is *requested* but not
//!   required at the handshake, because `Enroll` must work without one. A
//!   certificate that is presented must chain to the collector CA, be within its
//!   validity, carry an Outpost identity and not be revoked, or the handshake
//!   fails. The gRPC layer then refuses everything but `Enroll` on connections
//!   without an identity.
//! * Agent side, first contact: the server chain is accepted only if it contains
//!   the CA whose SHA-256 the enrollment token carries and the server certificate
//!   verifies against that CA for the dialled name.
//! * Agent side, afterwards: the stored CA is the only trust anchor.
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::{AgentId, AgentIdentity, CertError, Fingerprint};

/// The ALPN protocol gRPC runs on.
const ALPN_H2: &[u8] = b"h2";

/// The process-wide crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_der: &CertificateDer<'_>) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca_der.clone().into_owned())?;
    Ok(roots)
}

/// The set of revoked agents, shared between the store (which fills it) and the
/// TLS verifier (which consults it on every handshake).
#[derive(Debug, Default)]
pub struct RevokedAgents {
    set: RwLock<HashSet<AgentId>>,
}

impl RevokedAgents {
    /// Replaces the whole set.
    pub fn replace(&self, agents: HashSet<AgentId>) {
        // A poisoned lock only means a writer panicked mid-replace of a HashSet;
        // the data is still a valid set, so keep using it.
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = agents;
    }

    /// Adds one agent.
    pub fn insert(&self, agent: AgentId) {
        self.set.write().unwrap_or_else(|e| e.into_inner()).insert(agent);
    }

    /// Whether `agent` is revoked.
    pub fn contains(&self, agent: &AgentId) -> bool {
        self.set.read().unwrap_or_else(|e| e.into_inner()).contains(agent)
    }
}

/// Chain verification by webpki, then identity and revocation.
struct AgentCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<RevokedAgents>,
}

impl fmt::Debug for AgentCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCertVerifier").finish_non_exhaustive()
    }
}

impl ClientCertVerifier for AgentCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let identity =
            AgentIdentity::from_certificate_der(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        if self.revoked.contains(&identity.agent) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The agent port's server certificate, replaceable while serving: a renewed
/// certificate is checked (issued by the collector CA, key matching, not
/// expired) before it replaces the current one, so a bad file never takes the
/// port down; until then the old certificate keeps being served.
pub struct ServerCertificate {
    current: RwLock<(Arc<CertifiedKey>, i64)>,
    ca: CertificateDer<'static>,
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("not_after", &self.not_after())
            .finish_non_exhaustive()
    }
}

impl ServerCertificate {
    /// Checks and holds `chain` (leaf first) and `key`, issued by `ca_der`.
    pub fn new(
        ca_der: &CertificateDer<'_>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, CertError> {
        let ca = ca_der.clone().into_owned();
        let checked = Self::check(&ca, chain, key)?;
        Ok(Self {
            current: RwLock::new(checked),
            ca,
        })
    }

    fn check(
        ca: &CertificateDer<'_>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(Arc<CertifiedKey>, i64), CertError> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let leaf = chain
            .first()
            .ok_or_else(|| CertError::InvalidCertificate("empty server certificate chain".into()))?;
        let (_, leaf_cert) =
            X509Certificate::from_der(leaf).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
        let (_, ca_cert) = X509Certificate::from_der(ca).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
        leaf_cert.verify_signature(Some(ca_cert.public_key())).map_err(|e| {
            CertError::InvalidCertificate(format!(
                "the server certificate was not issued by the collector CA: {e}"
            ))
        })?;
        let not_after = leaf_cert.validity().not_after.timestamp();
        if not_after <= UnixTime::now().as_secs() as i64 {
            return Err(CertError::InvalidCertificate(
                "the server certificate has expired".into(),
            ));
        }
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertError::InvalidCertificate(format!("server key: {e}")))?;
        let certified = CertifiedKey::new(chain, signing_key);
        certified
            .keys_match()
            .map_err(|e| CertError::InvalidCertificate(format!("server key does not match the certificate: {e}")))?;
        Ok((Arc::new(certified), not_after))
    }

    /// Replaces the served certificate, after the same checks as [`Self::new`].
    pub fn replace(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<i64, CertError> {
        let checked = Self::check(&self.ca, chain, key)?;
        let not_after = checked.1;
        // A poisoned lock only means a writer panicked between whole-value stores.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = checked;
        Ok(not_after)
    }

    /// End of validity of the served certificate, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).1
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).0.clone())
    }
}

/// The collector's agent-port configuration.
pub fn agent_port_server_config(
    ca_der: &CertificateDer<'_>,
    certificate: Arc<ServerCertificate>,
    revoked: Arc<RevokedAgents>,
) -> Result<ServerConfig, CertError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_der)?), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let verifier = Arc::new(AgentCertVerifier { inner, revoked });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // No resumption: a resumed session skips the client verifier, and with it
    // the revocation and expiry checks. Agents reconnect rarely; a full
    // handshake each time costs nothing worth that risk.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// Accepts a server whose chain includes the pinned CA and verifies against it.
#[derive(Debug)]
struct PinnedCaVerifier {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| Fingerprint::of_der(c) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the collector did not present the CA pinned by the enrollment token ({:?})",
                    self.fingerprint
                ))
            })?;
        let roots = roots(ca).map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let others: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .filter(|c| Fingerprint::of_der(c) != self.fingerprint)
            .cloned()
            .collect();
        verifier.verify_server_cert(end_entity, &others, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// First contact: no client certificate, the collector pinned by fingerprint.
pub fn enrollment_client_config(ca_fingerprint: Fingerprint) -> Result<ClientConfig, CertError> {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier {
            fingerprint: ca_fingerprint,
            provider,
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// An enrolled agent: trusts only the stored CA, presents its own certificate.
pub fn agent_client_config(
    ca_der: &CertificateDer<'_>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, CertError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_der)?)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // The collector refuses resumption anyway (see `agent_port_server_config`).
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// Checks that `chain` is a client certificate chain issued by the CA
/// `ca_der`, with the usages the collector checks at the handshake.
///
/// Checked as of the leaf's own start of validity, not this host's clock: the
/// agent's clock may be off (the collector's decides at every handshake), and a
/// certificate just issued must not be thrown away because of it.
pub fn verify_agent_chain(ca_der: &CertificateDer<'_>, chain: &[CertificateDer<'static>]) -> Result<(), CertError> {
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| CertError::InvalidCertificate("empty certificate chain".into()))?;
    let validity = crate::ca::certificate_validity(leaf)?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(validity.not_before.saturating_add(1)).unwrap_or(0),
    ));
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_der)?), provider()).build()?;
    verifier.verify_client_cert(leaf, intermediates, at)?;
    Ok(())
}

/// Checks that `leaf` was issued by the CA `ca_der` as an agent certificate,
/// whatever the time: a re-enrolling agent whose certificate expired while it
/// was offline may still prove who it was.
pub fn verify_agent_certificate_issued(ca_der: &CertificateDer<'_>, leaf: &[u8]) -> Result<(), CertError> {
    verify_agent_chain(ca_der, &[CertificateDer::from(leaf.to_vec())])
}

/// A client that trusts the CA but presents no certificate (tests, `Enroll` after pinning).
pub fn anonymous_client_config(ca_der: &CertificateDer<'_>) -> Result<ClientConfig, CertError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_der)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls::{ClientConnection, ServerConnection};

    use super::*;
    use crate::ca::{CertificateAuthority, Validity};
    use crate::keys::generate_key_and_csr;
    use crate::{AgentId, SiteId, TenantId};

    #[derive(Debug, PartialEq)]
    enum Side {
        Client,
        Server,
    }

    /// Runs a handshake in memory and says which side failed.
    fn handshake(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
    ) -> Result<(ClientConnection, ServerConnection), (Side, rustls::Error)> {
        let name = ServerName::try_from("localhost").expect("name");
        let mut c = ClientConnection::new(client, name).map_err(|e| (Side::Client, e))?;
        let mut s = ServerConnection::new(server).map_err(|e| (Side::Server, e))?;
        for _ in 0..20 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).expect("client write");
            s.read_tls(&mut &buf[..]).expect("server read");
            s.process_new_packets().map_err(|e| (Side::Server, e))?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).expect("server write");
            c.read_tls(&mut &buf[..]).expect("client read");
            c.process_new_packets().map_err(|e| (Side::Client, e))?;
            if !c.is_handshaking() && !s.is_handshaking() {
                // TLS 1.3: the server learns of a bad client certificate only
                // from the client's last flight, which the loop above delivered.
                return Ok((c, s));
            }
        }
        panic!("handshake did not finish");
    }

    struct Pki {
        ca: CertificateAuthority,
        server: Arc<ServerConfig>,
        revoked: Arc<RevokedAgents>,
    }

    fn pki() -> Pki {
        let ca = CertificateAuthority::generate("test CA").expect("ca");
        let creds = ca.issue_server(&["localhost".into()]).expect("server cert");
        let chain = crate::pem::certificates("chain", creds.chain_pem.as_bytes()).expect("chain");
        let key = crate::pem::private_key("key", creds.key_pem.as_bytes()).expect("key");
        let revoked = Arc::new(RevokedAgents::default());
        let cert = Arc::new(ServerCertificate::new(ca.cert_der(), chain, key).expect("server certificate"));
        let server = Arc::new(agent_port_server_config(ca.cert_der(), cert, revoked.clone()).expect("server"));
        Pki { ca, server, revoked }
    }

    #[test]
    fn a_renewed_server_certificate_is_served_after_checks() {
        let ca = CertificateAuthority::generate("test CA").expect("ca");
        let load = |creds: &crate::ca::ServerCredentials| {
            (
                crate::pem::certificates("chain", creds.chain_pem.as_bytes()).expect("chain"),
                crate::pem::private_key("key", creds.key_pem.as_bytes()).expect("key"),
            )
        };
        let (chain, key) = load(&ca.issue_server(&["localhost".into()]).expect("server"));
        let cert = ServerCertificate::new(ca.cert_der(), chain.clone(), key.clone_key()).expect("first");
        let first = cert.not_after();
        // Another CA's certificate, or a key that does not match: refused, the old one stays.
        let other = CertificateAuthority::generate("other CA").expect("ca");
        let (foreign_chain, foreign_key) = load(&other.issue_server(&["localhost".into()]).expect("server"));
        assert!(cert.replace(foreign_chain, foreign_key).is_err());
        let (new_chain, new_key) = load(&ca.issue_server(&["localhost".into()]).expect("server"));
        assert!(cert.replace(new_chain.clone(), key.clone_key()).is_err());
        assert_eq!(cert.not_after(), first);
        // A good one replaces it, and new handshakes see it.
        cert.replace(new_chain.clone(), new_key).expect("renewed");
        let hello_cert = |cert: &ServerCertificate| cert.current.read().expect("lock").0.cert[0].clone();
        assert_eq!(hello_cert(&cert), new_chain[0]);
    }

    fn agent(pki: &Pki, issuer: &CertificateAuthority, validity: Validity) -> (AgentIdentity, Arc<ClientConfig>) {
        let id = AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        };
        let req = generate_key_and_csr("agent").expect("csr");
        let cert = issuer.sign_agent_csr(&req.csr_der, &id, validity).expect("sign");
        let key = crate::pem::private_key("key", req.key_pem.as_bytes()).expect("key");
        let chain = vec![CertificateDer::from(cert.der)];
        let config = agent_client_config(pki.ca.cert_der(), chain, key).expect("client");
        (id, Arc::new(config))
    }

    fn hour() -> Validity {
        Validity::starting_now(Duration::from_secs(3600))
    }

    #[test]
    fn a_valid_agent_gets_in_and_is_identified() {
        let p = pki();
        let (id, client) = agent(&p, &p.ca, hour());
        let (_, s) = handshake(client, p.server.clone()).expect("handshake");
        let cert = s
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("client certificate");
        assert_eq!(AgentIdentity::from_certificate_der(cert).expect("identity"), id);
    }

    #[test]
    fn foreign_expired_and_revoked_certificates_fail_on_the_server() {
        let p = pki();
        let other = CertificateAuthority::generate("other").expect("ca");
        let (_, foreign) = agent(&p, &other, hour());
        assert!(matches!(handshake(foreign, p.server.clone()), Err((Side::Server, _))));

        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (_, expired) = agent(
            &p,
            &p.ca,
            Validity {
                not_before: now - 7200,
                not_after: now - 3600,
            },
        );
        let err = handshake(expired, p.server.clone()).expect_err("expired");
        assert_eq!(err.0, Side::Server);
        assert!(err.1.to_string().contains("expired"), "{}", err.1);

        let (id, client) = agent(&p, &p.ca, hour());
        handshake(client.clone(), p.server.clone()).expect("before revocation");
        p.revoked.insert(id.agent);
        let err = handshake(client, p.server.clone()).expect_err("revoked");
        assert_eq!(
            err,
            (
                Side::Server,
                rustls::Error::InvalidCertificate(CertificateError::Revoked)
            )
        );
    }

    #[test]
    fn no_client_certificate_is_allowed_but_anonymous() {
        let p = pki();
        let client = Arc::new(anonymous_client_config(p.ca.cert_der()).expect("client"));
        let (_, s) = handshake(client, p.server.clone()).expect("anonymous handshake");
        assert!(s.peer_certificates().is_none());
    }

    #[test]
    fn sessions_are_never_resumed() {
        let p = pki();
        let (_, client) = agent(&p, &p.ca, hour());
        for _ in 0..3 {
            let (c, _) = handshake(client.clone(), p.server.clone()).expect("handshake");
            assert_eq!(c.handshake_kind(), Some(rustls::HandshakeKind::Full));
        }
    }

    #[test]
    fn enrollment_pins_the_ca_by_fingerprint() {
        let p = pki();
        let pinned = Arc::new(enrollment_client_config(p.ca.fingerprint()).expect("client"));
        handshake(pinned, p.server.clone()).expect("pinned CA accepted");
        let other = CertificateAuthority::generate("other").expect("ca");
        let wrong = Arc::new(enrollment_client_config(other.fingerprint()).expect("client"));
        let err = handshake(wrong, p.server.clone()).expect_err("wrong pin");
        assert_eq!(err.0, Side::Client);
        assert!(err.1.to_string().contains("pinned"), "{}", err.1);
    }

    #[test]
    fn chains_are_verified_before_use() {
        let p = pki();
        let req = generate_key_and_csr("agent").expect("csr");
        let id = AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        };
        let good = p.ca.sign_agent_csr(&req.csr_der, &id, hour()).expect("sign");
        verify_agent_chain(p.ca.cert_der(), &[good.der.into()]).expect("valid chain");
        let other = CertificateAuthority::generate("other").expect("ca");
        let bad = other.sign_agent_csr(&req.csr_der, &id, hour()).expect("sign");
        assert!(verify_agent_chain(p.ca.cert_der(), &[bad.der.into()]).is_err());
        assert!(verify_agent_chain(p.ca.cert_der(), &[]).is_err());
    }
}
