//! Device reports as stored: the agent port validates each report from an
//! agent's batch and turns it into one of these rows; [`apply`] stores them in
//! the batch's transaction, after checking that each device belongs to the
//! agent's tenant and site.
//!
//! Exactly once: a batch is stored in one transaction that also advances the
//! agent's acknowledged sequence number, and batches of one agent are stored
//! one at a time (the first statement of the transaction locks the agent's
//! row), so a report whose sequence number is at or below the acknowledged one
//! was stored before and is skipped. No per-report key is kept.
use std::collections::HashSet;

use super::{DeviceId, DeviceState};
use crate::StoreError;
use crate::metrics::{Conn, Sample, SampleWriter};

/// The metric samples a poll carries (names documented in [`crate::metrics`]).
fn samples_of(p: &PollRow) -> Vec<Sample<'_>> {
    let mut out = Vec::with_capacity(4 + 2 * p.interfaces.len() + p.health.len());
    let mut push =
        |metric: &'static str, subject: &'static str, value: f64| out.push(Sample { metric, subject, value });
    push("poll_duration_ms", "", p.duration_ms as f64);
    if let Some(s) = &p.system {
        push("cpu_load", "", s.cpu_load as f64);
        if s.total_memory > 0 {
            push("memory_used_bytes", "", (s.total_memory - s.free_memory).max(0) as f64);
        }
        if s.total_hdd > 0 {
            push("hdd_used_bytes", "", (s.total_hdd - s.free_hdd).max(0) as f64);
        }
    }
    if let Some(w) = &p.wireless {
        push("wireless_clients", "", w.len() as f64);
    }
    for i in &p.interfaces {
        if let (Some(rx), Some(tx)) = (i.rx_bps, i.tx_bps) {
            out.push(Sample {
                metric: "if_rx_bps",
                subject: &i.name,
                value: rx,
            });
            out.push(Sample {
                metric: "if_tx_bps",
                subject: &i.name,
                value: tx,
            });
        }
    }
    for h in &p.health {
        out.push(Sample {
            metric: "health",
            subject: &h.name,
            value: h.value,
        });
    }
    for w in p.wireless.iter().flatten() {
        if let Some(dbm) = w.signal_dbm {
            out.push(Sample {
                metric: "wireless_signal_dbm",
                subject: &w.mac_address,
                value: dbm as f64,
            });
        }
    }
    out
}

/// One device report of a batch.
#[derive(Clone, Debug)]
pub struct DeviceReport {
    /// The agent's sequence number.
    pub seq: i64,
    /// When the agent observed it, agent clock.
    pub observed_at_ms: i64,
    /// The device it is about.
    pub device: DeviceId,
    /// What it says.
    pub body: ReportBody,
}

/// What a device report says.
#[derive(Clone, Debug)]
pub enum ReportBody {
    /// The device's state changed.
    Status(StatusRow),
    /// A poll.
    Poll(Box<PollRow>),
    /// New log lines.
    Log(Vec<LogRow>),
    /// A configuration export (sealed), with its diff against the previous
    /// version (sealed), computed by the collector before storing.
    Backup(BackupRow),
}

/// A state change.
#[derive(Clone, Debug)]
pub struct StatusRow {
    /// The new state.
    pub state: DeviceState,
    /// Why, in words.
    pub reason: String,
    /// API-SSL certificate presented, hex SHA-256 (empty: none).
    pub api_tls_fingerprint: String,
    /// SSH host key presented, hex SHA-256 (empty: none).
    pub ssh_host_key: String,
    /// Why backups fail (empty: they work).
    pub backup_problem: String,
}

