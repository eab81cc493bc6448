//! What we present to an SNMP agent: a v2c community or an SNMPv3 user with
//! its security level, protocols and passwords.

use std::fmt;
use std::str::FromStr;

use snmp2::v3;

/// Shortest password RFC 3414 (§11.2) and net-snmp accept; a shorter one
/// cannot match any agent's user, and an empty one cannot be localised.
pub const MIN_PASSWORD_LEN: usize = 8;

/// SNMP credentials. `Debug` hides the community and passwords.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// SNMPv2c with a community string.
    V2c {
        /// The community.
        community: String,
    },
    /// SNMPv3 with the user-based security model.
    V3 {
        /// The user name.
        user: String,
        /// Security level with its protocols and passwords.
        security: V3Security,
    },
}

/// An SNMPv3 security level with what it needs; privacy without
/// authentication does not exist in SNMPv3, so it cannot be expressed.
#[derive(Clone, PartialEq, Eq)]
pub enum V3Security {
    /// No authentication, no privacy.
    NoAuthNoPriv,
    /// Signed, not encrypted.
    AuthNoPriv {
        /// Digest algorithm.
        auth: AuthProtocol,
        /// Authentication password.
        auth_password: String,
    },
    /// Signed and encrypted.
    AuthPriv {
        /// Digest algorithm.
        auth: AuthProtocol,
        /// Authentication password.
        auth_password: String,
        /// Cipher.
        privacy: PrivProtocol,
        /// Privacy password.
        priv_password: String,
    },
}

/// The SNMPv3 security level, without secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityLevel {
    /// No authentication, no privacy.
    NoAuthNoPriv,
    /// Authentication only.
    AuthNoPriv,
    /// Authentication and privacy.
    AuthPriv,
}

/// SNMPv3 authentication protocol. SHA-224 and longer are RFC 7860's
/// HMAC-SHA-2 protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// HMAC-MD5-96.
    Md5,
    /// HMAC-SHA-96 (SHA-1), what net-snmp calls `SHA`.
    Sha1,
    /// HMAC-SHA-224.
    Sha224,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

/// SNMPv3 privacy protocol.
///
/// AES-192 and AES-256 need a longer key than MD5 and SHA-1 (and, for
/// AES-256, SHA-224) produce; vendors disagree on how to extend it. The
/// plain variants use Blumenthal's draft, as net-snmp's `AES-192`/`AES-256`
/// do; the `Reeder` ones use Reeder's draft, Cisco's `aes 192`/`aes 256`
/// (net-snmp's `AES-192-C`/`AES-256-C`). With a long enough hash the two
/// are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    /// CBC-DES.
    Des,
    /// CFB128-AES-128 (RFC 3826), what net-snmp calls `AES`.
    Aes128,
    /// CFB128-AES-192, key extended after Blumenthal.
    Aes192,
    /// CFB128-AES-256, key extended after Blumenthal.
    Aes256,
    /// CFB128-AES-192, key extended after Reeder.
    Aes192Reeder,
    /// CFB128-AES-256, key extended after Reeder.
    Aes256Reeder,
}

/// Credentials that cannot work, whatever the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// A password shorter than [`MIN_PASSWORD_LEN`].
    #[error("the SNMPv3 {which} password of user {user:?} is shorter than {MIN_PASSWORD_LEN} characters")]
    PasswordTooShort {
        /// `authentication` or `privacy`.
        which: &'static str,
        /// The user.
        user: String,
    },
    /// An empty user name or community.
    #[error("empty SNMP {0}")]
    Empty(&'static str),
    /// A protocol name that [`FromStr`] does not know.
    #[error("unknown SNMPv3 {kind} protocol {name:?} (known: {known})")]
    UnknownProtocol {
        /// `authentication` or `privacy`.
        kind: &'static str,
        /// What was given.
        name: String,
        /// The accepted names.
        known: &'static str,
    },
}

impl Credentials {
    /// SNMPv2c with `community`.
    pub fn v2c(community: impl Into<String>) -> Self {
        Self::V2c {
            community: community.into(),
        }
    }

    /// SNMPv3 authPriv.
    pub fn v3_auth_priv(
        user: impl Into<String>,
        auth: AuthProtocol,
        auth_password: impl Into<String>,
        privacy: PrivProtocol,
        priv_password: impl Into<String>,
    ) -> Self {
        Self::V3 {
            user: user.into(),
            security: V3Security::AuthPriv {
                auth,
                auth_password: auth_password.into(),
                privacy,
                priv_password: priv_password.into(),
            },
        }
    }

    /// SNMPv3 authNoPriv.
    pub fn v3_auth_no_priv(user: impl Into<String>, auth: AuthProtocol, auth_password: impl Into<String>) -> Self {
        Self::V3 {
            user: user.into(),
            security: V3Security::AuthNoPriv {
                auth,
                auth_password: auth_password.into(),
            },
        }
    }

