//! The console port's TLS: its rustls configuration and an operator-supplied
//! certificate that is picked up again when its files change.
//!
//! By default the console serves the agent port's server certificate (the
//! same [`ServerCertificate`](outpost_certs::tls::ServerCertificate), issued by
//! the collector CA for the names given at `init`, reloaded after `cert
//! renew`). With `--console-cert`/`--console-key` it serves those files
//! instead: they are checked (the key matches, not expired) before they
//! replace what is served, so a bad replacement is logged and the previous
//! certificate kept.
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// ALPN protocols, preferred first: gRPC clients need `h2`.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// How often the certificate files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The files do not hold a usable certificate and key.
    #[error("{0}")]
    Invalid(String),
}

/// The console's rustls configuration, serving what `certificate` resolves.
pub fn server_config(certificate: Arc<dyn ResolvesServerCert>) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(outpost_certs::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A certificate chain and key from PEM files, replaceable while serving.
#[derive(Debug)]
pub struct FileCertificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl FileCertificate {
    /// Loads `cert` (the chain, leaf first) and `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, CertificateError> {
        let current = load(cert, key)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(current),
        })
    }

    /// Reads the files again and serves them if they are usable.
    pub fn reload(&self) -> Result<(), CertificateError> {
        let fresh = load(&self.cert, &self.key)?;
        // A poisoned lock only means a writer panicked between whole-value stores.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Checks the files every few seconds and reloads them when either
    /// changed, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let stamp = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let stamps = || -> (Option<SystemTime>, Option<SystemTime>) { (stamp(&self.cert), stamp(&self.key)) };
        let mut seen = stamps();
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = stamps();
            if now == seen {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cert = %self.cert.display(), key = %self.key.display(), "console certificate reloaded")
                }
                // Replacing two files is not atomic: a new certificate next to the
                // old key fails here, and the key's change a moment later succeeds.
                Err(error) => tracing::error!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    %error,
                    "the changed console certificate is not usable; still serving the previous one"
                ),
            }
        }
    }
}

impl ResolvesServerCert for FileCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertificateError> {
    std::fs::read(path).map_err(|source| CertificateError::Read {
        path: path.to_owned(),
        source,
    })
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertificateError> {
    let invalid =
        |what: &Path, e: &dyn std::fmt::Display| CertificateError::Invalid(format!("{}: {e}", what.display()));
    let chain =
        outpost_certs::pem::certificates("the console certificate", &read(cert)?).map_err(|e| invalid(cert, &e))?;
    let private = outpost_certs::pem::private_key("the console key", &read(key)?).map_err(|e| invalid(key, &e))?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertificateError::Invalid(format!("{}: no certificate", cert.display())))?;
    let validity = outpost_certs::ca::certificate_validity(leaf).map_err(|e| invalid(cert, &e))?;
    if validity.not_after <= outpost_store::now_ms() / 1000 {
        return Err(CertificateError::Invalid(format!(
            "{}: the certificate has expired",
            cert.display()
        )));
    }
    let signing_key = outpost_certs::tls::provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| invalid(key, &e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        CertificateError::Invalid(format!(
            "{} does not match the certificate in {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
        let ca = outpost_certs::ca::CertificateAuthority::generate("test CA").expect("CA");
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let server = ca.issue_server(&names).expect("server certificate");
        let (cert, key) = (dir.join("console.crt"), dir.join("console.key"));
        std::fs::write(&cert, &server.chain_pem).expect("write cert");
        std::fs::write(&key, &server.key_pem).expect("write key");
        (cert, key)
    }

    fn served_leaf(c: &FileCertificate) -> Vec<u8> {
        c.current.read().expect("lock").cert[0].to_vec()
    }

    #[test]
    fn a_bad_replacement_keeps_the_previous_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = write_pair(dir.path(), &["localhost"]);
        let c = FileCertificate::load(&cert, &key).expect("load");
        let first = served_leaf(&c);

        std::fs::write(&cert, "not a certificate").expect("write");
        assert!(c.reload().is_err());
        assert_eq!(served_leaf(&c), first);

        // A certificate whose key is another one's.
        let other = tempfile::tempdir().expect("tempdir");
        let (other_cert, _) = write_pair(other.path(), &["localhost"]);
        std::fs::copy(&other_cert, &cert).expect("copy");
        let error = c.reload().expect_err("mismatched key");
        assert!(error.to_string().contains("does not match"), "{error}");
        assert_eq!(served_leaf(&c), first);

        // A good pair replaces it.
        write_pair(dir.path(), &["localhost"]);
        c.reload().expect("reload");
        assert_ne!(served_leaf(&c), first);
    }

    #[test]
    fn missing_files_are_named() {
        let error = FileCertificate::load(Path::new("/nonexistent/c.pem"), Path::new("/nonexistent/k.pem"))
            .expect_err("missing");
        assert!(error.to_string().contains("/nonexistent/c.pem"), "{error}");
    }
}
