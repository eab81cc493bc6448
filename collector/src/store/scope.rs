//! Who a query runs for.
//!
//! The constructors are `pub(crate)` and called in exactly two places: the agent
//! port, after the TLS handshake has verified the client certificate, and the
//! console, after a session cookie has been checked. A tenant id from a message
//! or a URL can never become a scope. (The `fuzzing` feature, used only by
//! `collector/fuzz`, adds one more constructor for the fuzz target.)
use outpost_certs::{AgentId, AgentIdentity, SiteId, TenantId};

/// One tenant's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }
}

/// One agent, proven by its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentScope {
    identity: AgentIdentity,
}

impl AgentScope {
    pub(crate) fn verified(identity: AgentIdentity) -> Self {
        Self { identity }
    }

    /// A scope for fuzz targets, which drive the validators without a TLS
    /// handshake. Compiled only with the `fuzzing` feature.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn for_fuzzing(identity: AgentIdentity) -> Self {
        Self::verified(identity)
    }

    /// The agent's tenant, as a scope.
    pub fn tenant_scope(&self) -> TenantScope {
        TenantScope {
            tenant: self.identity.tenant,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        self.identity.tenant
    }

    /// The site.
    pub fn site(&self) -> SiteId {
        self.identity.site
    }

    /// The agent.
    pub fn agent(&self) -> AgentId {
        self.identity.agent
    }

    /// The whole identity.
    pub fn identity(&self) -> &AgentIdentity {
        &self.identity
    }
}

/// Every tenant: the local operator holding the data directory, or an MSP-wide
/// administrator's console session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminScope(());

impl AdminScope {
    pub(crate) fn verified() -> Self {
        Self(())
    }
}

/// What a console viewer may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// Every tenant.
    Admin(AdminScope),
    /// One tenant.
    Tenant(TenantScope),
}