    /// SNMPv3 noAuthNoPriv.
    pub fn v3_no_auth(user: impl Into<String>) -> Self {
        Self::V3 {
            user: user.into(),
            security: V3Security::NoAuthNoPriv,
        }
    }

    /// The SNMPv3 security level; `None` for v2c.
    pub fn level(&self) -> Option<SecurityLevel> {
        match self {
            Self::V2c { .. } => None,
            Self::V3 { security, .. } => Some(match security {
                V3Security::NoAuthNoPriv => SecurityLevel::NoAuthNoPriv,
                V3Security::AuthNoPriv { .. } => SecurityLevel::AuthNoPriv,
                V3Security::AuthPriv { .. } => SecurityLevel::AuthPriv,
            }),
        }
    }

    /// The SNMPv3 user name; `None` for v2c.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::V2c { .. } => None,
            Self::V3 { user, .. } => Some(user),
        }
    }

    /// Rejects credentials no agent can accept, before any packet is sent.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        match self {
            Self::V2c { community } if community.is_empty() => Err(CredentialsError::Empty("community")),
            Self::V2c { .. } => Ok(()),
            Self::V3 { user, .. } if user.is_empty() => Err(CredentialsError::Empty("user name")),
            Self::V3 { user, security } => {
                let short = |which: &'static str| CredentialsError::PasswordTooShort {
                    which,
                    user: user.clone(),
                };
                match security {
                    V3Security::NoAuthNoPriv => Ok(()),
                    V3Security::AuthNoPriv { auth_password, .. } => {
                        if auth_password.len() < MIN_PASSWORD_LEN {
                            return Err(short("authentication"));
                        }
                        Ok(())
                    }
                    V3Security::AuthPriv {
                        auth_password,
                        priv_password,
                        ..
                    } => {
                        if auth_password.len() < MIN_PASSWORD_LEN {
                            return Err(short("authentication"));
                        }
                        if priv_password.len() < MIN_PASSWORD_LEN {
                            return Err(short("privacy"));
                        }
                        Ok(())
                    }
                }
            }
        }
    }
}

impl V3Security {
    /// snmp2's security parameters for `user`.
    pub(crate) fn to_snmp2(&self, user: &str) -> v3::Security {
        match self {
            Self::NoAuthNoPriv => v3::Security::new(user.as_bytes(), b"").with_auth(v3::Auth::NoAuthNoPriv),
            Self::AuthNoPriv { auth, auth_password } => v3::Security::new(user.as_bytes(), auth_password.as_bytes())
                .with_auth_protocol(auth.to_snmp2())
                .with_auth(v3::Auth::AuthNoPriv),
            Self::AuthPriv {
                auth,
                auth_password,
                privacy,
                priv_password,
            } => {
                let (cipher, extension) = privacy.to_snmp2();
                v3::Security::new(user.as_bytes(), auth_password.as_bytes())
                    .with_auth_protocol(auth.to_snmp2())
                    .with_auth(v3::Auth::AuthPriv {
                        cipher,
                        privacy_password: priv_password.as_bytes().to_vec(),
                    })
                    .with_key_extension_method(extension)
            }
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V2c { .. } => f.debug_struct("V2c").field("community", &"<hidden>").finish(),
            Self::V3 { user, security } => f
                .debug_struct("V3")
                .field("user", user)
                .field("security", security)
                .finish(),
        }
    }
}

impl fmt::Debug for V3Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAuthNoPriv => f.write_str("NoAuthNoPriv"),
            Self::AuthNoPriv { auth, .. } => f.debug_struct("AuthNoPriv").field("auth", auth).finish_non_exhaustive(),
            Self::AuthPriv { auth, privacy, .. } => f
                .debug_struct("AuthPriv")
                .field("auth", auth)
                .field("privacy", privacy)
                .finish_non_exhaustive(),
        }
    }
}

impl AuthProtocol {
    fn to_snmp2(self) -> v3::AuthProtocol {
        match self {
            Self::Md5 => v3::AuthProtocol::Md5,
            Self::Sha1 => v3::AuthProtocol::Sha1,
            Self::Sha224 => v3::AuthProtocol::Sha224,
            Self::Sha256 => v3::AuthProtocol::Sha256,
            Self::Sha384 => v3::AuthProtocol::Sha384,
            Self::Sha512 => v3::AuthProtocol::Sha512,
        }
    }
}