/// System facts of a poll.
#[derive(Clone, Debug, Default)]
pub struct SystemRow {
    /// Identity.
    pub identity: String,
    /// Version without channel.
    pub version: String,
    /// Channel.
    pub channel: String,
    /// Board.
    pub board_name: String,
    /// Architecture.
    pub architecture: String,
    /// Serial number.
    pub serial_number: String,
    /// Installed RouterBOOT.
    pub current_firmware: String,
    /// Available RouterBOOT.
    pub upgrade_firmware: String,
    /// Uptime.
    pub uptime_secs: i64,
    /// CPU load, percent.
    pub cpu_load: i64,
    /// Free memory.
    pub free_memory: i64,
    /// Total memory.
    pub total_memory: i64,
    /// Free storage.
    pub free_hdd: i64,
    /// Total storage.
    pub total_hdd: i64,
    /// RouterOS's text.
    pub last_config_change: String,
    /// Newest version on the channel.
    pub latest_version: String,
    /// Whether an update is available.
    pub update_available: bool,
}

/// One interface in a poll.
#[derive(Clone, Debug, Default)]
pub struct InterfaceRow {
    /// Name.
    pub name: String,
    /// Type.
    pub kind: String,
    /// Running.
    pub running: bool,
    /// Disabled.
    pub disabled: bool,
    /// MAC.
    pub mac_address: String,
    /// Counters.
    pub rx_bytes: i64,
    /// Counters.
    pub tx_bytes: i64,
    /// Link downs.
    pub link_downs: i64,
    /// Rates since the previous poll.
    pub rx_bps: Option<f64>,
    /// Rates since the previous poll.
    pub tx_bps: Option<f64>,
}

/// A sensor reading.
#[derive(Clone, Debug, Default)]
pub struct HealthRow {
    /// Sensor name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: String,
}

/// An IP address.
#[derive(Clone, Debug, Default)]
pub struct AddressRow {
    /// `192.0.2.1/24`.
    pub address: String,
    /// Interface.
    pub interface: String,
    /// Network.
    pub network: String,
    /// Disabled.
    pub disabled: bool,
}

/// A neighbour (a topology edge).
#[derive(Clone, Debug, Default)]
pub struct NeighborRow {
    /// Local interface.
    pub interface: String,
    /// Its address.
    pub address: String,
    /// Its MAC.
    pub mac_address: String,
    /// Its identity.
    pub identity: String,
    /// Platform.
    pub platform: String,
    /// Version.
    pub version: String,
    /// Board.
    pub board: String,
    /// mndp, cdp, lldp.
    pub discovered_by: String,
}

/// A wireless client.
#[derive(Clone, Debug, Default)]
pub struct WirelessRow {
    /// Interface.
    pub interface: String,
    /// MAC.
    pub mac_address: String,
    /// Signal.
    pub signal_dbm: Option<i64>,
    /// Band.
    pub band: String,
    /// Rates.
    pub tx_rate_bps: i64,
    /// Rates.
    pub rx_rate_bps: i64,
    /// CCQ.
    pub tx_ccq: Option<i64>,
    /// Bytes.
    pub tx_bytes: i64,
    /// Bytes.
    pub rx_bytes: i64,
    /// Connected for.
    pub uptime_secs: i64,
}

/// A DHCP lease.
#[derive(Clone, Debug, Default)]
pub struct LeaseRow {
    /// Address.
    pub address: String,
    /// MAC.
    pub mac_address: String,
    /// Host name.
    pub host_name: String,
    /// bound / waiting.
    pub status: String,
    /// Expires after.
    pub expires_after_secs: i64,
}

/// A poll: system facts and interfaces always, lists when they changed.
#[derive(Clone, Debug, Default)]
pub struct PollRow {
    /// How long the poll took.
    pub duration_ms: i64,
    /// System facts.
    pub system: Option<SystemRow>,
    /// Sensors.
    pub health: Vec<HealthRow>,
    /// Interfaces.
    pub interfaces: Vec<InterfaceRow>,
    /// Addresses, when changed.
    pub addresses: Option<Vec<AddressRow>>,
    /// Neighbours, when changed.
    pub neighbors: Option<Vec<NeighborRow>>,
    /// Wireless clients, when changed.
    pub wireless: Option<Vec<WirelessRow>>,
    /// Leases, when changed.
    pub leases: Option<Vec<LeaseRow>>,
}

