//! The credentials vault: device passwords and configuration backups are
//! stored sealed, never in clear.
//!
//! Keys:
//! - the **master key** (32 random bytes) lives outside the database, in a
//!   0600 file (`vault.key` in the collector's data directory, or the path in
//!   `OUTPOST_VAULT_KEY_FILE`), so a copy of the database alone opens nothing;
//! - each tenant's key is derived from it with HKDF-SHA-256
//!   (info `outpost vault v1 tenant <tenant id>`), so tenants never share a key;
//! - purpose keys (e.g. the key an agent seals a device's backups with) are
//!   derived from the tenant key the same way, so the agent holds only what one
//!   device needs.
//!
//! Sealed format: `0x01` (version) ‖ 12-byte random nonce ‖ AES-256-GCM
//! ciphertext and tag. The associated data names what the plaintext is (e.g.
//! `device-password:<device id>`), so a sealed value copied onto another row or
//! tenant fails to open instead of decrypting as something else.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

/// Key length of every key here (AES-256).
pub const KEY_LEN: usize = 32;
/// Sealed format version byte.
const VERSION: u8 = 1;
/// First line of a key file, so a wrong file is recognised as such.
const FILE_TAG: &str = "outpost-vault-key-v1";
/// HKDF salt: fixed, as the master key is already uniformly random.
const SALT: &[u8] = b"outpost vault v1";

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The key file could not be read or written.
    #[error("vault key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is not a vault key.
    #[error("vault key file {path} is not a vault key (expected `{FILE_TAG} <64 hex digits>`)")]
    BadKeyFile {
        /// The file.
        path: String,
    },
    /// A sealed value did not open: wrong key, wrong context, or tampered.
    #[error("a sealed value could not be opened (wrong vault key, or the value was altered or moved)")]
    Open,
    /// A sealed value is too short or of an unknown version.
    #[error("a sealed value is malformed")]
    Malformed,
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

/// 32 secret bytes, wiped from memory when dropped.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from raw bytes, e.g. a backup key received from the collector.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    /// The raw bytes, for sending over the mTLS stream.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    fn generate() -> Result<Self, VaultError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| VaultError::Random)?;
        Ok(Self(bytes))
    }

    /// A key derived from this one for `info`.
    fn derive(&self, info: &str) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(&self.0[..]);
        let parts = [info.as_bytes()];
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        // `expand` and `fill` fail only when the output is longer than 255
        // hash lengths; 32 bytes is one.
        prk.expand(&parts, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out[..]))
            .expect("32-byte HKDF output is always possible");
        Self(out)
    }

    /// Seals `plaintext`, binding it to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| VaultError::Malformed)?;
        out.extend_from_slice(&body);
        body.zeroize();
        Ok(out)
    }

    /// Opens what [`Key::seal`] sealed under the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (&version, rest) = sealed.split_first().ok_or(VaultError::Malformed)?;
        if version != VERSION || rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(VaultError::Malformed);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Malformed)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| VaultError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// HMAC-SHA-256 of `data` under this key: equality checks (unchanged
    /// configuration?) without revealing the content.
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0[..]);
        ring::hmac::sign(&key, data).as_ref().to_vec()
    }

    fn aead(&self) -> LessSafeKey {
        // AES-256 takes exactly KEY_LEN bytes.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0[..]).expect("32-byte AES-256 key"))
    }
}

/// The master key, from which every tenant's key is derived.
#[derive(Clone, Debug)]
pub struct Vault {
    master: Key,
}

impl Vault {
    /// A vault with a new random master key (tests, and [`Vault::load_or_create`]).
    pub fn generate() -> Result<Self, VaultError> {
        Ok(Self {
            master: Key::generate()?,
        })
    }

