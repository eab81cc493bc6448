//! Tenants and sites.
use outpost_certs::{SiteId, TenantId};

use super::audit::{Actor, AppendAudit, AuditEvent, Details};
use super::{AdminScope, Store, StoreError, now_ms, on_pool, parse_id};
use crate::row_scope::RowScope;

/// The result of [`Store::ensure_site`].
#[derive(Clone, Copy, Debug)]
pub struct EnsuredSite {
    /// The tenant.
    pub tenant: TenantId,
    /// The site.
    pub site: SiteId,
    /// Whether the tenant was created by this call.
    pub tenant_created: bool,
    /// Whether the site was created by this call.
    pub site_created: bool,
}

/// A site with its tenant, for listings.
#[derive(Clone, Debug)]
pub struct SiteRow {
    /// Tenant id.
    pub tenant: TenantId,
    /// Tenant name.
    pub tenant_name: String,
    /// Site id.
    pub site: SiteId,
    /// Site name.
    pub site_name: String,
}

/// Checks a tenant or site name: 1 to 64 characters, no control characters,
/// no leading or trailing space.
pub fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(format!("{kind} name must be 1 to 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{kind} name must not contain control characters"));
    }
    if name.trim() != name {
        return Err(format!("{kind} name must not start or end with a space"));
    }
    Ok(())
}

impl Store {
    /// Finds or creates the tenant and the (live) site of that name.
    pub async fn ensure_site(
        &self,
        _admin: &AdminScope,
        tenant_name: &str,
        site_name: &str,
    ) -> Result<EnsuredSite, StoreError> {
        let now = now_ms();
        on_pool!(self, RowScope::All, pool, _Db => {
            let mut tx = pool.begin().await?;
            let tenant_created = sqlx::query(
                "INSERT INTO tenants (id, name, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(TenantId::random().to_string())
            .bind(tenant_name)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let (tenant_id,): (String,) = sqlx::query_as("SELECT id FROM tenants WHERE name = $1")
                .bind(tenant_name)
                .fetch_one(&mut *tx)
                .await?;
            let site_created = sqlx::query(
                "INSERT INTO sites (id, tenant_id, name, created_at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, name) WHERE deleted_at_ms IS NULL DO NOTHING",
            )
            .bind(SiteId::random().to_string())
            .bind(&tenant_id)
            .bind(site_name)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let (site_id,): (String,) = sqlx::query_as(
                "SELECT id FROM sites WHERE tenant_id = $1 AND name = $2 AND deleted_at_ms IS NULL",
            )
            .bind(&tenant_id)
            .bind(site_name)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(EnsuredSite {
                tenant: parse_id("tenant", &tenant_id)?,
                site: parse_id("site", &site_id)?,
                tenant_created,
                site_created,
            })
        })
    }

    /// Marks a site deleted: its unused enrollment tokens stop working and its
    /// agents are revoked (refused at the handshake, their connections closed
    /// by the revocation refresh), in one transaction, with audit records of
    /// the deletion (`site.delete`) and of each revocation (`agent.revoke`).
    /// Returns the site and how many agents were revoked.
    pub async fn delete_site(
        &self,
        _admin: &AdminScope,
        tenant_name: &str,
        site_name: &str,
        actor: &Actor,
    ) -> Result<(SiteId, u64), StoreError> {
        let now = now_ms();
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let row: Option<(String, String)> = sqlx::query_as(
                "UPDATE sites SET deleted_at_ms = $1 WHERE deleted_at_ms IS NULL AND name = $2 \
                 AND tenant_id = (SELECT id FROM tenants WHERE name = $3) RETURNING id, tenant_id",
            )
            .bind(now)
            .bind(site_name)
            .bind(tenant_name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, tenant)) = row else {
                return Err(StoreError::NotFound(format!("site {site_name:?} of tenant {tenant_name:?}")));
            };
            let revoked: Vec<(String,)> = sqlx::query_as(
                "UPDATE agents SET revoked_at_ms = $1, connected_since_ms = NULL WHERE site_id = $2 AND revoked_at_ms IS NULL \
                 RETURNING id",
            )
            .bind(now)
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?;
            let tenant_id: TenantId = parse_id("tenant", &tenant)?;
            let mut events = vec![AuditEvent::success(Some(tenant_id), "site.delete", format!("site {id}")).with(
                Details::new()
                    .text("site_name", site_name)
                    .number("agents_revoked", i64::try_from(revoked.len()).unwrap_or(i64::MAX)),
            )];
            events.extend(revoked.iter().map(|(agent,)| {
                AuditEvent::success(Some(tenant_id), "agent.revoke", format!("agent {agent}"))
                    .with(Details::new().text("because", "site deleted"))
            }));
            <Db as AppendAudit>::append(&mut tx, actor, &events).await?;
            tx.commit().await?;
            Ok((parse_id("site", &id)?, revoked.len() as u64))
        })
    }

    /// Every live site with its tenant, ordered by tenant then site name.
    pub async fn sites(&self, viewer: &super::scope::Viewer) -> Result<Vec<SiteRow>, StoreError> {
        let tenant_filter = viewer.tenant_filter();
        let rows: Vec<(String, String, String, String)> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT t.id, t.name, s.id, s.name FROM sites s JOIN tenants t ON t.id = s.tenant_id \
                 WHERE s.deleted_at_ms IS NULL AND ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || t.id || ',%')) ORDER BY t.name, s.name",
            )
            .bind(tenant_filter)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(t, tn, s, sn)| {
                Ok(SiteRow {
                    tenant: parse_id("tenant", &t)?,
                    tenant_name: tn,
                    site: parse_id("site", &s)?,
                    site_name: sn,
                })
            })
            .collect()
    }
}