/// A log line.
#[derive(Clone, Debug, Default)]
pub struct LogRow {
    /// RouterOS `.id`.
    pub ros_id: String,
    /// Time as the router wrote it.
    pub time: String,
    /// Topics.
    pub topics: String,
    /// Message.
    pub message: String,
}

/// A configuration version to store.
#[derive(Clone, Debug, Default)]
pub struct BackupRow {
    /// RouterOS version.
    pub ros_version: String,
    /// HMAC of the normalised export, hex.
    pub normalized_hmac: String,
    /// The export, sealed.
    pub sealed_export: Vec<u8>,
    /// The diff against the previous version, sealed (none for the first).
    pub sealed_diff: Option<Vec<u8>>,
    /// Lines added.
    pub lines_added: i64,
    /// Lines removed.
    pub lines_removed: i64,
    /// Why it was taken.
    pub trigger: String,
}

/// Log lines kept per device.
pub const LOG_LINES_KEPT: i64 = 1_000;

/// What storing a batch's device reports did.
#[derive(Debug, Default)]
pub struct DeviceOutcome {
    /// Reports stored.
    pub stored: u64,
    /// Reports skipped because an earlier delivery stored them.
    pub duplicates: u64,
    /// Reports about devices that are not the agent's site's (or deleted):
    /// (seq, reason).
    pub refused: Vec<(i64, String)>,
    /// Configuration versions stored (unchanged exports are not).
    pub backups: u64,
}

