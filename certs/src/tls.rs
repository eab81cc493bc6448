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
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
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

/// The collector's agent-port configuration.
pub fn agent_port_server_config(
    ca_der: &CertificateDer<'_>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
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
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
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
    Ok(config)
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
