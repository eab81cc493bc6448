//! Applying discovery reports inside a batch's transaction. The rules are
//! written down in the [module above](super); this file follows them in
//! order: ownership of the scan and job, matching, addresses, facts, ports.
//! The end of a scan (misses, gone hosts) is `scan_end`.
use std::collections::HashSet;

use super::addr::{address_key, family};
use super::records::{DiscoveryBody, DiscoveryReport, HostRecord, HostsChunk, MndpFacts};
use super::{ChangeKind, DiscoveryOutcome, HostId, Reporter, from_json, to_json};
use crate::StoreError;

/// Most names (and `seen_by` entries) kept per host.
const MAX_NAMES: usize = 16;

/// What matching and merging read of a stored host.
struct Stored {
    id: String,
    mac: String,
    names: Vec<String>,
    seen_by: Vec<String>,
    /// sysDescr, sysObjectID, sysName.
    snmp: (String, String, String),
    mndp_identity: String,
    last_scan_id: String,
    gone: bool,
}

impl Stored {
    fn blank(id: String) -> Self {
        Self {
            id,
            mac: String::new(),
            names: Vec::new(),
            seen_by: Vec::new(),
            snmp: Default::default(),
            mndp_identity: String::new(),
            last_scan_id: String::new(),
            gone: false,
        }
    }
}

/// The columns of [`StoredRow`], as a literal for `concat!`.
macro_rules! stored_columns {
    () => {
        "h.id, h.mac, h.names, h.seen_by, h.snmp_descr, h.snmp_object_id, h.snmp_name, h.mndp, h.last_scan_id, \
         h.gone_at_ms"
    };
}

type StoredRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
);

fn stored(row: StoredRow) -> Result<Stored, StoreError> {
    let (id, mac, names, seen_by, descr, object_id, name, mndp, last_scan_id, gone_at) = row;
    let mndp_identity = match mndp {
        Some(text) => from_json::<MndpFacts>("host MNDP facts", &text)?.identity,
        None => String::new(),
    };
    Ok(Stored {
        id,
        mac,
        names: from_json("host names", &names)?,
        seen_by: seen_by
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        snmp: (descr, object_id, name),
        mndp_identity,
        last_scan_id,
        gone: gone_at.is_some(),
    })
}

