//! The certificate readers on arbitrary bytes: `AgentIdentity::from_certificate_der`,
//! `ca::certificate_validity` and `AgentIdentity::from_uri` must never panic.
//!
//! Seeds: `seeds/certificate_identity/` holds real agent, CA and server
//! certificates (regenerate with `cargo run --example make_seeds`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_certs::AgentIdentity;
use outpost_certs::ca::certificate_validity;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = AgentIdentity::from_certificate_der(data) {
        // What was read must be expressible as the URI it was read from.
        assert_eq!(AgentIdentity::from_uri(&id.to_uri()).ok(), Some(id));
    }
    if let Ok(issued) = certificate_validity(data) {
        assert_eq!(issued.der, data);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = AgentIdentity::from_uri(text)
    {
        assert_eq!(AgentIdentity::from_uri(&id.to_uri()).ok(), Some(id));
    }
});
