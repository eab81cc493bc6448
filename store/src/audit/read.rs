//! Reading records: a tenant's own, or every tenant's for MSP administrators
//! and the local operator.
use outpost_certs::TenantId;

use crate::row_scope::RowScope;
use crate::scope::Viewer;
use crate::{AdminScope, Store, StoreError, on_pool, parse_id};

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// The tenant's id; `None` for MSP-wide events.
    pub tenant_id: Option<String>,
    /// The tenant's current name, when it still exists.
    pub tenant_name: Option<String>,
    /// Who.
    pub actor: String,
    /// From where (client or peer address).
    pub source: Option<String>,
    /// What (`device.add`, …).
    pub action: String,
    /// To what.
    pub object: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Canonical JSON.
    pub details: String,
    /// This record's chain hash.
    pub hash: String,
}

/// Which records to read: `from_ms <= at_ms < to_ms`, after `after_seq`, in
/// seq order, at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct AuditQuery {
    /// Start of the range, Unix ms (inclusive).
    pub from_ms: i64,
    /// End of the range, Unix ms (exclusive).
    pub to_ms: i64,
    /// Only this tenant's records (an MSP-wide viewer's filter; a tenant's
    /// viewer sees only their own anyway).
    pub tenant: Option<TenantId>,
    /// Continue after this seq (0 from the start).
    pub after_seq: i64,
    /// At most this many.
    pub limit: i64,
    /// Newest first instead of oldest first (`after_seq` is then ignored).
    pub newest_first: bool,
}

impl Store {
    /// Records the viewer may see: an MSP-wide viewer every record (or one
    /// tenant's, with `query.tenant`), a tenant's viewer only that tenant's.
    pub async fn audit_records(&self, viewer: &Viewer, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        // `$3`: the tenants whose records to show, comma-separated (none: all).
        let tenant = match (viewer, query.tenant) {
            (Viewer::Admin(_), asked) => asked.map(|t| t.to_string()),
            (_, Some(asked)) if !viewer.sees(asked) => return Ok(Vec::new()),
            (_, Some(asked)) => Some(asked.to_string()),
            (_, None) => viewer.tenant_filter(),
        };
        let sql = if query.newest_first {
            "SELECT l.seq, l.at_ms, l.tenant_id, t.name AS tenant_name, l.actor, l.source, l.action, l.object, \
             l.outcome, l.details, l.hash FROM audit_log l LEFT JOIN tenants t ON t.id = l.tenant_id \
             WHERE l.at_ms >= $1 AND l.at_ms < $2 AND ($3 IS NULL OR (',' || $3 || ',') LIKE ('%,' || l.tenant_id || ',%')) AND l.seq > $4 \
             ORDER BY l.seq DESC LIMIT $5"
        } else {
            "SELECT l.seq, l.at_ms, l.tenant_id, t.name AS tenant_name, l.actor, l.source, l.action, l.object, \
             l.outcome, l.details, l.hash FROM audit_log l LEFT JOIN tenants t ON t.id = l.tenant_id \
             WHERE l.at_ms >= $1 AND l.at_ms < $2 AND ($3 IS NULL OR (',' || $3 || ',') LIKE ('%,' || l.tenant_id || ',%')) AND l.seq > $4 \
             ORDER BY l.seq LIMIT $5"
        };
        let rows = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(sql)
                .bind(query.from_ms)
                .bind(query.to_ms)
                .bind(tenant)
                // Newest first starts from the newest record.
                .bind(if query.newest_first { 0 } else { query.after_seq })
                .bind(query.limit.max(0))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The id of the tenant named `name`, for filtering the log by tenant.
    pub async fn tenant_by_name(&self, _admin: &AdminScope, name: &str) -> Result<TenantId, StoreError> {
        let row: Option<(String,)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT id FROM tenants WHERE name = $1").bind(name).fetch_optional(pool).await?
        });
        match row {
            Some((id,)) => parse_id("tenant", &id),
            None => Err(StoreError::NotFound(format!("tenant {name:?}"))),
        }
    }
}
