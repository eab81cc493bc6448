//! Who a query runs for.
//!
//! The constructors are `pub(crate)`, and only these call them:
//! * [`AgentScope`]: the agent-port listener (`agent_port/listener.rs`), from
//!   the client certificate the TLS handshake verified;
//! * [`TenantScope`]: [`AgentScope::tenant_scope`], and the console's session
//!   check (`store/users.rs`), from a session cookie;
//! * [`AdminScope`]: the console's session check for MSP-wide administrators,
//!   the console's live-update feed (which reads every tenant once and filters
//!   each stream by its own session's scope, `console/feed.rs`), and the
//!   administrative commands of `outpost-collector` (`commands.rs`), whose
//!   caller holds the data directory and so the CA key.
//!
//! A tenant id from a message or a URL can never become a scope. (The
//! `fuzzing` feature, used only by `collector/fuzz`, adds one more constructor
//! for the fuzz target; unit tests build scopes directly.)
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
