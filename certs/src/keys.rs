//! Agent-side key material: the key pair is made on the agent and never leaves it.
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::CertError;

/// A freshly generated key pair and a CSR for it.
pub struct KeyAndCsr {
    /// PKCS#8 PEM private key; write it with mode 0600.
    pub key_pem: String,
    /// DER PKCS#10 request, signed by the key.
    pub csr_der: Vec<u8>,
}

impl std::fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("csr_der_len", &self.csr_der.len())
            .finish_non_exhaustive()
    }
}

/// Generates an ECDSA P-256 key pair and a CSR. The subject is informational
/// only: the collector decides the identity and ignores what the CSR asks for.
pub fn generate_key_and_csr(common_name: &str) -> Result<KeyAndCsr, CertError> {
    csr_signed_by(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?, common_name)
}

/// A CSR signed by an existing key: how a re-enrolling agent proves it holds
/// the key of its previous certificate. Returns the same key as PEM with it.
pub fn csr_for_key(key: &rustls::pki_types::PrivateKeyDer<'_>, common_name: &str) -> Result<KeyAndCsr, CertError> {
    csr_signed_by(KeyPair::try_from(key)?, common_name)
}

fn csr_signed_by(key: KeyPair, common_name: &str) -> Result<KeyAndCsr, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?;
    Ok(KeyAndCsr {
        key_pem: key.serialize_pem(),
        csr_der: csr.der().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_for_an_existing_key_carries_that_key() {
        let first = generate_key_and_csr("a").expect("key");
        let der = crate::pem::private_key("key", first.key_pem.as_bytes()).expect("pem");
        let again = csr_for_key(&der, "a").expect("csr").csr_der;
        let other = generate_key_and_csr("a").expect("key");
        let key = |der: &[u8]| crate::ca::csr_public_key(der).expect("valid csr");
        assert_eq!(key(&again), key(&first.csr_der));
        assert_ne!(key(&other.csr_der), key(&first.csr_der));
        assert!(crate::ca::csr_public_key(b"not a csr").is_err());
    }
}
