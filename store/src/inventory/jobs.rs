//! Discovery jobs (what a site's agents scan, how fast, how often, with which
//! SNMP credentials) and the site credential profile (the RouterOS login
//! discovered routers are adopted with).
//!
//! Secrets are stored sealed with the tenant's vault key, as device passwords
//! are: the SNMP credentials of a job as one sealed value bound to the job id,
//! the profile's password bound to the site id. The store never sees them in
//! clear; the agent port opens a job's credentials when it sends the site's
//! jobs to its agents, and adoption reseals the profile's password for the
//! new device.
use outpost_certs::{SiteId, TenantId};

use super::JobId;
use super::addr::{PortList, Target, format_targets, parse_targets};
use crate::row_scope::RowScope;
use crate::scope::{AgentScope, TenantScope, Viewer};
use crate::{Store, StoreError, now_ms, on_pool, parse_id};

/// Most targets in one job.
pub const MAX_TARGETS: usize = 64;
/// Addresses one job may cover in all: what an agent scans in one job
/// unless its operator raised `discovery_max_addresses`
/// (`outpost_discovery::targets::DEFAULT_MAX_ADDRESSES`; a test in
/// `outpost-tests` keeps the two equal). A job over it would be refused by
/// every agent, so it is refused here, where the operator sees why.
pub const MAX_JOB_ADDRESSES: u128 = 4096;
/// Highest probe rate a job may ask for.
pub const MAX_RATE_PPS: u32 = 100_000;
/// Shortest interval between scheduled runs (0: on demand only).
pub const MIN_INTERVAL_SECS: u32 = 60;
/// Longest interval between scheduled runs (30 days).
pub const MAX_INTERVAL_SECS: u32 = 30 * 86_400;

/// A job to add. The caller makes the id first, because the sealed SNMP
/// credentials are bound to it.
#[derive(Clone)]
pub struct NewJob {
    /// Its id (see [`JobId::random`]).
    pub id: JobId,
    /// The site whose agents run it.
    pub site: SiteId,
    /// Networks and addresses to scan.
    pub targets: Vec<Target>,
    /// TCP ports; empty: the agent's default list.
    pub ports: PortList,
    /// Probes per second; 0: the agent's default.
    pub rate_pps: u32,
    /// Seconds between scheduled runs; 0: on demand only.
    pub interval_secs: u32,
    /// The SNMP credentials, sealed (none: SNMP is not tried).
    pub snmp_sealed: Option<Vec<u8>>,
    /// What the credentials are, without secrets ("1 community, 1 v3 user").
    pub snmp_summary: String,
}

impl std::fmt::Debug for NewJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewJob")
            .field("id", &self.id)
            .field("targets", &format_targets(&self.targets))
            .field("snmp_summary", &self.snmp_summary)
            .finish_non_exhaustive()
    }
}

/// Checks a job's settings; the error names what is wrong.
pub fn validate_job(targets: &[Target], rate_pps: u32, interval_secs: u32) -> Result<(), String> {
    if targets.is_empty() || targets.len() > MAX_TARGETS {
        return Err(format!("a job needs 1 to {MAX_TARGETS} targets"));
    }
    let count = targets.iter().map(Target::probed).fold(0u128, u128::saturating_add);
    if count > MAX_JOB_ADDRESSES {
        return Err(format!(
            "the targets hold {count} addresses, more than the {MAX_JOB_ADDRESSES} an agent scans in one job: \
             split them into several jobs (a /20 of IPv4 holds 4094)"
        ));
    }
    if rate_pps > MAX_RATE_PPS {
        return Err(format!(
            "rate must be at most {MAX_RATE_PPS} probes per second (0: the agent's default)"
        ));
    }
    if interval_secs != 0 && !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval_secs) {
        return Err(format!(
            "interval must be 0 (on demand only) or {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS} seconds"
        ));
    }
    Ok(())
}

/// A job as listed (no secrets).
#[derive(Clone, Debug)]
pub struct JobRow {
    /// Its id.
    pub id: JobId,
    /// Tenant.
    pub tenant: TenantId,
    /// Tenant name.
    pub tenant_name: String,
    /// Site.
    pub site: SiteId,
    /// Site name.
    pub site_name: String,
    /// Targets.
    pub targets: Vec<Target>,
    /// Ports (empty: the agent's default list).
    pub ports: PortList,
    /// Probes per second (0: default).
    pub rate_pps: u32,
    /// Seconds between runs (0: on demand only).
    pub interval_secs: u32,
    /// What the SNMP credentials are; empty when there are none.
    pub snmp_summary: String,
    /// Added.
    pub created_at_ms: i64,
}

