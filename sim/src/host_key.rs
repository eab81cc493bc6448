//! A device's SSH host key and the server settings that present it.
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore as _;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server;
use russh::{MethodKind, MethodSet, SshId};
use sha2::{Digest as _, Sha256};

/// Time a refused password takes, so guessing is slow, as on a router.
const AUTH_REJECTION: Duration = Duration::from_millis(200);
/// Idle SSH sessions are closed after this.
const INACTIVITY: Duration = Duration::from_secs(60);

/// A device's SSH server settings with its host key.
#[derive(Debug)]
pub(crate) struct HostKey {
    pub(crate) config: Arc<server::Config>,
    /// SHA-256 of the public key's wire encoding.
    pub(crate) sha256: [u8; 32],
}

/// Why a host key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode an SSH host key: {0}")]
pub struct HostKeyError(String);

/// A fresh ed25519 host key and the server settings that present it.
pub(crate) fn host_key() -> Result<HostKey, HostKeyError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let wire = key.public_key().to_bytes().map_err(|e| HostKeyError(e.to_string()))?;
    let sha256 = Sha256::digest(&wire).into();
    let config = server::Config {
        server_id: SshId::Standard(Cow::Borrowed("SSH-2.0-ROSSSH")),
        methods: MethodSet::from(&[MethodKind::Password][..]),
        auth_rejection_time: AUTH_REJECTION,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        inactivity_timeout: Some(INACTIVITY),
        nodelay: true,
        ..server::Config::default()
    };
    Ok(HostKey {
        config: Arc::new(config),
        sha256,
    })
}
