//! Scans: the ones the console asked for ("scan now"), and every one an
//! agent reported, for the console's progress and history. An agent's
//! reports create and complete the rows (see `reconcile`); this module
//! records requests and reads.
use std::str::FromStr;

use outpost_certs::{AgentId, SiteId, TenantId};

use super::addr::{Target, parse_targets};
use super::{JobId, ScanId, from_json};
use crate::row_scope::RowScope;
use crate::scope::{TenantScope, Viewer};
use crate::{Store, StoreError, now_ms, on_pool, parse_id};

/// Where a scan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanState {
    /// Asked for; the agent has reported nothing yet.
    Requested,
    /// Hosts are arriving.
    Running,
    /// Finished completely.
    Finished,
    /// Stopped early or cut short: its misses were not counted.
    Partial,
}

impl ScanState {
    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Partial => "partial",
        }
    }
}

impl FromStr for ScanState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "requested" => Self::Requested,
            "running" => Self::Running,
            "finished" => Self::Finished,
            "partial" => Self::Partial,
            other => return Err(StoreError::Corrupt(format!("scan state {other:?}"))),
        })
    }
}

/// A scan as listed.
#[derive(Clone, Debug)]
pub struct ScanRow {
    /// Its id.
    pub id: ScanId,
    /// Tenant.
    pub tenant: TenantId,
    /// Site.
    pub site: SiteId,
    /// The agent running it (the one asked, until one reports).
    pub agent: Option<AgentId>,
    /// The job ("" for the agent's default scan).
    pub job_id: String,
    /// `scan` or `nmap-import` (empty until it finished).
    pub source: String,
    /// Where it is.
    pub state: ScanState,
    /// When the collector first heard of it.
    pub created_at_ms: i64,
    /// When the console asked for it.
    pub requested_at_ms: Option<i64>,
    /// Agent clock.
    pub started_ms: Option<i64>,
    /// Agent clock.
    pub finished_ms: Option<i64>,
    /// What it covered (known when it finished).
    pub targets: Vec<Target>,
    /// Addresses probed.
    pub addresses: i64,
    /// Hosts found, as the agent counted.
    pub hosts_found: i64,
    /// Host records received so far.
    pub hosts_reported: i64,
    /// What went wrong.
    pub warnings: Vec<String>,
    /// `raw`, `dgram` or `none`.
    pub icmp: String,
    /// Probes sent.
    pub probes_sent: i64,
}

const SCAN_COLUMNS: &str = "id, tenant_id, site_id, agent_id, job_id, source, state, created_at_ms, requested_at_ms, \
    started_ms, finished_ms, targets, addresses, hosts_found, hosts_reported, warnings, icmp, probes_sent";

fn scan_row<R: sqlx::Row>(r: &R) -> Result<ScanRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let s = |i: usize| r.try_get::<String, _>(i);
    let agent: Option<String> = r.try_get(3)?;
    Ok(ScanRow {
        id: s(0)?.parse().map_err(StoreError::Corrupt)?,
        tenant: parse_id("tenant", &s(1)?)?,
        site: parse_id("site", &s(2)?)?,
        agent: agent.map(|a| parse_id("agent", &a)).transpose()?,
        job_id: s(4)?,
        source: s(5)?,
        state: s(6)?.parse()?,
        created_at_ms: r.try_get(7)?,
        requested_at_ms: r.try_get(8)?,
        started_ms: r.try_get(9)?,
        finished_ms: r.try_get(10)?,
        targets: parse_targets(&s(11)?).map_err(StoreError::Corrupt)?,
        addresses: r.try_get(12)?,
        hosts_found: r.try_get(13)?,
        hosts_reported: r.try_get(14)?,
        warnings: from_json("scan warnings", &s(15)?)?,
        icmp: s(16)?,
        probes_sent: r.try_get(17)?,
    })
}