/// A job as the agent port sends it (credentials still sealed).
#[derive(Clone)]
pub struct AssignedJob {
    /// Its id.
    pub id: JobId,
    /// Its tenant (the vault key to open the credentials with).
    pub tenant: TenantId,
    /// Targets.
    pub targets: Vec<Target>,
    /// Ports.
    pub ports: PortList,
    /// Probes per second.
    pub rate_pps: u32,
    /// Seconds between runs.
    pub interval_secs: u32,
    /// Sealed SNMP credentials.
    pub snmp_sealed: Option<Vec<u8>>,
}

impl std::fmt::Debug for AssignedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssignedJob")
            .field("id", &self.id)
            .field("targets", &format_targets(&self.targets))
            .finish_non_exhaustive()
    }
}

/// A cheap fingerprint of a site's jobs: when it changes, its agents must be
/// sent the jobs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct JobsVersion {
    count: i64,
    updated_at_ms: i64,
}

/// A site's credential profile, without the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteCredential {
    /// RouterOS user.
    pub username: String,
    /// Last set.
    pub updated_at_ms: i64,
}

fn u32_of(what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v}")))
}

fn targets_of(text: &str) -> Result<Vec<Target>, StoreError> {
    parse_targets(text).map_err(StoreError::Corrupt)
}

fn ports_of(text: &str) -> Result<PortList, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

type AssignedTuple = (String, String, String, String, i64, i64, Option<Vec<u8>>);
type JobTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
);

fn job_row(r: JobTuple) -> Result<JobRow, StoreError> {
    let (id, tenant, tenant_name, site, site_name, targets, ports, rate, interval, summary, created) = r;
    Ok(JobRow {
        id: parse_id("job", &id)?,
        tenant: parse_id("tenant", &tenant)?,
        tenant_name,
        site: parse_id("site", &site)?,
        site_name,
        targets: targets_of(&targets)?,
        ports: ports_of(&ports)?,
        rate_pps: u32_of("rate", rate)?,
        interval_secs: u32_of("interval", interval)?,
        snmp_summary: summary,
        created_at_ms: created,
    })
}

