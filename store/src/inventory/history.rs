//! What changed in the inventory: one host's history, and every change of
//! the viewer's hosts since a moment (the console's "what changed" feed, and
//! a documentation tool's incremental sync).
use outpost_certs::{SiteId, TenantId};

use super::{ChangeKind, HostId};
use crate::row_scope::RowScope;
use crate::scope::Viewer;
use crate::{Store, StoreError, on_pool, parse_id};

/// One change of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostChange {
    /// Increasing with every change recorded (a cursor for paging).
    pub id: i64,
    /// Tenant.
    pub tenant: TenantId,
    /// Site.
    pub site: SiteId,
    /// The host.
    pub host: HostId,
    /// The host's primary address now.
    pub host_address: String,
    /// The host's name now.
    pub host_name: String,
    /// When it was seen, agent clock (adoption: collector clock).
    pub at_ms: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// In words, e.g. "192.0.2.4 → 192.0.2.9" or "22/tcp ssh".
    pub detail: String,
    /// The scan that saw it ("" for an operator's action).
    pub scan_id: String,
}

type ChangeTuple = (i64, String, String, String, String, String, i64, String, String, String);

fn change_row(r: ChangeTuple) -> Result<HostChange, StoreError> {
    let (id, tenant, site, host, host_address, host_name, at_ms, kind, detail, scan_id) = r;
    Ok(HostChange {
        id,
        tenant: parse_id("tenant", &tenant)?,
        site: parse_id("site", &site)?,
        host: parse_id("host", &host)?,
        host_address,
        host_name,
        at_ms,
        kind: kind.parse()?,
        detail,
        scan_id,
    })
}

impl Store {
    /// Changes of the viewer's hosts (optionally of one site) seen at or
    /// after `since_ms`, newest first, at most `limit`.
    pub async fn host_changes_since(
        &self,
        viewer: &Viewer,
        site: Option<SiteId>,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<HostChange>, StoreError> {
        let tenant = viewer.tenant_filter();
        let rows: Vec<ChangeTuple> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT c.id, c.tenant_id, c.site_id, c.host_id, h.address, h.name, c.at_ms, c.kind, c.detail, c.scan_id \
                 FROM host_changes c JOIN hosts h ON h.id = c.host_id \
                 WHERE c.at_ms >= $1 AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || c.tenant_id || ',%')) AND ($3 IS NULL OR c.site_id = $3) \
                 ORDER BY c.at_ms DESC, c.id DESC LIMIT $4",
            )
            .bind(since_ms)
            .bind(tenant)
            .bind(site.map(|s| s.to_string()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(change_row).collect()
    }

    /// Changes of the viewer's hosts recorded after the change `after_id`,
    /// oldest first, at most `limit`: an incremental sync's page (the last
    /// id is the next call's cursor).
    pub async fn host_changes_after(
        &self,
        viewer: &Viewer,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<HostChange>, StoreError> {
        let tenant = viewer.tenant_filter();
        let rows: Vec<ChangeTuple> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT c.id, c.tenant_id, c.site_id, c.host_id, h.address, h.name, c.at_ms, c.kind, c.detail, c.scan_id \
                 FROM host_changes c JOIN hosts h ON h.id = c.host_id \
                 WHERE c.id > $1 AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || c.tenant_id || ',%')) \
                 ORDER BY c.id LIMIT $3",
            )
            .bind(after_id)
            .bind(tenant)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(change_row).collect()
    }

    /// The id of the newest change recorded (0 for none): where a live
    /// follower of [`Self::host_changes_after`] starts.
    pub async fn host_change_cursor(&self) -> Result<i64, StoreError> {
        let max: Option<i64> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_scalar("SELECT MAX(id) FROM host_changes").fetch_one(pool).await?
        });
        Ok(max.unwrap_or(0))
    }

    /// One host's changes, newest first; empty for another tenant's host.
    pub async fn host_history(&self, viewer: &Viewer, host: HostId) -> Result<Vec<HostChange>, StoreError> {
        let tenant = viewer.tenant_filter();
        let rows: Vec<ChangeTuple> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT c.id, c.tenant_id, c.site_id, c.host_id, h.address, h.name, c.at_ms, c.kind, c.detail, c.scan_id \
                 FROM host_changes c JOIN hosts h ON h.id = c.host_id \
                 WHERE c.host_id = $1 AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || c.tenant_id || ',%')) ORDER BY c.id DESC",
            )
            .bind(host.to_string())
            .bind(tenant)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(change_row).collect()
    }
}
