//! The agent's identity on disk and the TLS configuration built from it.
//!
//! ```text
//! DIR/ca.crt         the collector CA, pinned at enrollment (PEM)
//! DIR/identity.pem   private key + certificate chain, one file, mode 0600
//! ```
//! Key and certificate live in one file so a renewal replaces both in a single
//! atomic rename: a crash can never pair a new key with an old certificate.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use outpost_certs::AgentIdentity;
use outpost_certs::ca::certificate_validity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// CA file name.
pub const CA_FILE: &str = "ca.crt";
/// Identity file name.
pub const IDENTITY_FILE: &str = "identity.pem";

/// Loaded credentials.
pub struct Credentials {
    /// The collector CA.
    pub ca: CertificateDer<'static>,
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// Who we are.
    pub identity: AgentIdentity,
    /// Validity of the leaf, Unix seconds.
    pub not_before: i64,
    /// Validity of the leaf, Unix seconds.
    pub not_after: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Credential errors.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file is missing or unreadable.
    #[error("cannot read {path}: {source} (has `outpost-agent enroll` been run for this data directory?)")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The contents are invalid.
    #[error(transparent)]
    Cert(#[from] outpost_certs::CertError),
    /// The certificate is valid but not the one expected.
    #[error("unexpected certificate: {0}")]
    Rejected(String),
}

fn read(path: PathBuf) -> Result<Vec<u8>, CredentialsError> {
    std::fs::read(&path).map_err(|source| CredentialsError::Read { path, source })
}

impl Credentials {
    /// Whether this data directory holds an identity.
    pub fn exist(data_dir: &Path) -> bool {
        data_dir.join(IDENTITY_FILE).exists()
    }

    /// Loads `ca.crt` and `identity.pem`.
    pub fn load(data_dir: &Path) -> Result<Self, CredentialsError> {
        let ca_pem = read(data_dir.join(CA_FILE))?;
        let ca = outpost_certs::pem::certificates("ca.crt", &ca_pem)?.remove(0);
        let identity_pem = read(data_dir.join(IDENTITY_FILE))?;
        Self::from_parts(ca, &identity_pem)
    }

    fn from_parts(ca: CertificateDer<'static>, identity_pem: &[u8]) -> Result<Self, CredentialsError> {
        let chain = outpost_certs::pem::certificates("identity.pem", identity_pem)?;
        let key = outpost_certs::pem::private_key("identity.pem", identity_pem)?;
        let identity = AgentIdentity::from_certificate_der(&chain[0])?;
        let validity = certificate_validity(&chain[0])?;
        Ok(Self {
            ca,
            chain,
            key,
            identity,
            not_before: validity.not_before,
            not_after: validity.not_after,
        })
    }

    /// Writes a new identity (key + chain) atomically, and the CA if given, after
    /// checking that the chain is valid for the CA, the key matches the
    /// certificate and `accept` agrees with the identity it names. Nothing is
    /// written unless all of that holds, so what works is never replaced by
    /// something that does not.
    pub fn store(
        data_dir: &Path,
        key_pem: &str,
        chain: &[Vec<u8>],
        ca_der: Option<&[u8]>,
        accept: impl FnOnce(&AgentIdentity) -> Result<(), String>,
    ) -> Result<Self, CredentialsError> {
        let chain_pem = outpost_certs::pem::encode_certificates(chain.iter().map(Vec::as_slice));
        let identity_pem = format!("{key_pem}{chain_pem}");
        let ca = match ca_der {
            Some(der) => CertificateDer::from(der.to_vec()),
            None => outpost_certs::pem::certificates("ca.crt", &read(data_dir.join(CA_FILE))?)?.remove(0),
        };
        let creds = Self::from_parts(ca, identity_pem.as_bytes())?;
        outpost_certs::tls::verify_agent_chain(&creds.ca, &creds.chain)?;
        creds.client_config()?;
        accept(&creds.identity).map_err(CredentialsError::Rejected)?;
        if let Some(der) = ca_der {
            let path = data_dir.join(CA_FILE);
            outpost_certs::files::write_public(&path, outpost_certs::pem::encode_certificates([der]).as_bytes())
                .map_err(|source| CredentialsError::Write { path, source })?;
        }
        let path = data_dir.join(IDENTITY_FILE);
        outpost_certs::files::write_private(&path, identity_pem.as_bytes())
            .map_err(|source| CredentialsError::Write { path, source })?;
        Ok(creds)
    }

    /// The mTLS client configuration.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, CredentialsError> {
        Ok(Arc::new(outpost_certs::tls::agent_client_config(
            &self.ca,
            self.chain.clone(),
            self.key.clone_key(),
        )?))
    }

    /// A CSR signed by this identity's key, for a re-enrollment that proves
    /// this agent held it.
    pub fn csr_with_same_key(&self, common_name: &str) -> Result<outpost_certs::keys::KeyAndCsr, CredentialsError> {
        Ok(outpost_certs::keys::csr_for_key(&self.key, common_name)?)
    }

    /// The CA's fingerprint.
    pub fn ca_fingerprint(&self) -> outpost_certs::Fingerprint {
        outpost_certs::Fingerprint::of_der(&self.ca)
    }

    /// When to renew: two thirds into the certificate's lifetime, Unix seconds.
    pub fn renew_at(&self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use outpost_certs::ca::{CertificateAuthority, Validity};
    use outpost_certs::keys::generate_key_and_csr;
    use outpost_certs::{AgentId, SiteId, TenantId};

    use super::*;

    fn issue(ca: &CertificateAuthority, id: &AgentIdentity) -> (String, Vec<Vec<u8>>) {
        let req = generate_key_and_csr("t").expect("csr");
        let cert = ca
            .sign_agent_csr(&req.csr_der, id, Validity::starting_now(Duration::from_secs(3600)))
            .expect("sign");
        (req.key_pem, vec![cert.der, ca.cert_der().to_vec()])
    }

    #[test]
    fn nothing_is_written_unless_the_new_identity_checks_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("ca").expect("ca");
        let id = AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        };
        let (key, chain) = issue(&ca, &id);
        let stored = Credentials::store(dir.path(), &key, &chain, Some(ca.cert_der()), |_| Ok(())).expect("store");
        assert_eq!(stored.identity, id);
        let before = std::fs::read(dir.path().join(IDENTITY_FILE)).expect("identity");

        // A certificate for someone else is refused and leaves the file alone.
        let other = AgentIdentity {
            agent: AgentId::random(),
            ..id
        };
        let (key2, chain2) = issue(&ca, &other);
        let err = Credentials::store(dir.path(), &key2, &chain2, None, |got| {
            (*got == id).then_some(()).ok_or_else(|| "wrong agent".to_owned())
        });
        assert!(matches!(err, Err(CredentialsError::Rejected(_))));
        // A chain from another CA, or a key that does not match, too.
        let foreign = CertificateAuthority::generate("other").expect("ca");
        let (key3, chain3) = issue(&foreign, &id);
        assert!(Credentials::store(dir.path(), &key3, &chain3, None, |_| Ok(())).is_err());
        assert!(Credentials::store(dir.path(), &key2, &chain, None, |_| Ok(())).is_err());
        assert_eq!(std::fs::read(dir.path().join(IDENTITY_FILE)).expect("identity"), before);
        assert_eq!(Credentials::load(dir.path()).expect("load").identity, id);
    }
}