impl Store {
    /// Adds a discovery job to a live site of the scope's tenant; the site's
    /// agents get it within seconds. `NotFound` for a site of another tenant.
    pub async fn add_discovery_job(&self, scope: &TenantScope, job: &NewJob) -> Result<JobId, StoreError> {
        validate_job(&job.targets, job.rate_pps, job.interval_secs).map_err(StoreError::Conflict)?;
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
            let site: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM sites WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
            )
            .bind(job.site.to_string())
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            if site.is_none() {
                return Err(StoreError::NotFound(format!("site {}", job.site)));
            }
            sqlx::query(
                "INSERT INTO discovery_jobs (id, tenant_id, site_id, targets, ports, rate_pps, interval_secs, \
                 snmp_sealed, snmp_summary, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(job.id.to_string())
            .bind(&tenant)
            .bind(job.site.to_string())
            .bind(format_targets(&job.targets))
            .bind(job.ports.to_string())
            .bind(i64::from(job.rate_pps))
            .bind(i64::from(job.interval_secs))
            .bind(job.snmp_sealed.as_deref())
            .bind(&job.snmp_summary)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(job.id)
        })
    }

    /// Deletes a job of the scope's tenant; its site's agents stop running it.
    pub async fn delete_discovery_job(&self, scope: &TenantScope, job: JobId) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            // Deletion bumps updated_at_ms: the site's jobs version moves.
            let n = sqlx::query(
                "UPDATE discovery_jobs SET deleted_at_ms = $1, updated_at_ms = $1 \
                 WHERE id = $2 AND tenant_id = $3 AND deleted_at_ms IS NULL",
            )
            .bind(now)
            .bind(job.to_string())
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("discovery job {job}")));
            }
            Ok(())
        })
    }

    /// The live jobs the viewer may see, optionally of one site, by tenant,
    /// site and creation.
    pub async fn list_discovery_jobs(&self, viewer: &Viewer, site: Option<SiteId>) -> Result<Vec<JobRow>, StoreError> {
        let tenant = viewer.tenant_filter();
        let rows: Vec<JobTuple> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT j.id, j.tenant_id, t.name, j.site_id, s.name, j.targets, j.ports, j.rate_pps, j.interval_secs, \
                 j.snmp_summary, j.created_at_ms FROM discovery_jobs j JOIN tenants t ON t.id = j.tenant_id \
                 JOIN sites s ON s.id = j.site_id WHERE j.deleted_at_ms IS NULL \
                 AND ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || j.tenant_id || ',%')) AND ($2 IS NULL OR j.site_id = $2) \
                 ORDER BY t.name, s.name, j.created_at_ms, j.id",
            )
            .bind(tenant)
            .bind(site.map(|s| s.to_string()))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(job_row).collect()
    }

    /// One live job of the viewer's tenants.
    pub async fn discovery_job(&self, viewer: &Viewer, job: JobId) -> Result<JobRow, StoreError> {
        self.list_discovery_jobs(viewer, None)
            .await?
            .into_iter()
            .find(|j| j.id == job)
            .ok_or_else(|| StoreError::NotFound(format!("discovery job {job}")))
    }

    /// The version of the agent's site's jobs (see [`JobsVersion`]).
    pub async fn discovery_jobs_version(&self, scope: &AgentScope) -> Result<JobsVersion, StoreError> {
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            // Deleted rows count too: deleting moves MAX(updated_at_ms).
            let (count, updated_at_ms): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(updated_at_ms) FROM discovery_jobs WHERE site_id = $1 AND tenant_id = $2",
            )
            .bind(scope.site().to_string())
            .bind(scope.tenant().to_string())
            .fetch_one(pool)
            .await?;
            Ok(JobsVersion { count, updated_at_ms: updated_at_ms.unwrap_or(0) })
        })
    }

    /// The live jobs of the agent's site.
    pub async fn assigned_discovery_jobs(&self, scope: &AgentScope) -> Result<Vec<AssignedJob>, StoreError> {
        let rows: Vec<AssignedTuple> = on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query_as(
                "SELECT id, tenant_id, targets, ports, rate_pps, interval_secs, snmp_sealed FROM discovery_jobs \
                 WHERE site_id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL ORDER BY created_at_ms, id",
            )
            .bind(scope.site().to_string())
            .bind(scope.tenant().to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, tenant, targets, ports, rate, interval, snmp_sealed)| {
                Ok(AssignedJob {
                    id: parse_id("job", &id)?,
                    tenant: parse_id("tenant", &tenant)?,
                    targets: targets_of(&targets)?,
                    ports: ports_of(&ports)?,
                    rate_pps: u32_of("rate", rate)?,
                    interval_secs: u32_of("interval", interval)?,
                    snmp_sealed,
                })
            })
            .collect()
    }

    /// Sets the RouterOS login discovered routers of a live site of the
    /// scope's tenant are adopted with (the password sealed by the caller,
    /// bound to the site). `NotFound` for another tenant's site.
    pub async fn set_site_credential(
        &self,
        scope: &TenantScope,
        site: SiteId,
        username: &str,
        password_sealed: &[u8],
    ) -> Result<(), StoreError> {
        if username.is_empty() || username.len() > 64 || username.chars().any(char::is_control) {
            return Err(StoreError::Conflict(
                "user name must be 1 to 64 printable characters".into(),
            ));
        }
        let now = now_ms();
        let tenant = scope.tenant().to_string();
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let mut tx = pool.begin().await?;
            // Write first (see add_discovery_job).
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
            sqlx::query(
                "INSERT INTO site_credentials (site_id, tenant_id, username, password_sealed, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site_id) DO UPDATE SET username = excluded.username, \
                 password_sealed = excluded.password_sealed, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(site.to_string())
            .bind(&tenant)
            .bind(username)
            .bind(password_sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The credential profile of a site of the scope's tenant, if one is set.
    pub async fn site_credential(
        &self,
        scope: &TenantScope,
        site: SiteId,
    ) -> Result<Option<SiteCredential>, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let row: Option<(String, i64)> = sqlx::query_as(
                "SELECT username, updated_at_ms FROM site_credentials WHERE site_id = $1 AND tenant_id = $2",
            )
            .bind(site.to_string())
            .bind(scope.tenant().to_string())
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(username, updated_at_ms)| SiteCredential { username, updated_at_ms }))
        })
    }
}
