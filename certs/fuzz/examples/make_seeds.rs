//! Writes the seed corpora of this crate's fuzz targets, under `seeds/<target>/`
//! beside its Cargo.toml:
//!
//!     cargo run --example make_seeds
//!
//! * `certificate_identity`: a few real certificates from `CertificateAuthority`
//!   (an agent certificate with its Outpost URI SAN, the CA certificate, the
//!   agent-port server certificate) and the URI SAN as text, so the fuzzer
//!   starts from well-formed DER rather than from nothing.
//! * `enrollment_token`: a generated token, and the same token with the
//!   fingerprint in the other spellings the parser accepts.
//!
//! Running it again replaces them (with new keys and random ids).
use std::path::PathBuf;

use outpost_certs::ca::{CertificateAuthority, DEFAULT_AGENT_CERT_LIFETIME, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, AgentIdentity, SiteId, TenantId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");

    let ca = CertificateAuthority::generate("Outpost seed CA")?;
    let identity = AgentIdentity {
        tenant: TenantId::random(),
        site: SiteId::random(),
        agent: AgentId::random(),
    };
    let csr = generate_key_and_csr("seed agent")?;
    let agent = ca.sign_agent_csr(
        &csr.csr_der,
        &identity,
        Validity::starting_now(DEFAULT_AGENT_CERT_LIFETIME),
    )?;
    assert_eq!(AgentIdentity::from_certificate_der(&agent.der)?, identity);

    let server = ca.issue_server(&["collector.example".into(), "127.0.0.1".into()])?;
    let server_der = outpost_certs::pem::certificates("server certificate", server.chain_pem.as_bytes())?
        .into_iter()
        .next()
        .ok_or("no server certificate")?;

    write(
        &seeds.join("certificate_identity"),
        &[
            ("agent.der", &agent.der),
            ("ca.der", ca.cert_der()),
            ("server.der", &server_der),
            ("agent-uri.txt", identity.to_uri().as_bytes()),
        ],
    )?;

    let token = EnrollmentToken::generate(ca.fingerprint()).to_string();
    let (head, fingerprint) = token.rsplit_once('.').ok_or("token has no fingerprint part")?;
    let prefixed = format!("{head}.sha256:{fingerprint}");
    let upper = format!("  {head}.{}\n", fingerprint.to_ascii_uppercase());
    write(
        &seeds.join("enrollment_token"),
        &[
            ("token.txt", token.as_bytes()),
            ("token-sha256-prefix.txt", prefixed.as_bytes()),
            ("token-upper-padded.txt", upper.as_bytes()),
        ],
    )?;
    Ok(())
}

fn write(dir: &std::path::Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
