//! Where `outpost login` keeps what later commands need: the collector's
//! address, the fingerprint of its CA (every connection pins it), and the
//! bearer token (an API token, or the session a password sign-in opened).
//! One file, 0600, in the user's configuration directory, written atomically.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The saved sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Credentials {
    /// The collector's console port, `host:port`.
    pub(crate) collector: String,
    /// SHA-256 of the collector CA's certificate, hex.
    pub(crate) ca_fingerprint: String,
    /// `api_token` or `session`.
    pub(crate) kind: String,
    /// Who signed in (for `whoami` without a call, and messages).
    pub(crate) username: String,
    /// The bearer token.
    pub(crate) token: String,
}

/// The directory: `$OUTPOST_CONFIG_DIR`, else the platform's configuration
/// directory (`$XDG_CONFIG_HOME/outpost`, `~/.config/outpost`,
/// `%APPDATA%\Outpost`).
pub(crate) fn dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("OUTPOST_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if cfg!(windows) {
        if let Some(d) = std::env::var_os("APPDATA") {
            return Ok(PathBuf::from(d).join("Outpost"));
        }
    } else if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("outpost"));
    } else if let Some(home) = std::env::var_os("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("outpost"));
    }
    bail!("cannot tell where to keep credentials: set OUTPOST_CONFIG_DIR")
}

fn file(dir: &Path) -> PathBuf {
    dir.join("credentials.toml")
}

/// Saves `c` (0600, atomic replace).
pub(crate) fn save(dir: &Path, c: &Credentials) -> Result<PathBuf> {
    outpost_certs::files::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = file(dir);
    let text = toml::to_string(c).context("encoding the credentials")?;
    outpost_certs::files::write_private(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The saved sign-in, or a clear "log in first".
pub(crate) fn load(dir: &Path) -> Result<Credentials> {
    let path = file(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("not logged in: run `outpost login HOST:PORT --ca-fingerprint sha256:…` first")
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("{} is not a valid credentials file; log in again", path.display()))
}

/// Forgets the saved sign-in; true if there was one.
pub(crate) fn remove(dir: &Path) -> Result<bool> {
    match std::fs::remove_file(file(dir)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).context("removing the credentials file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_are_private_and_read_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("outpost");
        let c = Credentials {
            collector: "127.0.0.1:8443".into(),
            ca_fingerprint: "ab".repeat(32),
            kind: "api_token".into(),
            username: "ops".into(),
            token: "outpost_x".into(),
        };
        let path = save(&dir, &c).expect("save");
        assert_eq!(load(&dir).expect("load"), c);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove(&dir).expect("remove"));
        let err = load(&dir).expect_err("gone").to_string();
        assert!(err.contains("not logged in"), "{err}");
        std::fs::write(file(&dir), "collector = 1").expect("write");
        assert!(
            load(&dir)
                .expect_err("bad")
                .to_string()
                .contains("not a valid credentials file")
        );
    }
}
