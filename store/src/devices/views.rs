//! What the console and the command line read about devices.
use outpost_certs::{SiteId, TenantId};

use super::{DeviceId, DeviceState};
use crate::row_scope::RowScope;
use crate::scope::Viewer;
use crate::{Store, StoreError, on_pool, parse_id};

/// A device as listed.
#[derive(Clone, Debug)]
pub struct DeviceRow {
    /// Its id.
    pub id: DeviceId,
    /// Tenant.
    pub tenant: TenantId,
    /// Tenant name.
    pub tenant_name: String,
    /// Site.
    pub site: SiteId,
    /// Site name.
    pub site_name: String,
    /// Address.
    pub address: String,
    /// API port.
    pub api_port: i64,
    /// API-SSL.
    pub api_tls: bool,
    /// State.
    pub state: DeviceState,
    /// Why.
    pub state_reason: String,
    /// Since when.
    pub state_since_ms: i64,
    /// Identity (empty until polled).
    pub identity: String,
    /// Version.
    pub version: String,
    /// Channel.
    pub channel: String,
    /// Board.
    pub board_name: String,
    /// Uptime.
    pub uptime_secs: Option<i64>,
    /// CPU load.
    pub cpu_load: Option<i64>,
    /// Free memory.
    pub free_memory: Option<i64>,
    /// Total memory.
    pub total_memory: Option<i64>,
    /// Installed and available RouterBOOT.
    pub current_firmware: String,
    /// Available RouterBOOT.
    pub upgrade_firmware: String,
    /// Newest RouterOS on the channel.
    pub latest_version: String,
    /// An update is available.
    pub update_available: bool,
    /// Last poll.
    pub last_poll_ms: Option<i64>,
    /// The agent polling it.
    pub agent_id: Option<String>,
    /// Pinned API-SSL certificate.
    pub api_tls_pin: Option<String>,
    /// The certificate presented instead of the pinned one.
    pub presented_tls_fingerprint: Option<String>,
}

const COLUMNS: &str = "d.id, d.tenant_id, t.name, d.site_id, s.name, d.address, d.api_port, d.api_tls, d.state, \
    d.state_reason, d.state_since_ms, d.identity, d.version, d.channel, d.board_name, d.uptime_secs, d.cpu_load, \
    d.free_memory, d.total_memory, d.current_firmware, d.upgrade_firmware, d.latest_version, d.update_available, \
    d.last_poll_ms, d.agent_id, d.api_tls_pin, d.presented_tls_fingerprint";

fn row<R: sqlx::Row>(r: &R) -> Result<DeviceRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let s = |i: usize| r.try_get::<String, _>(i);
    Ok(DeviceRow {
        id: parse_id("device", &s(0)?)?,
        tenant: parse_id("tenant", &s(1)?)?,
        tenant_name: s(2)?,
        site: parse_id("site", &s(3)?)?,
        site_name: s(4)?,
        address: s(5)?,
        api_port: r.try_get(6)?,
        api_tls: r.try_get::<i64, _>(7)? != 0,
        state: s(8)?.parse()?,
        state_reason: s(9)?,
        state_since_ms: r.try_get(10)?,
        identity: s(11)?,
        version: s(12)?,
        channel: s(13)?,
        board_name: s(14)?,
        uptime_secs: r.try_get(15)?,
        cpu_load: r.try_get(16)?,
        free_memory: r.try_get(17)?,
        total_memory: r.try_get(18)?,
        current_firmware: s(19)?,
        upgrade_firmware: s(20)?,
        latest_version: s(21)?,
        update_available: r.try_get::<i64, _>(22)? != 0,
        last_poll_ms: r.try_get(23)?,
        agent_id: r.try_get(24)?,
        api_tls_pin: r.try_get(25)?,
        presented_tls_fingerprint: r.try_get(26)?,
    })
}

impl Store {
    /// The live devices the viewer may see, by tenant, site and address.
    pub async fn list_devices(&self, viewer: &Viewer) -> Result<Vec<DeviceRow>, StoreError> {
        let from = "FROM devices d JOIN tenants t ON t.id = d.tenant_id JOIN sites s ON s.id = d.site_id \
                    WHERE d.deleted_at_ms IS NULL";
        let order = "ORDER BY t.name, s.name, d.address, d.api_port";
        // Built from this module's constants only; the tenant is bound.
        let tenant = viewer.tenant_filter();
        let sql = match tenant {
            None => format!("SELECT {COLUMNS} {from} {order}"),
            Some(_) => {
                format!("SELECT {COLUMNS} {from} AND (',' || $1 || ',') LIKE ('%,' || d.tenant_id || ',%') {order}")
            }
        };
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let rows = q.fetch_all(pool).await?;
            rows.iter().map(row).collect()
        })
    }

    /// One device of the viewer's tenants.
    pub async fn device(&self, viewer: &Viewer, id: DeviceId) -> Result<DeviceRow, StoreError> {
        let from = "FROM devices d JOIN tenants t ON t.id = d.tenant_id JOIN sites s ON s.id = d.site_id \
                    WHERE d.deleted_at_ms IS NULL AND d.id = $1";
        let tenant = viewer.tenant_filter();
        let sql = match tenant {
            None => format!("SELECT {COLUMNS} {from}"),
            Some(_) => format!("SELECT {COLUMNS} {from} AND (',' || $2 || ',') LIKE ('%,' || d.tenant_id || ',%')"),
        };
        on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string());
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            match q.fetch_optional(pool).await? {
                Some(r) => row(&r),
                None => Err(StoreError::NotFound(format!("device {id}"))),
            }
        })
    }
}