    /// Reads the master key from `path`.
    pub fn load(path: &Path) -> Result<Self, VaultError> {
        let shown = path.display().to_string();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| VaultError::Io {
            path: shown.clone(),
            source,
        })?);
        let bad = || VaultError::BadKeyFile { path: shown.clone() };
        let hex_key = text.trim().strip_prefix(FILE_TAG).ok_or_else(bad)?.trim();
        let bytes = Zeroizing::new(hex::decode(hex_key).map_err(|_| bad())?);
        let master = Key::from_bytes(&bytes).ok_or_else(bad)?;
        Ok(Self { master })
    }

    /// Reads the master key from `path`, creating it (0600) when the file does
    /// not exist. Answers whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), VaultError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let vault = Self::generate()?;
        vault.write(path)?;
        Ok((vault, true))
    }

    /// Writes the master key to `path` (0600, atomic; never through a symlink).
    pub fn write(&self, path: &Path) -> Result<(), VaultError> {
        let text = Zeroizing::new(format!("{FILE_TAG} {}\n", hex::encode(self.master.as_bytes())));
        outpost_certs::files::write_private(path, text.as_bytes()).map_err(|source| VaultError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// A value that identifies the master key without revealing it: stored
    /// with the database so that starting with another key file fails at once
    /// instead of on the first sealed value.
    pub fn key_check(&self) -> String {
        hex::encode(&self.master.derive("outpost vault v1 key check").as_bytes()[..16])
    }

    /// Seals a console user's TOTP secret, bound to the user's id, under a
    /// key of its own (users are not tenant data: a user may belong to many).
    pub fn seal_totp_secret(&self, user_id: &str, secret: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.users_key().seal(&format!("totp-secret:{user_id}"), secret)
    }

    /// Opens what [`Vault::seal_totp_secret`] sealed for the same user.
    pub fn open_totp_secret(&self, user_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.users_key().open(&format!("totp-secret:{user_id}"), sealed)
    }

    fn users_key(&self) -> Key {
        self.master.derive("outpost vault v1 console users")
    }

    /// The key of one tenant.
    pub fn tenant(&self, tenant_id: &str) -> TenantKey {
        TenantKey(self.master.derive(&format!("outpost vault v1 tenant {tenant_id}")))
    }
}

/// One tenant's key.
#[derive(Clone, Debug)]
pub struct TenantKey(Key);

impl TenantKey {
    /// Seals a device's password.
    pub fn seal_device_password(&self, device_id: &str, password: &str) -> Result<Vec<u8>, VaultError> {
        self.0
            .seal(&format!("device-password:{device_id}"), password.as_bytes())
    }

    /// Opens a device's password.
    pub fn open_device_password(&self, device_id: &str, sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        let bytes = self.0.open(&format!("device-password:{device_id}"), sealed)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Malformed)
    }

    /// Seals the RouterOS password of a site's credential profile (what
    /// discovered routers of the site are adopted with).
    pub fn seal_site_password(&self, site_id: &str, password: &str) -> Result<Vec<u8>, VaultError> {
        self.0.seal(&format!("site-password:{site_id}"), password.as_bytes())
    }

    /// Opens a site profile's password.
    pub fn open_site_password(&self, site_id: &str, sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        let bytes = self.0.open(&format!("site-password:{site_id}"), sealed)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Malformed)
    }

    /// A site profile's password sealed again for a device adopted with it.
    pub fn reseal_site_password_for_device(
        &self,
        site_id: &str,
        device_id: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let password = self.open_site_password(site_id, sealed)?;
        self.seal_device_password(device_id, &password)
    }

    /// Seals a discovery job's SNMP credentials (communities, v3 passwords),
    /// in whatever encoding the caller chose.
    pub fn seal_discovery_credentials(&self, job_id: &str, encoded: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.0.seal(&format!("discovery-snmp:{job_id}"), encoded)
    }

    /// Opens a discovery job's SNMP credentials.
    pub fn open_discovery_credentials(&self, job_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.0.open(&format!("discovery-snmp:{job_id}"), sealed)
    }

    /// The key a device's configuration backups are sealed with, from the
    /// agent (which holds it in memory only) to the collector's store.
    pub fn backup_key(&self, device_id: &str) -> Key {
        self.0.derive(&format!("config-backup {device_id}"))
    }
}

/// Associated data of a sealed configuration backup of `device_id`.
pub fn backup_context(device_id: &str) -> String {
    format!("config-backup:{device_id}")
}

/// Associated data of a sealed diff between two backups of `device_id`.
pub fn diff_context(device_id: &str) -> String {
    format!("config-diff:{device_id}")
}

