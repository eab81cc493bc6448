//! Tenant, site and agent identifiers, and the certificate identity that binds them.
//!
//! An agent certificate carries exactly one URI SAN of the form
//! `urn:outpost:agent:<tenant-uuid>:<site-uuid>:<agent-uuid>`. It is parsed once,
//! after the TLS handshake has verified the chain, into an [`AgentIdentity`]; from
//! there the typed value is carried, never a string from a message.
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::CertError;

/// Error parsing an identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} id {value:?}: expected a UUID")]
pub struct ParseIdError {
    kind: &'static str,
    value: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, ":{}"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self).map_err(|_| ParseIdError {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                })
            }
        }
    };
}

uuid_id!(
    /// A tenant: one client organisation.
    TenantId,
    "tenant"
);
uuid_id!(
    /// A site of a tenant.
    SiteId,
    "site"
);
uuid_id!(
    /// One enrolled agent.
    AgentId,
    "agent"
);

const URI_PREFIX: &str = "urn:outpost:agent:";

/// Who an agent is, as proven by its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AgentIdentity {
    /// The tenant the agent belongs to.
    pub tenant: TenantId,
    /// The site the agent was enrolled into.
    pub site: SiteId,
    /// The agent itself.
    pub agent: AgentId,
}

impl AgentIdentity {
    /// The URI SAN that encodes this identity.
    pub fn to_uri(&self) -> String {
        format!("{URI_PREFIX}{}:{}:{}", self.tenant, self.site, self.agent)
    }

    /// Parses the URI SAN form.
    pub fn from_uri(uri: &str) -> Result<Self, CertError> {
        let rest = uri
            .strip_prefix(URI_PREFIX)
            .ok_or_else(|| CertError::NoIdentity(format!("URI {uri:?} is not an Outpost agent URI")))?;
        let mut parts = rest.split(':');
        let (Some(t), Some(s), Some(a), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(CertError::NoIdentity(format!(
                "URI {uri:?} does not have the form {URI_PREFIX}<tenant>:<site>:<agent>"
            )));
        };
        let bad = |e: ParseIdError| CertError::NoIdentity(e.to_string());
        Ok(Self {
            tenant: t.parse().map_err(bad)?,
            site: s.parse().map_err(bad)?,
            agent: a.parse().map_err(bad)?,
        })
    }

    /// Extracts the identity from a DER certificate. The caller must already have
    /// verified the certificate's chain: this only reads it.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
        Self::from_parsed(&cert)
    }

    fn from_parsed(cert: &X509Certificate<'_>) -> Result<Self, CertError> {
        let san = cert
            .subject_alternative_name()
            .map_err(|e| CertError::InvalidCertificate(e.to_string()))?
            .ok_or_else(|| CertError::NoIdentity("no subject alternative name".into()))?;
        let mut found = None;
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with(URI_PREFIX)
            {
                if found.is_some() {
                    return Err(CertError::NoIdentity("more than one Outpost URI SAN".into()));
                }
                found = Some(Self::from_uri(uri)?);
            }
        }
        found.ok_or_else(|| CertError::NoIdentity("no Outpost URI SAN".into()))
    }
}

/// Everything the collector needs from a verified agent certificate, read in
/// one parse: who it names, which certificate it is, and how long it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCertificate {
    /// Who the certificate names.
    pub identity: AgentIdentity,
    /// Serial number, lowercase hex (as stored by the collector).
    pub serial: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

impl AgentCertificate {
    /// Parses an agent certificate (DER). Verification is the caller's job.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
        Ok(Self {
            identity: AgentIdentity::from_parsed(&cert)?,
            serial: hex::encode(cert.tbs_certificate.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

impl fmt::Display for AgentIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent {} (tenant {}, site {})", self.agent, self.tenant, self.site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_round_trip_through_text() {
        let t = TenantId::random();
        assert_eq!(t.to_string().parse::<TenantId>(), Ok(t));
        assert!("not-a-uuid".parse::<AgentId>().is_err());
    }

    #[test]
    fn uri_round_trips() {
        let id = AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        };
        assert_eq!(AgentIdentity::from_uri(&id.to_uri()).ok(), Some(id));
    }

    #[test]
    fn malformed_uris_are_errors() {
        for uri in [
            "urn:outpost:agent:",
            "urn:outpost:agent:a:b:c",
            "spiffe://x/y",
            &format!("{URI_PREFIX}{}:{}", TenantId::random(), SiteId::random()),
            &format!(
                "{URI_PREFIX}{}:{}:{}:extra",
                TenantId::random(),
                SiteId::random(),
                AgentId::random()
            ),
        ] {
            assert!(AgentIdentity::from_uri(uri).is_err(), "{uri}");
        }
    }

    proptest! {
        #[test]
        fn from_uri_never_panics(s in ".*") {
            let _ = AgentIdentity::from_uri(&s);
        }

        #[test]
        fn from_certificate_der_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AgentIdentity::from_certificate_der(&bytes);
        }
    }
}