macro_rules! reports_impl {
    () => {
/// Appends a device event.
pub(super) async fn event(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: &str,
    device: &str,
    at_ms: i64,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO device_events (tenant_id, device_id, at_ms, kind, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant)
        .bind(device)
        .bind(at_ms)
        .bind(kind)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores `reports` of an agent whose batches so far were acknowledged up to
/// `acked_seq`, inside the batch's transaction.
pub(super) async fn apply(
    tx: &mut sqlx::Transaction<'_, DB>,
    writer: &mut SampleWriter<'_>,
    tenant: &str,
    site: &str,
    acked_seq: i64,
    reports: &[DeviceReport],
) -> Result<DeviceOutcome, StoreError>
{
    let mut out = DeviceOutcome::default();
    if reports.is_empty() {
        return Ok(out);
    }
    let live: HashSet<String> = sqlx::query_as::<_, (String,)>(
        "SELECT id FROM devices WHERE tenant_id = $1 AND site_id = $2 AND deleted_at_ms IS NULL",
    )
    .bind(tenant)
    .bind(site)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|(id,)| id)
    .collect();
    for r in reports {
        if r.seq <= acked_seq {
            out.duplicates += 1;
            continue;
        }
        let device = r.device.to_string();
        if !live.contains(&device) {
            out.refused.push((r.seq, format!("device {device} is not a live device of this agent's site")));
            continue;
        }
        match &r.body {
            ReportBody::Status(s) => status(tx, tenant, &device, r.observed_at_ms, s).await?,
            ReportBody::Poll(p) => {
                poll(tx, &device, r.observed_at_ms, p).await?;
                let samples = samples_of(p);
                writer
                    .record_samples(Conn::from(&mut **tx), tenant, &device, r.observed_at_ms, &samples)
                    .await?;
            }
            ReportBody::Log(lines) => log(tx, &device, lines).await?,
            ReportBody::Backup(b) => {
                if backup(tx, tenant, &device, r.observed_at_ms, b).await? {
                    out.backups += 1;
                }
            }
        }
        out.stored += 1;
    }
    Ok(out)
}

async fn status(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: &str,
    device: &str,
    at: i64,
    s: &StatusRow,
) -> Result<(), StoreError>
{
    let (old_state, pin, old_reason): (String, Option<String>, String) =
        sqlx::query_as("SELECT state, api_tls_pin, state_reason FROM devices WHERE id = $1")
            .bind(device)
            .fetch_one(&mut **tx)
            .await?;
    let mut state = s.state;
    let mut reason = s.reason.clone();
    let presented = (!s.api_tls_fingerprint.is_empty()).then(|| s.api_tls_fingerprint.clone());
    let mut pin_changed = false;
    match (&pin, &presented) {
        // First use: the certificate the device presented becomes the pin.
        (None, Some(fp)) if state == DeviceState::Up => {
            sqlx::query("UPDATE devices SET api_tls_pin = $1, updated_at_ms = $2 WHERE id = $3")
                .bind(fp.as_str())
                .bind(at)
                .bind(device)
                .execute(&mut **tx)
                .await?;
            event(tx, tenant, device, at, "certificate_pinned", &format!("sha256 {fp}")).await?;
            pin_changed = true;
        }
        // The agent learnt a certificate other than the pin (it polled with
        // its own first-use pin before ours reached it): never accepted silently.
        (Some(p), Some(fp)) if p != fp => {
            state = DeviceState::TlsPinMismatch;
            reason = format!("the API-SSL certificate changed: sha256 {fp}, pinned {p}");
        }
        _ => {}
    }
    if state == DeviceState::TlsPinMismatch {
        sqlx::query("UPDATE devices SET presented_tls_fingerprint = $1 WHERE id = $2")
            .bind(presented.as_deref())
            .bind(device)
            .execute(&mut **tx)
            .await?;
    }
    let (ssh_pin, ssh_presented, old_problem): (Option<String>, Option<String>, String) =
        sqlx::query_as("SELECT ssh_host_key_pin, presented_ssh_host_key, backup_problem FROM devices WHERE id = $1")
            .bind(device)
            .fetch_one(&mut **tx)
            .await?;
    if s.backup_problem != old_problem {
        sqlx::query("UPDATE devices SET backup_problem = $1 WHERE id = $2")
            .bind(s.backup_problem.as_str())
            .bind(device)
            .execute(&mut **tx)
            .await?;
        let detail = if s.backup_problem.is_empty() { "configuration backups work again" } else { s.backup_problem.as_str() };
        event(tx, tenant, device, at, "backup_problem", detail).await?;
    }
    if !s.ssh_host_key.is_empty() {
        // The key waiting for an operator: the one presented while it differs
        // from the pin, none once they agree again.
        let waiting = ssh_pin.as_ref().filter(|p| **p != s.ssh_host_key).map(|_| s.ssh_host_key.clone());
        if waiting != ssh_presented {
            sqlx::query("UPDATE devices SET presented_ssh_host_key = $1 WHERE id = $2")
                .bind(waiting.as_deref())
                .bind(device)
                .execute(&mut **tx)
                .await?;
        }
        match ssh_pin {
            None => {
                sqlx::query("UPDATE devices SET ssh_host_key_pin = $1, updated_at_ms = $2 WHERE id = $3")
                    .bind(s.ssh_host_key.as_str())
                    .bind(at)
                    .bind(device)
                    .execute(&mut **tx)
                    .await?;
                event(tx, tenant, device, at, "ssh_host_key_pinned", &format!("sha256 {}", s.ssh_host_key)).await?;
            }
            // Once per new key, not with every status while it waits.
            Some(p) if p != s.ssh_host_key && ssh_presented.as_deref() != Some(s.ssh_host_key.as_str()) => {
                event(
                    tx,
                    tenant,
                    device,
                    at,
                    "ssh_host_key_changed",
                    &format!("sha256 {}, pinned {p}", s.ssh_host_key),
                )
                .await?;
            }
            Some(_) => {}
        }
    }
    if state.as_str() != old_state || reason != old_reason || pin_changed {
        sqlx::query("UPDATE devices SET state = $1, state_reason = $2, state_since_ms = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(reason.as_str())
            .bind(at)
            .bind(device)
            .execute(&mut **tx)
            .await?;
        if state.as_str() != old_state {
            let detail = if reason.is_empty() { state.describe().to_owned() } else { format!("{}: {reason}", state.describe()) };
            event(tx, tenant, device, at, "state", &detail).await?;
        }
    }
    Ok(())
}

async fn poll(tx: &mut sqlx::Transaction<'_, DB>, device: &str, at: i64, p: &PollRow) -> Result<(), StoreError>
{
    if let Some(s) = &p.system {
        sqlx::query(
            "UPDATE devices SET last_poll_ms = $1, last_poll_duration_ms = $2, identity = $3, version = $4, channel = $5, \
             board_name = $6, architecture = $7, serial_number = $8, current_firmware = $9, upgrade_firmware = $10, \
             uptime_secs = $11, cpu_load = $12, free_memory = $13, total_memory = $14, free_hdd = $15, total_hdd = $16, \
             last_config_change = $17, latest_version = $18, update_available = $19 WHERE id = $20",
        )
        .bind(at)
        .bind(p.duration_ms)
        .bind(s.identity.as_str())
        .bind(s.version.as_str())
        .bind(s.channel.as_str())
        .bind(s.board_name.as_str())
        .bind(s.architecture.as_str())
        .bind(s.serial_number.as_str())
        .bind(s.current_firmware.as_str())
        .bind(s.upgrade_firmware.as_str())
        .bind(s.uptime_secs)
        .bind(s.cpu_load)
        .bind(s.free_memory)
        .bind(s.total_memory)
        .bind(s.free_hdd)
        .bind(s.total_hdd)
        .bind(s.last_config_change.as_str())
        .bind(s.latest_version.as_str())
        .bind(i64::from(s.update_available))
        .bind(device)
        .execute(&mut **tx)
        .await?;
    }
    if !p.interfaces.is_empty() {
        let mut qb = sqlx::QueryBuilder::<DB>::new(
            "INSERT INTO device_interfaces (device_id, name, kind, running, disabled, mac_address, rx_bytes, tx_bytes, \
             link_downs, rx_bps, tx_bps, seen_at_ms) ",
        );
        qb.push_values(&p.interfaces, |mut b, i| {
            b.push_bind(device)
                .push_bind(i.name.as_str())
                .push_bind(i.kind.as_str())
                .push_bind(i64::from(i.running))
                .push_bind(i64::from(i.disabled))
                .push_bind(i.mac_address.as_str())
                .push_bind(i.rx_bytes)
                .push_bind(i.tx_bytes)
                .push_bind(i.link_downs)
                .push_bind(i.rx_bps)
                .push_bind(i.tx_bps)
                .push_bind(at);
        });
        qb.push(
            " ON CONFLICT (device_id, name) DO UPDATE SET kind = excluded.kind, running = excluded.running, \
             disabled = excluded.disabled, mac_address = excluded.mac_address, rx_bytes = excluded.rx_bytes, \
             tx_bytes = excluded.tx_bytes, link_downs = excluded.link_downs, rx_bps = excluded.rx_bps, \
             tx_bps = excluded.tx_bps, seen_at_ms = excluded.seen_at_ms",
        );
        qb.build().execute(&mut **tx).await?;
        sqlx::query("DELETE FROM device_interfaces WHERE device_id = $1 AND seen_at_ms <> $2")
            .bind(device)
            .bind(at)
            .execute(&mut **tx)
            .await?;
    }
    replace(tx, "device_health", device, Some(&p.health), |qb, h: &HealthRow| {
        qb.push_bind(h.name.as_str()).push_bind(h.value).push_bind(h.unit.as_str());
    }, "name, value, unit")
    .await?;
    replace(tx, "device_addresses", device, p.addresses.as_deref(), |qb, a: &AddressRow| {
        qb.push_bind(a.address.as_str())
            .push_bind(a.interface.as_str())
            .push_bind(a.network.as_str())
            .push_bind(i64::from(a.disabled));
    }, "address, interface, network, disabled")
    .await?;
    replace(tx, "device_neighbors", device, p.neighbors.as_deref(), |qb, n: &NeighborRow| {
        qb.push_bind(n.interface.as_str())
            .push_bind(n.address.as_str())
            .push_bind(n.mac_address.as_str())
            .push_bind(n.identity.as_str())
            .push_bind(n.platform.as_str())
            .push_bind(n.version.as_str())
            .push_bind(n.board.as_str())
            .push_bind(n.discovered_by.as_str());
    }, "interface, address, mac_address, identity, platform, version, board, discovered_by")
    .await?;
    replace(tx, "device_wireless_clients", device, p.wireless.as_deref(), |qb, w: &WirelessRow| {
        qb.push_bind(w.interface.as_str())
            .push_bind(w.mac_address.as_str())
            .push_bind(w.signal_dbm)
            .push_bind(w.band.as_str())
            .push_bind(w.tx_rate_bps)
            .push_bind(w.rx_rate_bps)
            .push_bind(w.tx_ccq)
            .push_bind(w.tx_bytes)
            .push_bind(w.rx_bytes)
            .push_bind(w.uptime_secs);
    }, "interface, mac_address, signal_dbm, band, tx_rate_bps, rx_rate_bps, tx_ccq, tx_bytes, rx_bytes, uptime_secs")
    .await?;
    replace(tx, "device_dhcp_leases", device, p.leases.as_deref(), |qb, l: &LeaseRow| {
        qb.push_bind(l.address.as_str())
            .push_bind(l.mac_address.as_str())
            .push_bind(l.host_name.as_str())
            .push_bind(l.status.as_str())
            .push_bind(l.expires_after_secs);
    }, "address, mac_address, host_name, status, expires_after_secs")
    .await?;
    Ok(())
}

/// Replaces a device's rows of a list table when the poll carried the list.
async fn replace<'r, T>(
    tx: &mut sqlx::Transaction<'_, DB>,
    table: &'static str,
    device: &'r str,
    rows: Option<&'r [T]>,
    bind: impl FnMut(&mut sqlx::query_builder::Separated<'_, DB, &'static str>, &'r T),
    columns: &'static str,
) -> Result<(), StoreError>
{
    let Some(rows) = rows else { return Ok(()) };
    // `table` and `columns` are constants of this module, never input.
    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE device_id = $1")))
        .bind(device)
        .execute(&mut **tx)
        .await?;
    let mut bind = bind;
    // Bounded statements: SQLite allows at most 32,766 parameters.
    for chunk in rows.chunks(500) {
        let mut qb = sqlx::QueryBuilder::<DB>::new(format!("INSERT INTO {table} (device_id, {columns}) "));
        qb.push_values(chunk, |mut b, row| {
            b.push_bind(device);
            bind(&mut b, row);
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn log(tx: &mut sqlx::Transaction<'_, DB>, device: &str, lines: &[LogRow]) -> Result<(), StoreError>
{
    if lines.is_empty() {
        return Ok(());
    }
    let now = crate::now_ms();
    for (chunk_no, chunk) in lines.chunks(500).enumerate() {
        let mut qb = sqlx::QueryBuilder::<DB>::new("INSERT INTO device_log (device_id, received_ms, ros_id, time, topics, message) ");
        let base = (chunk_no * 500) as i64;
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, l)| {
            // Received time plus the position keeps the router's order.
            b.push_bind(device)
                .push_bind(now * 1000 + base + i as i64)
                .push_bind(l.ros_id.as_str())
                .push_bind(l.time.as_str())
                .push_bind(l.topics.as_str())
                .push_bind(l.message.as_str());
        });
        qb.build().execute(&mut **tx).await?;
    }
    sqlx::query(
        "DELETE FROM device_log WHERE device_id = $1 AND received_ms < \
         (SELECT received_ms FROM device_log WHERE device_id = $1 ORDER BY received_ms DESC LIMIT 1 OFFSET $2)",
    )
    .bind(device)
    .bind(LOG_LINES_KEPT)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a configuration version unless it equals the newest one.
async fn backup(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: &str,
    device: &str,
    at: i64,
    b: &BackupRow,
) -> Result<bool, StoreError>
{
    let newest: Option<(String,)> = sqlx::query_as(
        "SELECT normalized_hmac FROM config_versions WHERE device_id = $1 ORDER BY taken_at_ms DESC LIMIT 1",
    )
    .bind(device)
    .fetch_optional(&mut **tx)
    .await?;
    if newest.is_some_and(|(h,)| h == b.normalized_hmac) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO config_versions (tenant_id, device_id, taken_at_ms, ros_version, normalized_hmac, sealed_export, \
         sealed_diff, lines_added, lines_removed, trigger_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (device_id, taken_at_ms) DO NOTHING",
    )
    .bind(tenant)
    .bind(device)
    .bind(at)
    .bind(b.ros_version.as_str())
    .bind(b.normalized_hmac.as_str())
    .bind(b.sealed_export.as_slice())
    .bind(b.sealed_diff.as_deref())
    .bind(b.lines_added)
    .bind(b.lines_removed)
    .bind(b.trigger.as_str())
    .execute(&mut **tx)
    .await?;
    event(
        tx,
        tenant,
        device,
        at,
        "config_version",
        &format!("+{} -{} ({})", b.lines_added, b.lines_removed, b.trigger),
    )
    .await?;
    Ok(true)
}

    };
}

/// The reports' SQL, compiled once per engine (sqlx's generic executors make
/// futures that the compiler cannot prove `Send`; concrete types can).
mod sqlite {
    use super::*;
    type DB = sqlx::Sqlite;
    reports_impl!();
}

mod postgres {
    use super::*;
    type DB = sqlx::Postgres;
    reports_impl!();
}

/// A boxed, sendable future borrowing for `'a`.
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Stores a batch's device reports in its transaction, for either engine.
pub(crate) trait ApplyReports: sqlx::Database {
    /// Stores `reports` of an agent whose batches so far were acknowledged up
    /// to `acked_seq`.
    fn apply<'a, 't: 'a, 'w: 'a, 's: 'w>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        writer: &'w mut SampleWriter<'s>,
        tenant: &'a str,
        site: &'a str,
        acked_seq: i64,
        reports: &'a [DeviceReport],
    ) -> Boxed<'a, DeviceOutcome>;

    /// Appends a device event.
    fn event<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        device: &'a str,
        at_ms: i64,
        kind: &'a str,
        detail: &'a str,
    ) -> Boxed<'a, ()>;
}

impl ApplyReports for sqlx::Sqlite {
    fn apply<'a, 't: 'a, 'w: 'a, 's: 'w>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        writer: &'w mut SampleWriter<'s>,
        tenant: &'a str,
        site: &'a str,
        acked_seq: i64,
        reports: &'a [DeviceReport],
    ) -> Boxed<'a, DeviceOutcome> {
        Box::pin(sqlite::apply(tx, writer, tenant, site, acked_seq, reports))
    }

    fn event<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        device: &'a str,
        at_ms: i64,
        kind: &'a str,
        detail: &'a str,
    ) -> Boxed<'a, ()> {
        Box::pin(sqlite::event(tx, tenant, device, at_ms, kind, detail))
    }
}

impl ApplyReports for sqlx::Postgres {
    fn apply<'a, 't: 'a, 'w: 'a, 's: 'w>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        writer: &'w mut SampleWriter<'s>,
        tenant: &'a str,
        site: &'a str,
        acked_seq: i64,
        reports: &'a [DeviceReport],
    ) -> Boxed<'a, DeviceOutcome> {
        Box::pin(postgres::apply(tx, writer, tenant, site, acked_seq, reports))
    }

    fn event<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        device: &'a str,
        at_ms: i64,
        kind: &'a str,
        detail: &'a str,
    ) -> Boxed<'a, ()> {
        Box::pin(postgres::event(tx, tenant, device, at_ms, kind, detail))
    }
}