/// Opens a stored configuration version of `device_id` (its export, and its
/// diff against the version before when there is one) as text.
pub fn open_config_version(
    vault: &Vault,
    tenant_id: &str,
    device_id: &str,
    sealed_export: &[u8],
    sealed_diff: Option<&[u8]>,
) -> Result<(String, Option<String>), VaultError> {
    let key = vault.tenant(tenant_id).backup_key(device_id);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let export = key.open(&backup_context(device_id), sealed_export)?;
    let diff = sealed_diff.map(|d| key.open(&diff_context(device_id), d)).transpose()?;
    Ok((text(&export), diff.map(|d| text(&d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_opens_only_with_its_tenant_and_device() {
        let vault = Vault::generate().expect("random");
        let a = vault.tenant("tenant-a");
        let sealed = a.seal_device_password("dev-1", "s3cret").expect("seal");
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cret"),
            "sealed value holds the password in clear"
        );
        assert_eq!(
            a.open_device_password("dev-1", &sealed).expect("open").as_str(),
            "s3cret"
        );
        assert!(matches!(
            a.open_device_password("dev-2", &sealed),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            vault.tenant("tenant-b").open_device_password("dev-1", &sealed),
            Err(VaultError::Open)
        ));
        let other = Vault::generate().expect("random");
        assert!(matches!(
            other.tenant("tenant-a").open_device_password("dev-1", &sealed),
            Err(VaultError::Open)
        ));
    }

    #[test]
    fn site_passwords_reseal_for_a_device_and_snmp_secrets_stay_with_their_job() {
        let vault = Vault::generate().expect("random");
        let a = vault.tenant("tenant-a");
        let site = a.seal_site_password("site-1", "r0uter").expect("seal");
        assert!(matches!(a.open_device_password("site-1", &site), Err(VaultError::Open)));
        assert!(matches!(
            vault.tenant("tenant-b").open_site_password("site-1", &site),
            Err(VaultError::Open)
        ));
        let device = a
            .reseal_site_password_for_device("site-1", "dev-9", &site)
            .expect("reseal");
        assert_eq!(
            a.open_device_password("dev-9", &device).expect("open").as_str(),
            "r0uter"
        );
        assert!(a.reseal_site_password_for_device("site-2", "dev-9", &site).is_err());

        let snmp = a.seal_discovery_credentials("job-1", b"public").expect("seal");
        assert_eq!(
            &a.open_discovery_credentials("job-1", &snmp).expect("open")[..],
            b"public"
        );
        assert!(matches!(
            a.open_discovery_credentials("job-2", &snmp),
            Err(VaultError::Open)
        ));
    }

    #[test]
    fn tampered_or_short_values_are_refused() {
        let key = Vault::generate().expect("random").tenant("t");
        let mut sealed = key.seal_device_password("d", "pw").expect("seal");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(key.open_device_password("d", &sealed), Err(VaultError::Open)));
        for short in [&[][..], &[1u8][..], &[1u8; 20][..], &[2u8; 40][..]] {
            assert!(matches!(
                key.open_device_password("d", short),
                Err(VaultError::Malformed)
            ));
        }
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = Vault::generate().expect("random").tenant("t");
        let one = key.seal_device_password("d", "pw").expect("seal");
        let two = key.seal_device_password("d", "pw").expect("seal");
        assert_ne!(one, two);
    }

    #[test]
    fn derivation_is_stable_and_separates_tenants_and_devices() {
        let vault = Vault::generate().expect("random");
        let k1 = vault.tenant("t").backup_key("d1");
        assert_eq!(k1.as_bytes(), vault.tenant("t").backup_key("d1").as_bytes());
        assert_ne!(k1.as_bytes(), vault.tenant("t").backup_key("d2").as_bytes());
        assert_ne!(k1.as_bytes(), vault.tenant("u").backup_key("d1").as_bytes());
        let sealed = k1
            .seal(&backup_context("d1"), b"/ip address add address=192.0.2.1/24")
            .expect("seal");
        let agent_side = Key::from_bytes(k1.as_bytes()).expect("32 bytes");
        assert_eq!(
            &agent_side.open(&backup_context("d1"), &sealed).expect("open")[..],
            b"/ip address add address=192.0.2.1/24"
        );
        assert_eq!(k1.mac(b"x"), agent_side.mac(b"x"));
        assert_ne!(k1.mac(b"x"), k1.mac(b"y"));
    }

    #[test]
    fn the_key_file_round_trips_is_private_and_recognised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault.key");
        let (vault, created) = Vault::load_or_create(&path).expect("create");
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (again, created) = Vault::load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(vault.key_check(), again.key_check());
        let sealed = vault.tenant("t").seal_device_password("d", "pw").expect("seal");
        assert_eq!(
            again
                .tenant("t")
                .open_device_password("d", &sealed)
                .expect("open")
                .as_str(),
            "pw"
        );
        assert_ne!(vault.key_check(), Vault::generate().expect("random").key_check());

        std::fs::write(&path, "not a key\n").expect("write");
        let error = Vault::load(&path).expect_err("refused");
        assert!(error.to_string().contains("is not a vault key"), "{error}");
        std::fs::write(&path, format!("{FILE_TAG} abcd\n")).expect("write");
        assert!(matches!(Vault::load(&path), Err(VaultError::BadKeyFile { .. })));
    }
}
