//! What the fuzz target and the seed generator share: the agent identity the
//! fuzzed batches are validated against. It is fixed so that seeds can carry a
//! `Source` claim that matches it and so reach the code past the claim checks.
use outpost_certs::{AgentId, AgentIdentity, SiteId, TenantId};
use outpost_store::AgentScope;

/// The tenant of [`scope`].
pub const TENANT: &str = "6f0c2a4e-1b3d-4c5e-8f70-9a1b2c3d4e5f";
/// The site of [`scope`].
pub const SITE: &str = "0d1e2f30-4152-4637-8849-5a6b7c8d9eaf";
/// The agent of [`scope`].
pub const AGENT: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

/// The fixed identity, as the collector's agent port would have read it from a
/// verified client certificate.
pub fn identity() -> AgentIdentity {
    AgentIdentity {
        tenant: TENANT.parse::<TenantId>().expect("tenant UUID"),
        site: SITE.parse::<SiteId>().expect("site UUID"),
        agent: AGENT.parse::<AgentId>().expect("agent UUID"),
    }
}

/// The scope batches are validated in.
pub fn scope() -> AgentScope {
    AgentScope::for_fuzzing(identity())
}
