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

    /// Writes a new identity (key + chain) atomically, and the CA if given.
    pub fn store(
        data_dir: &Path,
        key_pem: &str,
        chain: &[Vec<u8>],
        ca_der: Option<&[u8]>,
    ) -> Result<Self, CredentialsError> {
        let chain_pem = outpost_certs::pem::encode_certificates(chain.iter().map(Vec::as_slice));
        let identity_pem = format!("{key_pem}{chain_pem}");
        let ca = match ca_der {
            Some(der) => {
                let path = data_dir.join(CA_FILE);
                outpost_certs::files::write_public(&path, outpost_certs::pem::encode_certificates([der]).as_bytes())
                    .map_err(|source| CredentialsError::Write { path, source })?;
                CertificateDer::from(der.to_vec())
            }
            None => outpost_certs::pem::certificates("ca.crt", &read(data_dir.join(CA_FILE))?)?.remove(0),
        };
        // Validate before replacing what works.
        let creds = Self::from_parts(ca, identity_pem.as_bytes())?;
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

    /// When to renew: two thirds into the certificate's lifetime, Unix seconds.
    pub fn renew_at(&self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}
