//! Enrollment tokens.
//!
//! Text form: `outpost1.<id>.<secret>.<ca-fingerprint>` where `id` is 16 random
//! bytes in hex (the database key), `secret` is 32 random bytes in unpadded
//! base64url, and `ca-fingerprint` is the SHA-256 of the collector CA certificate
//! in hex. The collector stores only SHA-256(secret): the secret has 256 bits of
//! entropy, so a slow hash adds nothing. The fingerprint lets a new agent pin
//! the collector before it has any other trust anchor.
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::Fingerprint;

const PREFIX: &str = "outpost1";
/// Longest text we will even try to parse.
const MAX_LEN: usize = 256;

/// A parsed enrollment token.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    id: String,
    secret: [u8; 32],
    ca_fingerprint: Fingerprint,
}

impl fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("EnrollmentToken")
            .field("id", &self.id)
            .field("ca_fingerprint", &self.ca_fingerprint)
            .finish_non_exhaustive()
    }
}

/// Why a token's text was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseTokenError {
    /// Too long to be a token.
    #[error("enrollment token is too long")]
    TooLong,
    /// Wrong prefix or number of parts.
    #[error("enrollment token is malformed: expected outpost1.<id>.<secret>.<ca-fingerprint>")]
    Malformed,
    /// The id part is not 32 hex digits.
    #[error("enrollment token id is not 32 hexadecimal digits")]
    BadId,
    /// The secret part is not 32 bytes of base64url.
    #[error("enrollment token secret is not 32 bytes of base64url")]
    BadSecret,
    /// The fingerprint part is not 64 hex digits.
    #[error("enrollment token CA fingerprint is not 64 hexadecimal digits")]
    BadFingerprint,
}

impl EnrollmentToken {
    /// A fresh token pinning the CA with `ca_fingerprint`.
    pub fn generate(ca_fingerprint: Fingerprint) -> Self {
        let id: [u8; 16] = rand::random();
        Self {
            id: hex::encode(id),
            secret: rand::random(),
            ca_fingerprint,
        }
    }

    /// The public id: the database key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pinned CA fingerprint.
    pub fn ca_fingerprint(&self) -> Fingerprint {
        self.ca_fingerprint
    }

    /// SHA-256 of the secret, hex: what the collector stores.
    pub fn secret_hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret))
    }

    /// Whether this token's secret hashes to `stored_hash`, in constant time.
    pub fn matches_hash(&self, stored_hash: &str) -> bool {
        let ours = self.secret_hash();
        ours.len() == stored_hash.len()
            && ours
                .bytes()
                .zip(stored_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Display for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}.{}",
            self.id,
            URL_SAFE_NO_PAD.encode(self.secret),
            self.ca_fingerprint
        )
    }
}

impl FromStr for EnrollmentToken {
    type Err = ParseTokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > MAX_LEN {
            return Err(ParseTokenError::TooLong);
        }
        let mut parts = s.split('.');
        let (Some(PREFIX), Some(id), Some(secret), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseTokenError::Malformed);
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ParseTokenError::BadId);
        }
        let secret: [u8; 32] = URL_SAFE_NO_PAD
            .decode(secret)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(ParseTokenError::BadSecret)?;
        let ca_fingerprint = fp.parse().map_err(|_| ParseTokenError::BadFingerprint)?;
        Ok(Self {
            id: id.to_owned(),
            secret,
            ca_fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let t = EnrollmentToken::generate(Fingerprint::of_der(b"ca"));
        let parsed: EnrollmentToken = t.to_string().parse().expect("own token parses");
        assert_eq!(parsed, t);
        assert!(parsed.matches_hash(&t.secret_hash()));
    }

    #[test]
    fn a_different_secret_does_not_match() {
        let a = EnrollmentToken::generate(Fingerprint::of_der(b"ca"));
        let b = EnrollmentToken::generate(Fingerprint::of_der(b"ca"));
        assert!(!a.matches_hash(&b.secret_hash()));
        assert!(!a.matches_hash(""));
    }

    #[test]
    fn names_what_is_wrong() {
        let good = EnrollmentToken::generate(Fingerprint::of_der(b"ca")).to_string();
        let parts: Vec<&str> = good.split('.').collect();
        assert_eq!("hello".parse::<EnrollmentToken>(), Err(ParseTokenError::Malformed));
        let bad_id = format!("outpost1.xyz.{}.{}", parts[2], parts[3]);
        assert_eq!(bad_id.parse::<EnrollmentToken>(), Err(ParseTokenError::BadId));
        let bad_secret = format!("outpost1.{}.AAAA.{}", parts[1], parts[3]);
        assert_eq!(bad_secret.parse::<EnrollmentToken>(), Err(ParseTokenError::BadSecret));
        let bad_fp = format!("outpost1.{}.{}.00", parts[1], parts[2]);
        assert_eq!(bad_fp.parse::<EnrollmentToken>(), Err(ParseTokenError::BadFingerprint));
        assert_eq!(
            "x".repeat(1000).parse::<EnrollmentToken>(),
            Err(ParseTokenError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = s.parse::<EnrollmentToken>();
        }
    }
}
