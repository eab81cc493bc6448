//! The collector's certificate authority.
//!
//! One CA per collector installation. It signs the agent-port server certificate
//! and every agent certificate. Agent certificates are short-lived (default 30
//! days) and carry the agent's identity as a URI SAN (see [`crate::identity`]).
//! From a CSR only the public key is used; everything else is decided here.
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use time::OffsetDateTime;

use crate::{AgentIdentity, CertError, Fingerprint};

/// Default lifetime of an agent certificate.
pub const DEFAULT_AGENT_CERT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Lifetime of the CA certificate.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of the agent-port server certificate.
const SERVER_LIFETIME: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Issued certificates start slightly in the past to tolerate clock skew: five
/// minutes, or a tenth of the lifetime for short-lived certificates, so the
/// renewal point (two thirds into the validity) stays in the future.
const MAX_BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A certificate this CA issued.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// DER encoding.
    pub der: Vec<u8>,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

/// A server key pair and certificate, PEM.
#[derive(Clone)]
pub struct ServerCredentials {
    /// The server certificate followed by the CA certificate.
    pub chain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: String,
}

/// When an issued certificate is valid.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// Start, Unix seconds.
    pub not_before: i64,
    /// End, Unix seconds.
    pub not_after: i64,
}

impl Validity {
    /// Valid from a few minutes ago for `lifetime`.
    pub fn starting_now(lifetime: Duration) -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let backdate = MAX_BACKDATE.min(lifetime / 10);
        Self {
            not_before: now - backdate.as_secs() as i64,
            not_after: now.saturating_add(lifetime.as_secs().min(i64::MAX as u64 / 2) as i64),
        }
    }
}

/// The CA: its certificate and signing key.
pub struct CertificateAuthority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // A positive INTEGER with no leading zero byte: RFC 5280 wants serials positive.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn to_time(unix: i64) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| CertError::InvalidCertificate(format!("validity out of range: {e}")))
}

impl CertificateAuthority {
    /// Makes a new CA with a fresh ECDSA P-256 key.
    pub fn generate(common_name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Outpost");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        let validity = Validity::starting_now(CA_LIFETIME);
        params.not_before = to_time(validity.not_before)?;
        params.not_after = to_time(validity.not_after)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key,
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = crate::pem::certificates("CA certificate", cert_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or(CertError::Pem {
                what: "CA certificate",
                reason: "empty".into(),
            })?;
        // Parse once now so a corrupt file is reported at load, not at first signing.
        Issuer::from_ca_cert_der(&cert_der, &key)?;
        Ok(Self {
            cert_der,
            cert_pem: cert_pem.to_owned(),
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PEM. Store it with mode 0600.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// SHA-256 of the CA certificate: what enrollment tokens pin.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.cert_der)
    }

    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, CertError> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, &self.key)?)
    }

    /// Issues the agent-port server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[String]) -> Result<ServerCredentials, CertError> {
        self.issue_server_valid_for(names, SERVER_LIFETIME)
    }

    /// Like [`Self::issue_server`], valid for `lifetime`.
    pub fn issue_server_valid_for(&self, names: &[String], lifetime: Duration) -> Result<ServerCredentials, CertError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("outpost-collector"),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let validity = Validity::starting_now(lifetime);
        params.not_before = to_time(validity.not_before)?;
        params.not_after = to_time(validity.not_after)?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(ServerCredentials {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs an agent's CSR. Only the public key is taken from the request; the
    /// identity, usages and validity are ours.
    pub fn sign_agent_csr(
        &self,
        csr_der: &[u8],
        identity: &AgentIdentity,
        validity: Validity,
    ) -> Result<IssuedCertificate, CertError> {
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(|e| CertError::InvalidCsr(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("outpost-agent {}", identity.agent));
        dn.push(DnType::OrganizationalUnitName, identity.tenant.to_string());
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(
            identity
                .to_uri()
                .try_into()
                .map_err(|e: rcgen::Error| CertError::Generate(e))?,
        )];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let serial = random_serial();
        let serial_hex = hex::encode(serial.to_bytes());
        params.serial_number = Some(serial);
        params.use_authority_key_identifier_extension = true;
        params.not_before = to_time(validity.not_before)?;
        params.not_after = to_time(validity.not_after)?;
        let cert = params.signed_by(&csr.public_key, &self.issuer()?)?;
        Ok(IssuedCertificate {
            der: cert.der().to_vec(),
            serial: serial_hex,
            not_before: validity.not_before,
            not_after: validity.not_after,
        })
    }
}

/// The public key (subjectPublicKey bits) of a CSR, after checking the CSR's
/// signature: whoever sent it holds the matching private key.
pub fn csr_public_key(csr_der: &[u8]) -> Result<Vec<u8>, CertError> {
    use x509_parser::prelude::FromDer;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(csr_der)
        .map_err(|e| CertError::InvalidCsr(e.to_string()))?;
    csr.verify_signature()
        .map_err(|e| CertError::InvalidCsr(format!("bad signature: {e}")))?;
    Ok(csr
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data
        .to_vec())
}

/// The DNS names and IP addresses a (server) certificate covers, as text.
pub fn certificate_names(der: &[u8]) -> Result<Vec<String>, CertError> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
    let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| CertError::InvalidCertificate(e.to_string()))?
    else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => names.push((*d).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default()).to_string()),
                16 => {
                    names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default()).to_string())
                }
                _ => {}
            },
            _ => {}
        }
    }
    Ok(names)
}

/// The public key (subjectPublicKey bits) of a DER certificate.
pub fn certificate_public_key(der: &[u8]) -> Result<Vec<u8>, CertError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// Reads validity and serial from a DER certificate.
pub fn certificate_validity(der: &[u8]) -> Result<IssuedCertificate, CertError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::InvalidCertificate(e.to_string()))?;
    Ok(IssuedCertificate {
        der: der.to_vec(),
        serial: hex::encode(cert.tbs_certificate.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_key_and_csr;
    use crate::{AgentId, SiteId, TenantId};

    #[test]
    fn signs_a_csr_with_our_identity_only() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let req = generate_key_and_csr("whatever the agent asks").expect("csr");
        let id = AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        };
        let issued = ca
            .sign_agent_csr(&req.csr_der, &id, Validity::starting_now(DEFAULT_AGENT_CERT_LIFETIME))
            .expect("sign");
        assert_eq!(AgentIdentity::from_certificate_der(&issued.der).expect("identity"), id);
        let read = certificate_validity(&issued.der).expect("parse");
        assert_eq!(read.serial, issued.serial);
        assert_eq!(read.not_after, issued.not_after);
    }

    #[test]
    fn rejects_a_garbage_csr() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let id = AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        };
        let err = ca.sign_agent_csr(b"\x30\x03garbage", &id, Validity::starting_now(Duration::from_secs(60)));
        assert!(matches!(err, Err(CertError::InvalidCsr(_))));
    }

    #[test]
    fn reloads_from_pem() {
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let again = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).expect("reload");
        assert_eq!(again.fingerprint(), ca.fingerprint());
    }
}