impl PrivProtocol {
    fn to_snmp2(self) -> (v3::Cipher, v3::KeyExtension) {
        use v3::KeyExtension::{Blumenthal, Reeder};
        match self {
            // The extension method only matters where the key is too short.
            Self::Des => (v3::Cipher::Des, Blumenthal),
            Self::Aes128 => (v3::Cipher::Aes128, Blumenthal),
            Self::Aes192 => (v3::Cipher::Aes192, Blumenthal),
            Self::Aes256 => (v3::Cipher::Aes256, Blumenthal),
            Self::Aes192Reeder => (v3::Cipher::Aes192, Reeder),
            Self::Aes256Reeder => (v3::Cipher::Aes256, Reeder),
        }
    }
}

impl FromStr for AuthProtocol {
    type Err = CredentialsError;

    /// net-snmp's names (`MD5`, `SHA`, `SHA-224` … `SHA-512`), any case,
    /// with or without the dash; `SHA1` too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "MD5" => Ok(Self::Md5),
            "SHA" | "SHA1" => Ok(Self::Sha1),
            "SHA224" => Ok(Self::Sha224),
            "SHA256" => Ok(Self::Sha256),
            "SHA384" => Ok(Self::Sha384),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(CredentialsError::UnknownProtocol {
                kind: "authentication",
                name: s.to_owned(),
                known: "MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512",
            }),
        }
    }
}

impl FromStr for PrivProtocol {
    type Err = CredentialsError;

    /// net-snmp's names (`DES`, `AES`, `AES-192`, `AES-256`, `AES-192-C`,
    /// `AES-256-C`), any case, with or without dashes; `AES-128` too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "DES" => Ok(Self::Des),
            "AES" | "AES128" => Ok(Self::Aes128),
            "AES192" => Ok(Self::Aes192),
            "AES256" => Ok(Self::Aes256),
            "AES192C" => Ok(Self::Aes192Reeder),
            "AES256C" => Ok(Self::Aes256Reeder),
            _ => Err(CredentialsError::UnknownProtocol {
                kind: "privacy",
                name: s.to_owned(),
                known: "DES, AES, AES-192, AES-256, AES-192-C, AES-256-C",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_as_net_snmp_writes_them() {
        assert_eq!("SHA".parse(), Ok(AuthProtocol::Sha1));
        assert_eq!("sha-256".parse(), Ok(AuthProtocol::Sha256));
        assert_eq!("MD5".parse(), Ok(AuthProtocol::Md5));
        assert_eq!("AES".parse(), Ok(PrivProtocol::Aes128));
        assert_eq!("AES-256".parse(), Ok(PrivProtocol::Aes256));
        assert_eq!("AES-192-C".parse(), Ok(PrivProtocol::Aes192Reeder));
        assert!("SHA3".parse::<AuthProtocol>().is_err());
        assert!("3DES".parse::<PrivProtocol>().is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let v2 = format!("{:?}", Credentials::v2c("s3cret-community"));
        let v3 = format!(
            "{:?}",
            Credentials::v3_auth_priv(
                "ops",
                AuthProtocol::Sha1,
                "authsecret",
                PrivProtocol::Aes128,
                "privsecret"
            )
        );
        for (text, secret) in [(&v2, "s3cret"), (&v3, "authsecret"), (&v3, "privsecret")] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            v3.contains("ops") && v3.contains("Sha1") && v3.contains("Aes128"),
            "{v3}"
        );
    }

    #[test]
    fn validation_rejects_what_no_agent_accepts() {
        assert!(Credentials::v2c("public").validate().is_ok());
        assert_eq!(
            Credentials::v2c("").validate(),
            Err(CredentialsError::Empty("community"))
        );
        let short = Credentials::v3_auth_priv("ops", AuthProtocol::Sha1, "authpass1", PrivProtocol::Aes128, "short");
        assert!(matches!(
            short.validate(),
            Err(CredentialsError::PasswordTooShort { which: "privacy", .. })
        ));
        let empty = Credentials::v3_auth_no_priv("ops", AuthProtocol::Md5, "");
        assert!(matches!(
            empty.validate(),
            Err(CredentialsError::PasswordTooShort {
                which: "authentication",
                ..
            })
        ));
        assert!(Credentials::v3_no_auth("ops").validate().is_ok());
        assert_eq!(
            Credentials::v3_no_auth("").validate(),
            Err(CredentialsError::Empty("user name"))
        );
    }

    #[test]
    fn levels() {
        assert_eq!(Credentials::v2c("public").level(), None);
        assert_eq!(Credentials::v3_no_auth("u").level(), Some(SecurityLevel::NoAuthNoPriv));
        let c = Credentials::v3_auth_priv(
            "u",
            AuthProtocol::Sha512,
            "authpass1",
            PrivProtocol::Aes256,
            "privpass1",
        );
        assert_eq!(c.level(), Some(SecurityLevel::AuthPriv));
        assert_eq!(c.user(), Some("u"));
    }
}