/// `old` and `new` together when both come from one scan; `new` alone when a
/// later scan says something; `old` when it says nothing.
fn merge(old: &[String], new: &[String], same_scan: bool) -> Vec<String> {
    let mut out = if same_scan || new.is_empty() {
        old.to_vec()
    } else {
        Vec::new()
    };
    for n in new {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out.truncate(MAX_NAMES);
    out
}

/// The name shown for a host: a reported name, else its sysName, else its
/// MNDP identity.
fn display_name(names: &[String], snmp_name: &str, mndp_identity: &str) -> String {
    names
        .first()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .or(Some(snmp_name).filter(|n| !n.is_empty()))
        .unwrap_or(mndp_identity)
        .to_owned()
}

fn port_label(port: i64, protocol: &str, service: &str) -> String {
    if service.is_empty() {
        format!("{port}/{protocol}")
    } else {
        format!("{port}/{protocol} {service}")
    }
}

macro_rules! reconcile_impl {
    ($engine:ident) => {
/// Appends a host change.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn change(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: &str,
    site: &str,
    host: &str,
    at_ms: i64,
    kind: ChangeKind,
    detail: &str,
    scan: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO host_changes (tenant_id, site_id, host_id, at_ms, kind, detail, scan_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(site)
    .bind(host)
    .bind(at_ms)
    .bind(kind.as_str())
    .bind(detail)
    .bind(scan)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies `reports` of an agent whose batches so far were acknowledged up
/// to `acked_seq`.
pub(crate) async fn apply(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    acked_seq: i64,
    reports: &[DiscoveryReport],
) -> Result<DiscoveryOutcome, StoreError> {
    let mut out = DiscoveryOutcome::default();
    for r in reports {
        if r.seq <= acked_seq {
            out.duplicates += 1;
            continue;
        }
        if let Some(why) = foreign(tx, from, &r.body).await? {
            out.refused.push((r.seq, why));
            continue;
        }
        match &r.body {
            DiscoveryBody::Hosts(chunk) => hosts(tx, from, r.observed_at_ms, chunk, &mut out).await?,
            DiscoveryBody::Finished(f) => {
                super::super::scan_end::$engine::finished(tx, from, r.observed_at_ms, f, &mut out).await?
            }
        }
        out.stored += 1;
    }
    Ok(out)
}

/// Why a report may not touch this site: it names another site's scan or job.
async fn foreign(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    body: &DiscoveryBody,
) -> Result<Option<String>, StoreError> {
    let scan = body.scan_id().as_str();
    let job = body.job_id();
    // Scan and job ids are the collector's or the agent's random ids; one
    // that another tenant holds is refused by name, so look across tenants
    // for these two reads only.
    <DB as crate::row_scope::CrossTenant>::widen(&mut **tx).await?;
    let scan_owner: Option<(String, String)> = sqlx::query_as("SELECT tenant_id, site_id FROM discovery_scans WHERE id = $1")
        .bind(scan)
        .fetch_optional(&mut **tx)
        .await?;
    let job_owner: Option<(String, String)> = if job.is_empty() {
        None
    } else {
        sqlx::query_as("SELECT tenant_id, site_id FROM discovery_jobs WHERE id = $1")
            .bind(job)
            .fetch_optional(&mut **tx)
            .await?
    };
    <DB as crate::row_scope::CrossTenant>::narrow(&mut **tx).await?;
    let elsewhere = |owner: Option<(String, String)>| owner.is_some_and(|(t, s)| t != from.tenant || s != from.site);
    if elsewhere(scan_owner) {
        return Ok(Some(format!("scan {scan} is not a scan of this agent's site")));
    }
    if elsewhere(job_owner) {
        return Ok(Some(format!("job {job} is not a job of this agent's site")));
    }
    Ok(None)
}

async fn hosts(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    at: i64,
    chunk: &HostsChunk,
    out: &mut DiscoveryOutcome,
) -> Result<(), StoreError> {
    let scan = chunk.scan_id.as_str();
    sqlx::query(
        "INSERT INTO discovery_scans (id, tenant_id, site_id, agent_id, job_id, state, created_at_ms, hosts_reported) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7) \
         ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, \
         hosts_reported = discovery_scans.hosts_reported + excluded.hosts_reported, \
         job_id = CASE WHEN discovery_scans.job_id = '' THEN excluded.job_id ELSE discovery_scans.job_id END, \
         state = CASE WHEN discovery_scans.state = 'requested' THEN 'running' ELSE discovery_scans.state END",
    )
    .bind(scan)
    .bind(from.tenant)
    .bind(from.site)
    .bind(from.agent)
    .bind(chunk.job_id.as_str())
    .bind(crate::now_ms())
    .bind(chunk.hosts.len() as i64)
    .execute(&mut **tx)
    .await?;
    let scanned: HashSet<u16> = chunk.scanned_ports.iter().copied().collect();
    for rec in &chunk.hosts {
        host(tx, from, at, scan, &scanned, rec, out).await?;
    }
    Ok(())
}

/// Finds (or creates) the host a record is about; the id of a live host that
/// was flagged with a conflict on the way comes second.
async fn matched(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    at: i64,
    scan: &str,
    rec: &HostRecord,
    out: &mut DiscoveryOutcome,
) -> Result<(Stored, bool, Option<String>), StoreError> {
    let address = rec.address.to_string();
    let mac = rec.mac.map(|m| m.to_string()).unwrap_or_default();
    if !mac.is_empty() {
        let row: Option<StoredRow> = sqlx::query_as(concat!(
            "SELECT ", stored_columns!(), " FROM hosts h WHERE h.tenant_id = $1 AND h.site_id = $2 AND h.mac = $3"
        ))
        .bind(from.tenant)
        .bind(from.site)
        .bind(&mac)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            return Ok((stored(row)?, false, None));
        }
    }
    let row: Option<StoredRow> = sqlx::query_as(concat!(
        "SELECT ", stored_columns!(), " FROM host_addresses a JOIN hosts h ON h.id = a.host_id \
         WHERE a.tenant_id = $1 AND a.site_id = $2 AND a.address = $3 \
         ORDER BY CASE WHEN h.gone_at_ms IS NULL THEN 0 ELSE 1 END, a.last_seen_ms DESC, h.id LIMIT 1"
    ))
    .bind(from.tenant)
    .bind(from.site)
    .bind(&address)
    .fetch_optional(&mut **tx)
    .await?;
    let mut conflicted = None;
    match row.map(stored).transpose()? {
        Some(h) if mac.is_empty() || h.mac.is_empty() => return Ok((h, false, None)),
        Some(h) if !h.gone => {
            let detail = format!("{address} answered with MAC {mac}, not with the host's own {}", h.mac);
            sqlx::query("UPDATE hosts SET conflict = 1, conflict_detail = $1, updated_at_ms = $2 WHERE id = $3")
                .bind(&detail)
                .bind(crate::now_ms())
                .bind(&h.id)
                .execute(&mut **tx)
                .await?;
            change(tx, from.tenant, from.site, &h.id, at, ChangeKind::MacConflict, &detail, scan).await?;
            out.changes += 1;
            conflicted = Some(h.id);
        }
        // A gone host's address answering with another MAC: reused, not a conflict.
        Some(_) | None => {}
    }
    let id = HostId::random().to_string();
    sqlx::query(
        "INSERT INTO hosts (id, tenant_id, site_id, address, address_key, mac, first_seen_ms, last_seen_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
    )
    .bind(&id)
    .bind(from.tenant)
    .bind(from.site)
    .bind(&address)
    .bind(address_key(rec.address))
    .bind(&mac)
    .bind(at)
    .bind(crate::now_ms())
    .execute(&mut **tx)
    .await?;
    let mut detail = address;
    if !mac.is_empty() {
        detail = format!("{detail} {mac}");
    }
    if !rec.vendor.is_empty() {
        detail = format!("{detail} ({})", rec.vendor);
    }
    change(tx, from.tenant, from.site, &id, at, ChangeKind::NewHost, &detail, scan).await?;
    out.new_hosts += 1;
    out.changes += 1;
    Ok((Stored::blank(id), true, conflicted))
}

/// Reconciles one host record.
#[allow(clippy::too_many_arguments)]
async fn host(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    at: i64,
    scan: &str,
    scanned: &HashSet<u16>,
    rec: &HostRecord,
    out: &mut DiscoveryOutcome,
) -> Result<(), StoreError> {
    let (h, is_new, conflicted) = matched(tx, from, at, scan, rec, out).await?;
    let now = crate::now_ms();
    let address = rec.address.to_string();
    let mac = rec.mac.map(|m| m.to_string()).unwrap_or_default();
    let (tenant, site, id) = (from.tenant, from.site, h.id.as_str());
    // New in this scan (maybe by an earlier record: its other address, an
    // earlier chunk): what this record adds is part of `new_host`.
    let fresh = is_new
        || (h.last_scan_id == scan && {
            let created: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM host_changes WHERE host_id = $1 AND kind = $2 AND scan_id = $3 LIMIT 1",
            )
            .bind(id)
            .bind(ChangeKind::NewHost.as_str())
            .bind(scan)
            .fetch_optional(&mut **tx)
            .await?;
            created.is_some()
        });
    if h.gone {
        change(tx, tenant, site, id, at, ChangeKind::HostBack, &format!("seen again at {address}"), scan).await?;
        out.changes += 1;
    }

    let addresses: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT address, family, last_scan_id FROM host_addresses WHERE host_id = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    if addresses.iter().any(|(a, ..)| *a == address) {
        sqlx::query(
            "UPDATE host_addresses SET last_seen_ms = CASE WHEN last_seen_ms < $1 THEN $1 ELSE last_seen_ms END, \
             last_scan_id = $2 WHERE host_id = $3 AND address = $4",
        )
        .bind(at)
        .bind(scan)
        .bind(id)
        .bind(&address)
        .execute(&mut **tx)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO host_addresses (host_id, tenant_id, site_id, address, address_key, family, first_seen_ms, \
             last_seen_ms, last_scan_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        )
        .bind(id)
        .bind(tenant)
        .bind(site)
        .bind(&address)
        .bind(address_key(rec.address))
        .bind(family(rec.address))
        .bind(at)
        .bind(scan)
        .execute(&mut **tx)
        .await?;
        if !fresh {
            let old: Vec<&str> = addresses
                .iter()
                .filter(|(_, f, s)| *f == family(rec.address) && s != scan)
                .map(|(a, ..)| a.as_str())
                .collect();
            let detail = if old.is_empty() {
                format!("also at {address}")
            } else {
                format!("{} → {address}", old.join(", "))
            };
            change(tx, tenant, site, id, at, ChangeKind::IpChanged, &detail, scan).await?;
            out.changes += 1;
        }
        let others: Vec<(String,)> = sqlx::query_as(
            "SELECT a.host_id FROM host_addresses a JOIN hosts h ON h.id = a.host_id \
             WHERE a.tenant_id = $1 AND a.site_id = $2 AND a.address = $3 AND a.host_id <> $4 AND h.gone_at_ms IS NULL \
             ORDER BY a.host_id",
        )
        .bind(tenant)
        .bind(site)
        .bind(&address)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        for (other,) in others {
            if conflicted.as_deref() == Some(other.as_str()) {
                continue;
            }
            let who = if mac.is_empty() { format!("host {id}") } else { format!("MAC {mac} (host {id})") };
            let detail = format!("{address} now answers with {who}");
            change(tx, tenant, site, &other, at, ChangeKind::MacMoved, &detail, scan).await?;
            out.changes += 1;
        }
    }

    let same_scan = h.last_scan_id == scan;
    let names = merge(&h.names, &rec.names, same_scan);
    let seen_by = merge(&h.seen_by, &rec.seen_by, same_scan);
    let mut snmp_name = h.snmp.2.clone();
    if let Some(s) = &rec.snmp {
        if s.error.is_empty() {
            let (old_descr, old_oid, old_name) = &h.snmp;
            let answered_before = !(old_descr.is_empty() && old_oid.is_empty() && old_name.is_empty());
            if answered_before && !fresh {
                let mut diffs = Vec::new();
                if *old_name != s.name {
                    diffs.push(format!("sysName {old_name:?} → {:?}", s.name));
                }
                if *old_oid != s.object_id {
                    diffs.push(format!("sysObjectID {old_oid} → {}", s.object_id));
                }
                if *old_descr != s.descr {
                    diffs.push(format!("sysDescr {old_descr:?} → {:?}", s.descr));
                }
                if !diffs.is_empty() {
                    let detail = diffs.join("; ");
                    change(tx, tenant, site, id, at, ChangeKind::SnmpIdentityChanged, &detail, scan).await?;
                    out.changes += 1;
                }
            }
            sqlx::query(
                "UPDATE hosts SET snmp_descr = $1, snmp_object_id = $2, snmp_name = $3, snmp_location = $4, \
                 snmp_uptime_ticks = $5, snmp_interfaces = $6, snmp_lldp = $7, snmp_error = '' WHERE id = $8",
            )
            .bind(s.descr.as_str())
            .bind(s.object_id.as_str())
            .bind(s.name.as_str())
            .bind(s.location.as_str())
            .bind(s.uptime_ticks)
            .bind(to_json(&s.interfaces))
            .bind(to_json(&s.lldp))
            .bind(id)
            .execute(&mut **tx)
            .await?;
            snmp_name = s.name.clone();
        } else {
            sqlx::query("UPDATE hosts SET snmp_error = $1 WHERE id = $2")
                .bind(s.error.as_str())
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    let mndp_identity = rec.mndp.as_ref().map_or(h.mndp_identity.as_str(), |m| m.identity.as_str());
    let name = display_name(&names, &snmp_name, mndp_identity);
    let (os_guess, os_accuracy) = rec.os.clone().unwrap_or_default();
    sqlx::query(
        "UPDATE hosts SET mac = CASE WHEN mac = '' THEN $1 ELSE mac END, \
         vendor = CASE WHEN $2 = '' THEN vendor ELSE $2 END, name = $3, names = $4, seen_by = $5, \
         rtt_us = COALESCE($6, rtt_us), os_guess = CASE WHEN $7 = '' THEN os_guess ELSE $7 END, \
         os_accuracy = CASE WHEN $7 = '' THEN os_accuracy ELSE $8 END, mndp = COALESCE($9, mndp), \
         last_seen_ms = CASE WHEN last_seen_ms < $10 THEN $10 ELSE last_seen_ms END, last_scan_id = $11, \
         missed_scans = 0, gone_at_ms = NULL, updated_at_ms = $12 WHERE id = $13",
    )
    .bind(&mac)
    .bind(rec.vendor.as_str())
    .bind(&name)
    .bind(to_json(&names))
    .bind(seen_by.join(","))
    .bind(rec.rtt_us)
    .bind(os_guess.as_str())
    .bind(os_accuracy)
    .bind(rec.mndp.as_ref().map(to_json))
    .bind(at)
    .bind(scan)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;

    ports(tx, from, at, scan, scanned, rec, id, fresh, out).await?;
    primary(tx, id).await
}

/// Opens and closes the record's ports on the host.
#[allow(clippy::too_many_arguments)]
async fn ports(
    tx: &mut sqlx::Transaction<'_, DB>,
    from: Reporter<'_>,
    at: i64,
    scan: &str,
    scanned: &HashSet<u16>,
    rec: &HostRecord,
    id: &str,
    fresh: bool,
    out: &mut DiscoveryOutcome,
) -> Result<(), StoreError> {
    let stored: Vec<(String, i64, String, String)> =
        sqlx::query_as("SELECT protocol, port, last_scan_id, service FROM host_ports WHERE host_id = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    let known: HashSet<(&str, i64)> = stored.iter().map(|(p, n, ..)| (p.as_str(), *n)).collect();
    let mut reported: HashSet<(&str, i64)> = HashSet::new();
    for p in &rec.open_ports {
        let key = (p.protocol.as_str(), i64::from(p.port));
        if !reported.insert(key) {
            continue;
        }
        if known.contains(&key) {
            sqlx::query(
                "UPDATE host_ports SET service = CASE WHEN $1 = '' THEN service ELSE $1 END, \
                 product = CASE WHEN $2 = '' THEN product ELSE $2 END, \
                 version = CASE WHEN $3 = '' THEN version ELSE $3 END, \
                 banner = CASE WHEN $4 = '' THEN banner ELSE $4 END, \
                 last_seen_ms = CASE WHEN last_seen_ms < $5 THEN $5 ELSE last_seen_ms END, last_scan_id = $6 \
                 WHERE host_id = $7 AND protocol = $8 AND port = $9",
            )
            .bind(p.service.as_str())
            .bind(p.product.as_str())
            .bind(p.version.as_str())
            .bind(p.banner.as_str())
            .bind(at)
            .bind(scan)
            .bind(id)
            .bind(p.protocol.as_str())
            .bind(i64::from(p.port))
            .execute(&mut **tx)
            .await?;
            continue;
        }
        sqlx::query(
            "INSERT INTO host_ports (host_id, protocol, port, service, product, version, banner, first_seen_ms, \
             last_seen_ms, last_scan_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(id)
        .bind(p.protocol.as_str())
        .bind(i64::from(p.port))
        .bind(p.service.as_str())
        .bind(p.product.as_str())
        .bind(p.version.as_str())
        .bind(p.banner.as_str())
        .bind(at)
        .bind(scan)
        .execute(&mut **tx)
        .await?;
        if !fresh {
            let detail = port_label(i64::from(p.port), &p.protocol, &p.service);
            change(tx, from.tenant, from.site, id, at, ChangeKind::PortOpened, &detail, scan).await?;
            out.changes += 1;
        }
    }
    if scanned.is_empty() {
        return Ok(());
    }
    for (protocol, port, last_scan_id, service) in &stored {
        let probed = protocol == "tcp" && u16::try_from(*port).is_ok_and(|p| scanned.contains(&p));
        if !probed || reported.contains(&(protocol.as_str(), *port)) || last_scan_id == scan {
            continue;
        }
        sqlx::query("DELETE FROM host_ports WHERE host_id = $1 AND protocol = $2 AND port = $3")
            .bind(id)
            .bind(protocol.as_str())
            .bind(*port)
            .execute(&mut **tx)
            .await?;
        let detail = port_label(*port, protocol, service);
        change(tx, from.tenant, from.site, id, at, ChangeKind::PortClosed, &detail, scan).await?;
        out.changes += 1;
    }
    Ok(())
}

/// Makes the host's primary address its IPv4 address seen last (else IPv6).
pub(crate) async fn primary(tx: &mut sqlx::Transaction<'_, DB>, host: &str) -> Result<(), StoreError> {
    let first: Option<(String, String)> = sqlx::query_as(
        "SELECT address, address_key FROM host_addresses WHERE host_id = $1 \
         ORDER BY family, last_seen_ms DESC, address_key LIMIT 1",
    )
    .bind(host)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((address, key)) = first {
        sqlx::query("UPDATE hosts SET address = $1, address_key = $2 WHERE id = $3 AND address_key <> $2")
            .bind(address)
            .bind(key)
            .bind(host)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

    };
}

/// The reconciliation's SQL, compiled once per engine (sqlx's generic
/// executors make futures the compiler cannot prove `Send`; concrete types can).
pub(super) mod sqlite {
    use super::*;
    type DB = sqlx::Sqlite;
    reconcile_impl!(sqlite);
}

pub(super) mod postgres {
    use super::*;
    type DB = sqlx::Postgres;
    reconcile_impl!(postgres);
}