impl Store {
    /// The connected, unrevoked agents of a site of the scope's tenant,
    /// longest connected first: who a "scan now" can go to.
    pub async fn connected_site_agents(&self, scope: &TenantScope, site: SiteId) -> Result<Vec<AgentId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query_as(
                "SELECT id FROM agents WHERE site_id = $1 AND tenant_id = $2 AND connected_since_ms IS NOT NULL \
                 AND revoked_at_ms IS NULL ORDER BY connected_since_ms, id",
            )
            .bind(site.to_string())
            .bind(scope.tenant().to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(|(a,)| parse_id("agent", &a)).collect()
    }

    /// Records that `agent` is asked to run scan `scan` of a live site of
    /// the scope's tenant (with a live job of that site, or the agent's
    /// default one). `NotFound` for another tenant's site or job, or a job
    /// of another site.
    pub async fn record_scan_request(
        &self,
        scope: &TenantScope,
        site: SiteId,
        scan: &ScanId,
        job: Option<JobId>,
        agent: AgentId,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let tenant = scope.tenant().to_string();
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let mut tx = pool.begin().await?;
            // Write first: on SQLite a transaction that reads before it
            // writes fails with "database is locked" (no wait) when another
            // writer committed in between; a write takes the lock, waiting.
            sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
                .bind(&tenant)
                .execute(&mut *tx)
                .await?;
            let live: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM sites WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
            )
            .bind(site.to_string())
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Err(StoreError::NotFound(format!("site {site}")));
            }
            if let Some(job) = job {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM discovery_jobs WHERE id = $1 AND tenant_id = $2 AND site_id = $3 \
                     AND deleted_at_ms IS NULL",
                )
                .bind(job.to_string())
                .bind(&tenant)
                .bind(site.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(StoreError::NotFound(format!("discovery job {job} of site {site}")));
                }
            }
            let n = sqlx::query(
                "INSERT INTO discovery_scans (id, tenant_id, site_id, agent_id, job_id, state, created_at_ms, \
                 requested_at_ms) VALUES ($1, $2, $3, $4, $5, 'requested', $6, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(scan.as_str())
            .bind(&tenant)
            .bind(site.to_string())
            .bind(agent.to_string())
            .bind(job.map(|j| j.to_string()).unwrap_or_default())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict(format!("scan {scan} exists already")));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Forgets a requested scan no agent could be asked to run (nothing was
    /// reported about it yet).
    pub async fn forget_scan_request(&self, scope: &TenantScope, scan: &ScanId) -> Result<(), StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query("DELETE FROM discovery_scans WHERE id = $1 AND tenant_id = $2 AND state = 'requested'")
                .bind(scan.as_str())
                .bind(scope.tenant().to_string())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Scans of the viewer's tenants (optionally of one site), newest first.
    pub async fn list_scans(
        &self,
        viewer: &Viewer,
        site: Option<SiteId>,
        limit: u32,
    ) -> Result<Vec<ScanRow>, StoreError> {
        let tenant = viewer.tenant_filter();
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM discovery_scans WHERE ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || tenant_id || ',%')) \
             AND ($2 IS NULL OR site_id = $2) ORDER BY created_at_ms DESC, id LIMIT $3"
        );
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            // Built from this module's constants only; values are bound.
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(site.map(|s| s.to_string()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(scan_row).collect()
        })
    }

    /// One scan of the viewer's tenants; `NotFound` for another tenant's.
    pub async fn scan(&self, viewer: &Viewer, scan: &ScanId) -> Result<ScanRow, StoreError> {
        let tenant = viewer.tenant_filter();
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM discovery_scans WHERE id = $1 AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || tenant_id || ',%'))"
        );
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(scan.as_str())
                .bind(tenant)
                .fetch_optional(pool)
                .await?;
            match row {
                Some(r) => scan_row(&r),
                None => Err(StoreError::NotFound(format!("scan {scan}"))),
            }
        })
    }
}
