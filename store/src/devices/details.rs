//! What a device's console page reads beyond its list row: the facts the list
//! leaves out, the latest lists of a poll, the log, events, configuration
//! history and the neighbour edges of the topology.
//!
//! Every read takes the [`Viewer`] (or a [`TenantScope`]) and filters by its
//! tenant: a device of another tenant reads as [`StoreError::NotFound`]. The
//! lists reuse the row types of [`reports`](super::reports), which hold
//! exactly what a poll stored.
use outpost_certs::TenantId;

use super::DeviceId;
use super::reports::{AddressRow, HealthRow, InterfaceRow, LeaseRow, LogRow, NeighborRow, WirelessRow};
use crate::audit::{Actor, AppendAudit, AuditEvent};
use crate::row_scope::RowScope;
use crate::scope::{TenantScope, Viewer};
use crate::{Store, StoreError, now_ms, on_pool, parse_id};

/// Log lines a device page shows.
pub const LOG_LINES_SHOWN: i64 = 100;

/// Events a device page shows.
pub const EVENTS_SHOWN: i64 = 100;

/// Facts of a device that [`DeviceRow`](super::views::DeviceRow) leaves out.
#[derive(Clone, Debug, Default)]
pub struct DeviceFacts {
    /// Serial number.
    pub serial_number: String,
    /// CPU architecture.
    pub architecture: String,
    /// Free storage, bytes.
    pub free_hdd: Option<i64>,
    /// Total storage, bytes.
    pub total_hdd: Option<i64>,
    /// SSH port for backups.
    pub ssh_port: i64,
    /// API user.
    pub username: String,
    /// Seconds between polls.
    pub poll_interval_secs: i64,
    /// How long the last poll took.
    pub last_poll_duration_ms: Option<i64>,
    /// RouterOS's "last config change" text.
    pub last_config_change: String,
    /// Pinned SSH host key, hex SHA-256.
    pub ssh_host_key_pin: Option<String>,
    /// Another SSH host key the device presents, waiting for an operator.
    pub presented_ssh_host_key: Option<String>,
    /// Why configuration backups fail (empty: they work).
    pub backup_problem: String,
    /// When it was added.
    pub created_at_ms: i64,
}

/// A device event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEvent {
    /// When.
    pub at_ms: i64,
    /// What kind (`state`, `config_version`, `config_revealed`, …).
    pub kind: String,
    /// Details in words.
    pub detail: String,
}

/// A stored log line.
#[derive(Clone, Debug)]
pub struct StoredLogLine {
    /// When the collector received it (ms, scaled by 1000 to keep order).
    pub received: i64,
    /// The line.
    pub line: LogRow,
}

/// Everything a device page lists, newest first where order matters.
#[derive(Clone, Debug, Default)]
pub struct DeviceDetails {
    /// Facts beyond the list row.
    pub facts: DeviceFacts,
    /// Interfaces by name.
    pub interfaces: Vec<InterfaceRow>,
    /// Sensors by name.
    pub health: Vec<HealthRow>,
    /// IP addresses by interface and address.
    pub addresses: Vec<AddressRow>,
    /// Neighbours by interface and identity.
    pub neighbors: Vec<NeighborRow>,
    /// Wireless clients by interface and MAC.
    pub wireless: Vec<WirelessRow>,
    /// DHCP leases by address.
    pub leases: Vec<LeaseRow>,
    /// The newest [`LOG_LINES_SHOWN`] log lines, newest first.
    pub log: Vec<StoredLogLine>,
    /// The newest [`EVENTS_SHOWN`] events, newest first.
    pub events: Vec<DeviceEvent>,
}

/// A configuration version as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigVersion {
    /// When it was taken; with the device, its key.
    pub taken_at_ms: i64,
    /// RouterOS version.
    pub ros_version: String,
    /// Lines added against the previous version.
    pub lines_added: i64,
    /// Lines removed.
    pub lines_removed: i64,
    /// Why it was taken.
    pub trigger: String,
}

/// One configuration version, still sealed with the device's backup key.
#[derive(Clone, Debug)]
pub struct SealedConfig {
    /// The device's tenant (whose vault key opens it).
    pub tenant: TenantId,
    /// The version.
    pub version: ConfigVersion,
    /// The export.
    pub sealed_export: Vec<u8>,
    /// The diff against the previous version; none for the first.
    pub sealed_diff: Option<Vec<u8>>,
}

