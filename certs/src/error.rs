/// Errors from the PKI layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// rcgen could not build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A certificate signing request could not be parsed or its signature is wrong.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// The certificate carries no Outpost identity, or a malformed one.
    #[error("certificate carries no valid Outpost identity: {0}")]
    NoIdentity(String),
    /// PEM input could not be decoded.
    #[error("invalid PEM in {what}: {reason}")]
    Pem {
        /// What was being read.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// rustls refused a configuration.
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),
    /// A rustls verifier could not be built.
    #[error("TLS verifier error: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}
