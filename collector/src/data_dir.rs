//! The collector's data directory.
//!
//! ```text
//! DIR/ca.crt        collector CA certificate (PEM)
//! DIR/ca.key        CA private key (PEM, 0600)
//! DIR/server.crt    agent-port server certificate followed by the CA (PEM)
//! DIR/server.key    server private key (PEM, 0600)
//! DIR/outpost.db    SQLite database (+ -wal, -shm) unless --database-url is given
//! ```
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use outpost_certs::ca::CertificateAuthority;
use outpost_certs::files::{create_private_dir, write_private, write_public};

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The directory at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    /// Whether `init` has run here.
    pub fn is_initialised(&self) -> bool {
        self.path("ca.key").exists()
    }

    /// Creates the CA and the server certificate for `names`.
    pub fn init(&self, names: &[String]) -> Result<CertificateAuthority> {
        if self.is_initialised() {
            bail!(
                "{} is already initialised (ca.key exists); refusing to replace the CA",
                self.root.display()
            );
        }
        create_private_dir(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        let ca = CertificateAuthority::generate("Outpost collector CA")?;
        let server = ca.issue_server(names)?;
        write_private(&self.path("ca.key"), ca.key_pem().as_bytes()).context("writing ca.key")?;
        write_public(&self.path("ca.crt"), ca.cert_pem().as_bytes()).context("writing ca.crt")?;
        write_private(&self.path("server.key"), server.key_pem.as_bytes()).context("writing server.key")?;
        write_public(&self.path("server.crt"), server.chain_pem.as_bytes()).context("writing server.crt")?;
        Ok(ca)
    }

    fn read(&self, name: &str) -> Result<String> {
        std::fs::read_to_string(self.path(name)).with_context(|| {
            format!(
                "reading {} (has `outpost-collector init --data-dir {}` been run?)",
                self.path(name).display(),
                self.root.display()
            )
        })
    }

    /// Loads the CA.
    pub fn load_ca(&self) -> Result<CertificateAuthority> {
        CertificateAuthority::from_pem(&self.read("ca.crt")?, &self.read("ca.key")?).context("loading the CA")
    }

    /// Loads the server certificate chain and key.
    pub fn load_server_credentials(
        &self,
    ) -> Result<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )> {
        let chain = outpost_certs::pem::certificates("server.crt", self.read("server.crt")?.as_bytes())?;
        let key = outpost_certs::pem::private_key("server.key", self.read("server.key")?.as_bytes())?;
        Ok((chain, key))
    }
}

/// Names the server certificate covers by default, plus `extra`.
pub fn default_server_names(extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Ok(h) = hostname_string() {
        names.push(h);
    }
    for e in extra {
        if !names.contains(e) {
            names.push(e.clone());
        }
    }
    names.dedup();
    names
}

fn hostname_string() -> Result<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .context("no host name")?;
    if h.is_empty() || h == "localhost" {
        bail!("no host name");
    }
    Ok(h)
}