/// The neighbour lists of the viewer's devices and the addresses each device
/// has, to match neighbours to managed devices.
#[derive(Clone, Debug, Default)]
pub struct TopologyRows {
    /// (device, neighbour it reported).
    pub neighbors: Vec<(DeviceId, NeighborRow)>,
    /// (device, one of its IP addresses as `192.0.2.1/24`).
    pub addresses: Vec<(DeviceId, String)>,
}

/// The tenants a query is restricted to (see [`Viewer::tenant_filter`]);
/// `*` (never a tenant id) for an administrator, whom the SQL lets through
/// with `$n = '*'`.
fn tenant_filter(viewer: &Viewer) -> String {
    viewer.tenant_filter().unwrap_or_else(|| "*".to_owned())
}

type FactsRow = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
);

type InterfaceSql = (
    String,
    String,
    i64,
    i64,
    String,
    i64,
    i64,
    i64,
    Option<f64>,
    Option<f64>,
);
type WirelessSql = (
    String,
    String,
    Option<i64>,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
    i64,
);
type NeighborSql = (String, String, String, String, String, String, String, String);
/// A neighbour row with the device that reported it.
type EdgeSql = (String, String, String, String, String, String, String, String, String);
type SealedSql = (String, i64, String, i64, i64, String, Vec<u8>, Option<Vec<u8>>);

fn neighbor(
    (interface, address, mac_address, identity, platform, version, board, discovered_by): NeighborSql,
) -> NeighborRow {
    NeighborRow {
        interface,
        address,
        mac_address,
        identity,
        platform,
        version,
        board,
        discovered_by,
    }
}

