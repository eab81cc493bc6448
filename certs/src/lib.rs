//! Outpost's PKI.
//!
//! * [`ca`]: the collector's certificate authority; signs the server certificate
//!   and agents' CSRs (only the agent's public key is taken from a CSR).
//! * [`identity`]: tenant, site and agent identifiers and the URI SAN that carries
//!   them; parsed once from a verified certificate.
//! * [`token`]: the enrollment-token format, which pins the CA by fingerprint.
//! * [`tls`]: the rustls configurations for both ends of the agent port.
//! * [`keys`]: agent-side key and CSR generation.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub, missing_docs)]

pub mod ca;
mod error;
pub mod files;
pub mod fingerprint;
pub mod identity;
pub mod keys;
pub mod pem;
pub mod tls;
pub mod token;

pub use error::CertError;
pub use fingerprint::Fingerprint;
pub use identity::{AgentCertificate, AgentId, AgentIdentity, SiteId, TenantId};
pub use tls::RevokedAgents;
