//! API-SSL (TCP 8729): TLS with trust-on-first-use certificate pinning.
//!
//! RouterOS certificates are self-signed, so chain and name validation would
//! reject every router. Instead the leaf certificate's SHA-256 fingerprint is
//! the identity: with no pin we accept the router and report its fingerprint
//! (to be pinned from then on); with a pin we accept only that certificate.
//! Handshake signatures are still verified against the leaf's public key, so
//! the peer must hold the private key of the certificate it presents.
//!
//! A router without a certificate offers only anonymous Diffie-Hellman, which
//! rustls never implements; that handshake fails and is reported as
//! [`Error::AnonymousTlsUnsupported`] with what to change on the router.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::Error;
pub use crate::fingerprint::{Fingerprint, FingerprintParseError};

/// Accepts a server by the fingerprint of its leaf certificate.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<Fingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
    /// What the server presented, so a mismatch can be reported with both.
    presented: Mutex<Option<Fingerprint>>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_der(end_entity);
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(presented);
        }
        match self.pin {
            Some(pin) if pin != presented => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Runs the TLS handshake over `tcp` and returns the stream and the leaf
/// certificate's fingerprint.
pub(crate) async fn handshake(
    tcp: TcpStream,
    host: &str,
    pin: Option<Fingerprint>,
) -> Result<(TlsStream<TcpStream>, Fingerprint), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinVerifier {
        pin,
        algorithms: provider.signature_verification_algorithms,
        presented: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    // The name is sent as SNI only; the verifier ignores it.
    let name = ServerName::try_from(host.to_owned())
        .or_else(|_| ServerName::try_from("router.invalid"))
        .map_err(|e| Error::Tls(e.to_string()))?;
    let stream = match TlsConnector::from(Arc::new(config)).connect(name, tcp).await {
        Ok(stream) => stream,
        Err(e) => {
            let presented = verifier.presented.lock().ok().and_then(|p| *p);
            return Err(classify(e, pin, presented));
        }
    };
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|der| Fingerprint::of_der(der))
        .ok_or_else(|| Error::Tls("the router presented no certificate".into()))?;
    Ok((stream, leaf))
}

fn classify(e: std::io::Error, pin: Option<Fingerprint>, presented: Option<Fingerprint>) -> Error {
    if let (Some(expected), Some(presented)) = (pin, presented)
        && expected != presented
    {
        return Error::PinMismatch { expected, presented };
    }
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return Error::Tls(e.to_string());
    };
    match tls {
        // What a router with no certificate answers to a client that offers no
        // anonymous cipher suites.
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity)
        | rustls::Error::PeerIncompatible(_) => Error::AnonymousTlsUnsupported,
        other => Error::Tls(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_through_text() {
        let fp = Fingerprint::of_der(b"not really a certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        let colons = fp
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Fingerprint>(), Ok(fp));
        assert!("abcd".parse::<Fingerprint>().is_err());
        assert!(format!("{text}00").parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn a_handshake_failure_alert_means_anonymous_dh() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
        );
        assert!(matches!(classify(e, None, None), Error::AnonymousTlsUnsupported));
    }
}
