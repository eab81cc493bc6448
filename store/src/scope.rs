//! Who a query runs for.
//!
//! Only these build a scope:
//! * [`AgentScope`]: [`AgentScope::from_certificate`], which takes the
//!   [`AgentCertificate`] the collector's agent-port listener parses from the
//!   client certificate the TLS handshake verified (an [`AgentIdentity`] alone,
//!   which is also what a message's `Source` claim becomes, is not enough);
//! * [`TenantScope`]: [`AgentScope::tenant_scope`], and the session check
//!   (`users.rs`), from a session cookie, through
//!   [`Principal::authorize`](crate::members::Principal::authorize), which
//!   hands one out only for a tenant the user is a member of with a high
//!   enough role;
//! * [`AdminScope`]: the session check for MSP-wide administrators, and
//!   [`Store::open_as_operator`](crate::Store::open_as_operator): whoever opens
//!   the database directly (the collector's `serve`, whose console feed reads
//!   every tenant once and filters each stream by its own session's scope, and
//!   its administrative commands, whose caller holds the data directory and so
//!   the CA key) already holds every tenant's data.
//!
//! A tenant id from a message or a URL can never become a scope. (The
//! `fuzzing` feature, used only by `agent-port/fuzz`, adds one more constructor
//! for the fuzz target, and `test-support`, a dev-dependency feature, one for
//! other crates' unit tests; this crate's own unit tests build scopes directly.)
use outpost_certs::{AgentCertificate, AgentId, AgentIdentity, SiteId, TenantId};

/// One tenant's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    pub(crate) fn verified(tenant: TenantId) -> Self {
        Self { tenant }
    }

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

    /// The scope of the agent a verified client certificate names. Call it
    /// only with what [`AgentCertificate::parse`] read from the certificate a
    /// TLS handshake verified.
    pub fn from_certificate(cert: &AgentCertificate) -> Self {
        Self::verified(cert.identity)
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

    /// One tenant's scope: whoever may act for every tenant may act for one.
    pub fn tenant_scope(&self, tenant: TenantId) -> TenantScope {
        TenantScope { tenant }
    }

    /// A scope for other crates' unit tests. Compiled only with the
    /// `test-support` feature.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn for_tests() -> Self {
        Self::verified()
    }
}

/// The tenants a signed-in user is a member of, from the session check.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TenantSet(Vec<TenantId>);

impl TenantSet {
    pub(crate) fn verified(mut tenants: Vec<TenantId>) -> Self {
        tenants.sort_unstable_by_key(|t| t.to_string());
        tenants.dedup();
        Self(tenants)
    }

    /// Whether `tenant` is one of them.
    pub fn contains(&self, tenant: TenantId) -> bool {
        self.0.contains(&tenant)
    }

    /// The tenants.
    pub fn tenants(&self) -> &[TenantId] {
        &self.0
    }
}

/// What a console viewer may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// Every tenant.
    Admin(AdminScope),
    /// One tenant.
    Tenant(TenantScope),
    /// The tenants a user is a member of (possibly none).
    Tenants(TenantSet),
}

impl Viewer {
    /// Whether the viewer may see `tenant`'s data.
    pub fn sees(&self, tenant: TenantId) -> bool {
        match self {
            Viewer::Admin(_) => true,
            Viewer::Tenant(t) => t.tenant() == tenant,
            Viewer::Tenants(set) => set.contains(tenant),
        }
    }

    /// The value to bind for the SQL condition "`col` is one of the viewer's
    /// tenants", written `($n IS NULL OR (',' || $n || ',') LIKE ('%,' || col || ',%'))`
    /// (the same text runs on SQLite and PostgreSQL): `None` lets every
    /// tenant through, else the tenant ids joined by commas (empty: none;
    /// UUIDs hold neither commas nor `LIKE` wildcards).
    pub fn tenant_filter(&self) -> Option<String> {
        match self {
            Viewer::Admin(_) => None,
            Viewer::Tenant(t) => Some(t.tenant().to_string()),
            Viewer::Tenants(set) => Some(set.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
        }
    }
}
