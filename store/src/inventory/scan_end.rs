//! The end of a scan: its row completed and, for a complete scan seen for
//! the first time, the misses counted (hosts gone after
//! [`MISSES_BEFORE_GONE`]) and the stale addresses of the hosts it saw
//! dropped. Rules: the [module above](super).
use std::collections::HashMap;
use std::net::IpAddr;

use super::addr::format_targets;
use super::records::ScanFinishedRow;
use super::{ChangeKind, DiscoveryOutcome, MISSES_BEFORE_GONE, Reporter, to_json};
use crate::StoreError;

/// Whether an address (or host) with these marks was seen by `scan` or by
/// anything since `started_ms` (agent clock; 0 when unknown).
fn seen(scan: &str, started_ms: i64, last_scan_id: &str, last_seen_ms: i64) -> bool {
    last_scan_id == scan || (started_ms > 0 && last_seen_ms >= started_ms)
}

macro_rules! scan_end_impl {
    ($engine:ident) => {
use super::super::reconcile::$engine::{change, primary};

/// Completes the scan's row; for a complete scan, the first time it ends,
/// counts the misses.
pub(crate) async fn finished(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    observed_at: i64,
    f: &ScanFinishedRow,
    out: &mut DiscoveryOutcome,
) -> Result<(), StoreError> {
    let scan = f.scan_id.as_str();
    let before: Option<(Option<i64>,)> = sqlx::query_as("SELECT finished_ms FROM discovery_scans WHERE id = $1")
        .bind(scan)
        .fetch_optional(&mut **tx)
        .await?;
    let first_finish = before.is_none_or(|(finished,)| finished.is_none());
    let at = if f.finished_ms > 0 { f.finished_ms } else { observed_at };
    let targets = format_targets(&f.targets);
    sqlx::query(
        "INSERT INTO discovery_scans (id, tenant_id, site_id, agent_id, job_id, source, state, created_at_ms, \
         started_ms, finished_ms, targets, addresses, hosts_found, partial, warnings, icmp, probes_sent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, \
         job_id = CASE WHEN excluded.job_id = '' THEN discovery_scans.job_id ELSE excluded.job_id END, \
         source = excluded.source, state = excluded.state, started_ms = excluded.started_ms, \
         finished_ms = excluded.finished_ms, targets = excluded.targets, addresses = excluded.addresses, \
         hosts_found = excluded.hosts_found, partial = excluded.partial, warnings = excluded.warnings, \
         icmp = excluded.icmp, probes_sent = excluded.probes_sent",
    )
    .bind(scan)
    .bind(from.tenant)
    .bind(from.site)
    .bind(from.agent)
    .bind(f.job_id.as_str())
    .bind(f.source.as_str())
    .bind(if f.partial { "partial" } else { "finished" })
    .bind(crate::now_ms())
    .bind(f.started_ms)
    .bind(at)
    .bind(&targets)
    .bind(f.addresses)
    .bind(f.hosts_found)
    .bind(i64::from(f.partial))
    .bind(to_json(&f.warnings))
    .bind(f.icmp.as_str())
    .bind(f.probes_sent)
    .execute(&mut **tx)
    .await?;
    if f.partial || !first_finish {
        return Ok(());
    }
    misses(tx, from, at, f, out).await
}

/// Counts a complete scan's misses and drops the stale addresses of the
/// hosts it saw.
async fn misses(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    at: i64,
    f: &ScanFinishedRow,
    out: &mut DiscoveryOutcome,
) -> Result<(), StoreError> {
    let scan = f.scan_id.as_str();
    let hosts: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, last_scan_id, last_seen_ms, missed_scans FROM hosts \
         WHERE tenant_id = $1 AND site_id = $2 AND gone_at_ms IS NULL",
    )
    .bind(from.tenant)
    .bind(from.site)
    .fetch_all(&mut **tx)
    .await?;
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT a.host_id, a.address, a.last_scan_id, a.last_seen_ms FROM host_addresses a \
         JOIN hosts h ON h.id = a.host_id WHERE h.tenant_id = $1 AND h.site_id = $2 AND h.gone_at_ms IS NULL",
    )
    .bind(from.tenant)
    .bind(from.site)
    .fetch_all(&mut **tx)
    .await?;
    // host -> [(address, covered by the scan, seen by it)]
    let mut addresses: HashMap<&str, Vec<(&str, bool, bool)>> = HashMap::new();
    for (host, address, last_scan_id, last_seen_ms) in &rows {
        let Ok(ip) = address.parse::<IpAddr>() else {
            tracing::warn!(host = %host, address = %address, "unreadable host address skipped");
            continue;
        };
        let covered = f.targets.iter().any(|t| t.contains(ip));
        let was_seen = seen(scan, f.started_ms, last_scan_id, *last_seen_ms);
        addresses.entry(host.as_str()).or_default().push((address.as_str(), covered, was_seen));
    }
    for (id, last_scan_id, last_seen_ms, missed) in &hosts {
        let Some(list) = addresses.get(id.as_str()) else { continue };
        if !list.iter().any(|(_, covered, _)| *covered) {
            continue;
        }
        if seen(scan, f.started_ms, last_scan_id, *last_seen_ms) {
            let stale: Vec<&str> = list.iter().filter(|(_, c, s)| *c && !*s).map(|(a, ..)| *a).collect();
            if !stale.is_empty() && stale.len() < list.len() {
                for address in stale {
                    sqlx::query("DELETE FROM host_addresses WHERE host_id = $1 AND address = $2")
                        .bind(id.as_str())
                        .bind(address)
                        .execute(&mut **tx)
                        .await?;
                }
                primary(tx, id).await?;
            }
            continue;
        }
        let missed = missed + 1;
        let gone = missed >= MISSES_BEFORE_GONE;
        sqlx::query(
            "UPDATE hosts SET missed_scans = $1, gone_at_ms = $2, updated_at_ms = $3 WHERE id = $4",
        )
        .bind(missed)
        .bind(gone.then_some(at))
        .bind(crate::now_ms())
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?;
        if gone {
            let detail = format!("not seen by {missed} complete scans in a row");
            change(tx, from.tenant, from.site, id, at, ChangeKind::HostGone, &detail, scan).await?;
            out.changes += 1;
        }
    }
    Ok(())
}
    };
}

/// The end of a scan's SQL, compiled once per engine (see `reconcile`).
pub(super) mod sqlite {
    use super::*;
    type DB = sqlx::Sqlite;
    scan_end_impl!(sqlite);
}

pub(super) mod postgres {
    use super::*;
    type DB = sqlx::Postgres;
    scan_end_impl!(postgres);
}
