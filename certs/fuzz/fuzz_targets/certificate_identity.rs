//! The certificate readers on arbitrary bytes: `AgentIdentity::from_certificate_der`,
//! `AgentCertificate::parse` (the previous certificate a re-enrolling agent
//! sends), `ca::certificate_validity`, `ca::certificate_public_key`,
//! `ca::certificate_names`, `ca::csr_public_key` (every `Enroll` CSR) and
//! `AgentIdentity::from_uri` must never panic, and the one-parse reader must
//! agree with the separate ones.
//!
//! Seeds: `seeds/certificate_identity/` holds real agent, CA and server
//! certificates (regenerate with `cargo run --example make_seeds`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_certs::ca::{certificate_names, certificate_public_key, certificate_validity, csr_public_key};
use outpost_certs::{AgentCertificate, AgentIdentity};

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = AgentIdentity::from_certificate_der(data) {
        // What was read must be expressible as the URI it was read from.
        assert_eq!(AgentIdentity::from_uri(&id.to_uri()).ok(), Some(id));
    }
    if let Ok(issued) = certificate_validity(data) {
        assert_eq!(issued.der, data);
    }
    if let Ok(cert) = AgentCertificate::parse(data) {
        assert_eq!(AgentIdentity::from_certificate_der(data).ok(), Some(cert.identity));
        let validity = certificate_validity(data).expect("parsed once, so parses again");
        assert_eq!(
            (validity.serial, validity.not_before, validity.not_after),
            (cert.serial, cert.not_before, cert.not_after)
        );
    }
    let _ = certificate_public_key(data);
    let _ = certificate_names(data);
    let _ = csr_public_key(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = AgentIdentity::from_uri(text)
    {
        assert_eq!(AgentIdentity::from_uri(&id.to_uri()).ok(), Some(id));
    }
});
