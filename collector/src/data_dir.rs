//! The collector's data directory.
//!
//! ```text
//! DIR/ca.crt        collector CA certificate (PEM)
//! DIR/ca.key        CA private key (PEM, 0600)
//! DIR/server.pem    agent-port server key, certificate and the CA (PEM, 0600)
//! DIR/outpost.db    SQLite database (+ -wal, -shm) unless --database-url is given
//! DIR/vault.key     the vault's master key (0600), unless OUTPOST_VAULT_KEY_FILE names another file
//! ```
//!
//! The vault key seals device passwords and configuration backups in the
//! database. Keep it out of database backups (or the backups hold everything
//! needed to open them) and back it up separately: without it, the stored
//! passwords and backups cannot be opened.
//!
//! Key and certificate share one file so `cert renew` replaces both in one
//! atomic rename, and `serve`, which re-reads the file when it changes, never
//! sees a new key with an old certificate. (Directories made before this layout
//! hold `server.crt` and `server.key`; they are read when `server.pem` is
//! absent, and `cert renew` writes `server.pem`.)
//!
//! Lifetimes: the CA 10 years, the server certificate 2 years (renewable with
//! `cert renew`, same CA, no agent notices), agent certificates 30 days by
//! default (renewed by the agents themselves).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use outpost_certs::ca::CertificateAuthority;
use outpost_certs::files::{create_private_dir, write_private, write_public};

/// Names the vault key file when it is not `vault.key` in the data directory.
pub const VAULT_KEY_ENV: &str = "OUTPOST_VAULT_KEY_FILE";

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
    /// Where the vault's master key is: `OUTPOST_VAULT_KEY_FILE`, else
    /// `vault.key` here.
    pub fn vault_path(&self) -> PathBuf {
        match std::env::var_os(VAULT_KEY_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => self.path("vault.key"),
        }
    }

    /// Loads the vault's master key, creating it when absent (data
    /// directories made before the vault existed).
    pub fn load_vault(&self) -> Result<outpost_vault::Vault> {
        let path = self.vault_path();
        let (vault, created) = outpost_vault::Vault::load_or_create(&path)
            .with_context(|| format!("loading the vault key {}", path.display()))?;
        if created {
            tracing::info!(path = %path.display(), "vault key created; back it up separately from the database");
        }
        Ok(vault)
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
        self.write_server(&server)?;
        self.load_vault()?;
        Ok(ca)
    }

    fn write_server(&self, server: &outpost_certs::ca::ServerCredentials) -> Result<()> {
        let pem = format!("{}{}", server.key_pem, server.chain_pem);
        write_private(&self.server_file(), pem.as_bytes()).context("writing server.pem")
    }

    /// The file holding the server key and certificate chain.
    pub fn server_file(&self) -> PathBuf {
        self.path(SERVER_FILE)
    }

    /// Issues a new agent-port server certificate from the same CA, for the
    /// names the current one covers plus `extra`, and replaces the current one
    /// atomically. A running `serve` picks it up without a restart.
    pub fn renew_server(&self, extra: &[String]) -> Result<RenewedServer> {
        let ca = self.load_ca()?;
        let mut names = match self.load_server_credentials() {
            Ok((chain, _)) => chain
                .first()
                .map(|c| outpost_certs::ca::certificate_names(c))
                .transpose()?
                .unwrap_or_default(),
            Err(_) => default_server_names(&[]),
        };
        for e in extra {
            if !names.contains(e) {
                names.push(e.clone());
            }
        }
        if names.is_empty() {
            names = default_server_names(&[]);
        }
        let server = ca.issue_server(&names)?;
        self.write_server(&server)?;
        for legacy in ["server.crt", "server.key"] {
            match std::fs::remove_file(self.path(legacy)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing the old {legacy}")),
            }
        }
        let (chain, _) = self.load_server_credentials()?;
        let validity = outpost_certs::ca::certificate_validity(&chain[0])?;
        Ok(RenewedServer {
            names,
            not_after: validity.not_after,
        })
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
        if !self.server_file().exists() && self.path("server.crt").exists() {
            let chain = outpost_certs::pem::certificates("server.crt", self.read("server.crt")?.as_bytes())?;
            let key = outpost_certs::pem::private_key("server.key", self.read("server.key")?.as_bytes())?;
            return Ok((chain, key));
        }
        let pem = self.read(SERVER_FILE)?;
        let chain = outpost_certs::pem::certificates("server.pem", pem.as_bytes())?;
        let key = outpost_certs::pem::private_key("server.pem", pem.as_bytes())?;
        Ok((chain, key))
    }

    /// When the agent-port certificate expires (Unix seconds), and whether that
    /// is within [`SERVER_CERT_WARNING`].
    pub fn server_expiry(&self) -> Result<(i64, bool)> {
        let (chain, _) = self.load_server_credentials()?;
        let not_after = outpost_certs::ca::certificate_validity(&chain[0])?.not_after;
        Ok((not_after, expires_soon(not_after)))
    }
}

/// File name of the server key and chain.
pub const SERVER_FILE: &str = "server.pem";

/// How long before its end the agent-port certificate is warned about.
pub const SERVER_CERT_WARNING: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Whether a certificate ending at `not_after` (Unix seconds) is within the warning period.
pub fn expires_soon(not_after: i64) -> bool {
    not_after - outpost_store::now_ms() / 1000 < SERVER_CERT_WARNING.as_secs() as i64
}

/// The line an operator reads when the agent-port certificate ends soon.
pub fn expiry_warning(dir: &Path, not_after: i64) -> String {
    let days = (not_after - outpost_store::now_ms() / 1000) / 86_400;
    let when = time::OffsetDateTime::from_unix_timestamp(not_after)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| not_after.to_string());
    if days < 0 {
        format!(
            "the agent-port certificate expired on {when}: agents cannot connect; run `outpost-collector cert renew --data-dir {}`",
            dir.display()
        )
    } else {
        format!(
            "the agent-port certificate expires on {when} (in {days} days); run `outpost-collector cert renew --data-dir {}`",
            dir.display()
        )
    }
}

/// What `cert renew` did.
#[derive(Clone, Debug)]
pub struct RenewedServer {
    /// Names the new certificate covers.
    pub names: Vec<String>,
    /// Its end of validity, Unix seconds.
    pub not_after: i64,
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