impl Store {
    /// The facts and latest lists of one of the viewer's devices.
    pub async fn device_details(&self, viewer: &Viewer, id: DeviceId) -> Result<DeviceDetails, StoreError> {
        let tenant = tenant_filter(viewer);
        let device = id.to_string();
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let facts: Option<FactsRow> = sqlx::query_as(
                "SELECT serial_number, architecture, free_hdd, total_hdd, ssh_port, username, poll_interval_secs, \
                 last_poll_duration_ms, last_config_change, ssh_host_key_pin, presented_ssh_host_key, backup_problem, \
                 created_at_ms FROM devices \
                 WHERE id = $1 AND ($2 = '*' OR (',' || $2 || ',') LIKE ('%,' || tenant_id || ',%')) AND deleted_at_ms IS NULL",
            )
            .bind(&device)
            .bind(&tenant)
            .fetch_optional(pool)
            .await?;
            let Some(f) = facts else {
                return Err(StoreError::NotFound(format!("device {id}")));
            };
            // The device is the viewer's: the lists below are keyed by its id alone.
            let interfaces: Vec<InterfaceSql> = sqlx::query_as(
                "SELECT name, kind, running, disabled, mac_address, rx_bytes, tx_bytes, link_downs, rx_bps, tx_bps \
                 FROM device_interfaces WHERE device_id = $1 ORDER BY name",
            )
            .bind(&device)
            .fetch_all(pool)
            .await?;
            let health: Vec<(String, f64, String)> =
                sqlx::query_as("SELECT name, value, unit FROM device_health WHERE device_id = $1 ORDER BY name")
                    .bind(&device)
                    .fetch_all(pool)
                    .await?;
            let addresses: Vec<(String, String, String, i64)> = sqlx::query_as(
                "SELECT address, interface, network, disabled FROM device_addresses WHERE device_id = $1 \
                 ORDER BY interface, address",
            )
            .bind(&device)
            .fetch_all(pool)
            .await?;
            let neighbors: Vec<NeighborSql> = sqlx::query_as(
                "SELECT interface, address, mac_address, identity, platform, version, board, discovered_by \
                 FROM device_neighbors WHERE device_id = $1 ORDER BY interface, identity, address",
            )
            .bind(&device)
            .fetch_all(pool)
            .await?;
            let wireless: Vec<WirelessSql> = sqlx::query_as(
                "SELECT interface, mac_address, signal_dbm, band, tx_rate_bps, rx_rate_bps, tx_ccq, tx_bytes, \
                 rx_bytes, uptime_secs FROM device_wireless_clients WHERE device_id = $1 ORDER BY interface, mac_address",
            )
            .bind(&device)
            .fetch_all(pool)
            .await?;
            let leases: Vec<(String, String, String, String, i64)> = sqlx::query_as(
                "SELECT address, mac_address, host_name, status, expires_after_secs FROM device_dhcp_leases \
                 WHERE device_id = $1 ORDER BY address",
            )
            .bind(&device)
            .fetch_all(pool)
            .await?;
            let log: Vec<(i64, String, String, String, String)> = sqlx::query_as(
                "SELECT received_ms, ros_id, time, topics, message FROM device_log WHERE device_id = $1 \
                 ORDER BY received_ms DESC LIMIT $2",
            )
            .bind(&device)
            .bind(LOG_LINES_SHOWN)
            .fetch_all(pool)
            .await?;
            let events: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT at_ms, kind, detail FROM device_events WHERE device_id = $1 AND ($2 = '*' OR (',' || $2 || ',') LIKE ('%,' || tenant_id || ',%')) \
                 ORDER BY at_ms DESC LIMIT $3",
            )
            .bind(&device)
            .bind(&tenant)
            .bind(EVENTS_SHOWN)
            .fetch_all(pool)
            .await?;
            let (serial_number, architecture, free_hdd, total_hdd, ssh_port, username, poll_interval_secs,
                 last_poll_duration_ms, last_config_change, ssh_host_key_pin, presented_ssh_host_key, backup_problem,
                 created_at_ms) = f;
            Ok(DeviceDetails {
                facts: DeviceFacts {
                    serial_number, architecture, free_hdd, total_hdd, ssh_port, username, poll_interval_secs,
                    last_poll_duration_ms, last_config_change, ssh_host_key_pin, presented_ssh_host_key,
                    backup_problem, created_at_ms,
                },
                interfaces: interfaces
                    .into_iter()
                    .map(|(name, kind, running, disabled, mac_address, rx_bytes, tx_bytes, link_downs, rx_bps, tx_bps)| {
                        InterfaceRow {
                            name, kind, running: running != 0, disabled: disabled != 0, mac_address,
                            rx_bytes, tx_bytes, link_downs, rx_bps, tx_bps,
                        }
                    })
                    .collect(),
                health: health.into_iter().map(|(name, value, unit)| HealthRow { name, value, unit }).collect(),
                addresses: addresses
                    .into_iter()
                    .map(|(address, interface, network, disabled)| AddressRow {
                        address, interface, network, disabled: disabled != 0,
                    })
                    .collect(),
                neighbors: neighbors.into_iter().map(neighbor).collect(),
                wireless: wireless
                    .into_iter()
                    .map(|(interface, mac_address, signal_dbm, band, tx_rate_bps, rx_rate_bps, tx_ccq, tx_bytes, rx_bytes, uptime_secs)| {
                        WirelessRow {
                            interface, mac_address, signal_dbm, band, tx_rate_bps, rx_rate_bps, tx_ccq,
                            tx_bytes, rx_bytes, uptime_secs,
                        }
                    })
                    .collect(),
                leases: leases
                    .into_iter()
                    .map(|(address, mac_address, host_name, status, expires_after_secs)| LeaseRow {
                        address, mac_address, host_name, status, expires_after_secs,
                    })
                    .collect(),
                log: log
                    .into_iter()
                    .map(|(received, ros_id, time, topics, message)| StoredLogLine {
                        received,
                        line: LogRow { ros_id, time, topics, message },
                    })
                    .collect(),
                events: events.into_iter().map(|(at_ms, kind, detail)| DeviceEvent { at_ms, kind, detail }).collect(),
            })
        })
    }

    /// The configuration versions of one of the viewer's devices, newest first.
    pub async fn config_versions(&self, viewer: &Viewer, id: DeviceId) -> Result<Vec<ConfigVersion>, StoreError> {
        let tenant = tenant_filter(viewer);
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let rows: Vec<(i64, String, i64, i64, String)> = sqlx::query_as(
                "SELECT c.taken_at_ms, c.ros_version, c.lines_added, c.lines_removed, c.trigger_reason \
                 FROM config_versions c JOIN devices d ON d.id = c.device_id \
                 WHERE c.device_id = $1 AND ($2 = '*' OR (',' || $2 || ',') LIKE ('%,' || d.tenant_id || ',%')) AND d.deleted_at_ms IS NULL \
                 ORDER BY c.taken_at_ms DESC",
            )
            .bind(id.to_string())
            .bind(&tenant)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(taken_at_ms, ros_version, lines_added, lines_removed, trigger)| ConfigVersion {
                    taken_at_ms, ros_version, lines_added, lines_removed, trigger,
                })
                .collect())
        })
    }

    /// One configuration version of one of the viewer's devices, sealed.
    pub async fn config_version(
        &self,
        viewer: &Viewer,
        id: DeviceId,
        taken_at_ms: i64,
    ) -> Result<SealedConfig, StoreError> {
        let tenant = tenant_filter(viewer);
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let row: Option<SealedSql> = sqlx::query_as(
                "SELECT d.tenant_id, c.taken_at_ms, c.ros_version, c.lines_added, c.lines_removed, c.trigger_reason, \
                 c.sealed_export, c.sealed_diff FROM config_versions c JOIN devices d ON d.id = c.device_id \
                 WHERE c.device_id = $1 AND c.taken_at_ms = $2 AND ($3 = '*' OR (',' || $3 || ',') LIKE ('%,' || d.tenant_id || ',%')) \
                 AND d.deleted_at_ms IS NULL",
            )
            .bind(id.to_string())
            .bind(taken_at_ms)
            .bind(&tenant)
            .fetch_optional(pool)
            .await?;
            let Some((t, taken_at_ms, ros_version, lines_added, lines_removed, trigger, sealed_export, sealed_diff)) = row else {
                return Err(StoreError::NotFound(format!("configuration version {taken_at_ms} of device {id}")));
            };
            Ok(SealedConfig {
                tenant: parse_id("tenant", &t)?,
                version: ConfigVersion { taken_at_ms, ros_version, lines_added, lines_removed, trigger },
                sealed_export,
                sealed_diff,
            })
        })
    }

    /// Appends an event to one of the tenant's devices (e.g. `config_revealed`
    /// with who looked), and `audit` done by `actor` to the audit log, in one
    /// transaction.
    pub async fn record_device_event(
        &self,
        scope: &TenantScope,
        id: DeviceId,
        kind: &str,
        detail: &str,
        (actor, audit): (&Actor, AuditEvent),
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant().to_string();
        let device = id.to_string();
        let now = now_ms();
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "INSERT INTO device_events (tenant_id, device_id, at_ms, kind, detail) \
                 SELECT tenant_id, id, $1, $2, $3 FROM devices WHERE id = $4 AND tenant_id = $5 AND deleted_at_ms IS NULL",
            )
            .bind(now)
            .bind(kind)
            .bind(detail)
            .bind(&device)
            .bind(&tenant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("device {id}")));
            }
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The neighbours and addresses of all the viewer's live devices.
    pub async fn topology_rows(&self, viewer: &Viewer) -> Result<TopologyRows, StoreError> {
        let tenant = tenant_filter(viewer);
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let neighbors: Vec<EdgeSql> = sqlx::query_as(
                "SELECT n.device_id, n.interface, n.address, n.mac_address, n.identity, n.platform, n.version, n.board, \
                 n.discovered_by FROM device_neighbors n JOIN devices d ON d.id = n.device_id \
                 WHERE d.deleted_at_ms IS NULL AND ($1 = '*' OR (',' || $1 || ',') LIKE ('%,' || d.tenant_id || ',%')) \
                 ORDER BY n.device_id, n.interface, n.identity, n.address",
            )
            .bind(&tenant)
            .fetch_all(pool)
            .await?;
            let addresses: Vec<(String, String)> = sqlx::query_as(
                "SELECT a.device_id, a.address FROM device_addresses a JOIN devices d ON d.id = a.device_id \
                 WHERE d.deleted_at_ms IS NULL AND ($1 = '*' OR (',' || $1 || ',') LIKE ('%,' || d.tenant_id || ',%')) ORDER BY a.device_id, a.address",
            )
            .bind(&tenant)
            .fetch_all(pool)
            .await?;
            Ok(TopologyRows {
                neighbors: neighbors
                    .into_iter()
                    .map(|(d, i, a, m, id, p, v, b, by)| Ok((parse_id("device", &d)?, neighbor((i, a, m, id, p, v, b, by)))))
                    .collect::<Result<_, StoreError>>()?,
                addresses: addresses
                    .into_iter()
                    .map(|(d, a)| Ok((parse_id("device", &d)?, a)))
                    .collect::<Result<_, StoreError>>()?,
            })
        })
    }
}

#[cfg(test)]
#[path = "details_tests.rs"]
mod tests;
