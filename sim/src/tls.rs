//! API-SSL: a self-signed certificate per device, made with rcgen, served by
//! rustls with TLS 1.2 and 1.3 (routers with a certificate speak ordinary TLS;
//! the anonymous Diffie-Hellman mode of certificate-less routers is out of
//! reach for rustls and not simulated).

use std::net::Ipv4Addr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A device's TLS server configuration and the certificate in it.
#[derive(Debug)]
pub(crate) struct DeviceCert {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) der: Vec<u8>,
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate.
    #[error("rustls refused the certificate: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A fresh self-signed certificate named after the device (identity and
/// address), as `/certificate add` + self-sign would make on a router.
pub(crate) fn device_cert(identity: &str, ip: Ipv4Addr) -> Result<DeviceCert, TlsError> {
    let mut params = rcgen::CertificateParams::new(vec![identity.to_owned()])?;
    params.subject_alt_names.push(rcgen::SanType::IpAddress(ip.into()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, identity.to_owned());
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let der = cert.der().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    Ok(DeviceCert {
        config: Arc::new(config),
        der,
    })
}
