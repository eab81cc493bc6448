//! What the console and the command line read about discovered hosts: the
//! list (sorted, filtered) and one host with its addresses, ports, facts and
//! history. Scoped by the viewer: another tenant's host is "not found".
use std::str::FromStr;

use outpost_certs::{SiteId, TenantId};

use super::history::HostChange;
use super::records::{LldpNeighbor, MndpFacts, SnmpInterface};
use super::{HostId, from_json};
use crate::devices::DeviceId;
use crate::row_scope::RowScope;
use crate::scope::Viewer;
use crate::{Store, StoreError, on_pool, parse_id};

/// Most hosts one listing returns unless asked for fewer.
pub const DEFAULT_HOST_LIMIT: u32 = 10_000;

/// An open port, as listed with a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPort {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Port number.
    pub port: u16,
}

/// A host as listed.
#[derive(Clone, Debug)]
pub struct HostRow {
    /// Its id.
    pub id: HostId,
    /// Tenant.
    pub tenant: TenantId,
    /// Tenant name.
    pub tenant_name: String,
    /// Site.
    pub site: SiteId,
    /// Site name.
    pub site_name: String,
    /// Primary address (IPv4 preferred).
    pub address: String,
    /// MAC, empty when unknown.
    pub mac: String,
    /// Vendor (from the MAC).
    pub vendor: String,
    /// Name shown.
    pub name: String,
    /// Every reported name.
    pub names: Vec<String>,
    /// OS guess.
    pub os_guess: String,
    /// First seen, agent clock.
    pub first_seen_ms: i64,
    /// Last seen, agent clock.
    pub last_seen_ms: i64,
    /// Complete scans that missed it in a row.
    pub missed_scans: i64,
    /// When it was declared gone.
    pub gone_at_ms: Option<i64>,
    /// Why its conflict flag is set, if it is.
    pub conflict: Option<String>,
    /// The live managed device it was adopted as.
    pub device: Option<DeviceId>,
    /// sysName.
    pub snmp_name: String,
    /// sysObjectID.
    pub snmp_object_id: String,
    /// MNDP identity, when it announced itself.
    pub mndp_identity: Option<String>,
    /// How the last scan saw it.
    pub seen_by: Vec<String>,
    /// Open ports, by protocol and number.
    pub open_ports: Vec<OpenPort>,
}

impl HostRow {
    /// Its open TCP ports.
    pub fn tcp_ports(&self) -> Vec<u16> {
        self.open_ports
            .iter()
            .filter(|p| p.protocol == "tcp")
            .map(|p| p.port)
            .collect()
    }
}

/// Columns read by [`host_row`], with [`HOST_FROM`].
pub(crate) const HOST_COLUMNS: &str = "h.id, h.tenant_id, t.name, h.site_id, s.name, h.address, h.mac, h.vendor, \
    h.name, h.names, h.os_guess, h.first_seen_ms, h.last_seen_ms, h.missed_scans, h.gone_at_ms, h.conflict, \
    h.conflict_detail, dv.id, h.snmp_name, h.snmp_object_id, h.mndp, h.seen_by";

/// The tables [`HOST_COLUMNS`] come from.
pub(crate) const HOST_FROM: &str = "FROM hosts h JOIN tenants t ON t.id = h.tenant_id JOIN sites s ON s.id = h.site_id \
    LEFT JOIN devices dv ON dv.id = h.device_id AND dv.deleted_at_ms IS NULL";

pub(crate) fn host_row<R: sqlx::Row>(r: &R) -> Result<HostRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let s = |i: usize| r.try_get::<String, _>(i);
    let conflict = r.try_get::<i64, _>(15)? != 0;
    let device: Option<String> = r.try_get(17)?;
    let mndp: Option<String> = r.try_get(20)?;
    Ok(HostRow {
        id: parse_id("host", &s(0)?)?,
        tenant: parse_id("tenant", &s(1)?)?,
        tenant_name: s(2)?,
        site: parse_id("site", &s(3)?)?,
        site_name: s(4)?,
        address: s(5)?,
        mac: s(6)?,
        vendor: s(7)?,
        name: s(8)?,
        names: from_json("host names", &s(9)?)?,
        os_guess: s(10)?,
        first_seen_ms: r.try_get(11)?,
        last_seen_ms: r.try_get(12)?,
        missed_scans: r.try_get(13)?,
        gone_at_ms: r.try_get(14)?,
        conflict: conflict.then(|| s(16)).transpose()?,
        device: device.map(|d| parse_id("device", &d)).transpose()?,
        snmp_name: s(18)?,
        snmp_object_id: s(19)?,
        mndp_identity: mndp
            .map(|m| from_json::<MndpFacts>("host MNDP facts", &m).map(|f| f.identity))
            .transpose()?,
        seen_by: s(21)?.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect(),
        open_ports: Vec::new(),
    })
}

/// Fills in [`HostRow::open_ports`] of listed hosts, a few hundred per query.
pub(crate) async fn attach_ports(store: &Store, hosts: &mut [HostRow], tenant: Option<&str>) -> Result<(), StoreError> {
    let mut ports: std::collections::HashMap<String, Vec<OpenPort>> = std::collections::HashMap::new();
    for chunk in hosts.chunks(500) {
        let rows: Vec<(String, String, i64)> = on_pool!(store, RowScope::All, pool, Db => {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "SELECT p.host_id, p.protocol, p.port FROM host_ports p JOIN hosts h ON h.id = p.host_id WHERE ",
            );
            if let Some(t) = tenant {
                qb.push("(',' || ").push_bind(t.to_owned()).push(" || ',') LIKE ('%,' || h.tenant_id || ',%') AND ");
            }
            qb.push("p.host_id IN (");
            let mut ids = qb.separated(", ");
            for h in chunk {
                ids.push_bind(h.id.to_string());
            }
            qb.push(") ORDER BY p.host_id, p.protocol, p.port");
            qb.build_query_as().fetch_all(pool).await?
        });
        for (host, protocol, port) in rows {
            if let Ok(port) = u16::try_from(port) {
                ports.entry(host).or_default().push(OpenPort { protocol, port });
            }
        }
    }
    for h in hosts {
        h.open_ports = ports.remove(&h.id.to_string()).unwrap_or_default();
    }
    Ok(())
}

/// What a host listing is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostSort {
    /// Primary address, numerically (IPv4 before IPv6).
    #[default]
    Address,
    /// Last seen.
    LastSeen,
    /// First seen.
    FirstSeen,
    /// Vendor, then address (hosts without one last).
    Vendor,
    /// Name, then address (hosts without one last).
    Name,
}

impl HostSort {
    /// The name a URL or a command line uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::LastSeen => "last_seen",
            Self::FirstSeen => "first_seen",
            Self::Vendor => "vendor",
            Self::Name => "name",
        }
    }

    fn order_by(self, descending: bool) -> String {
        let dir = if descending { "DESC" } else { "ASC" };
        match self {
            Self::Address => format!("h.address_key {dir}, h.id"),
            Self::LastSeen => format!("h.last_seen_ms {dir}, h.address_key, h.id"),
            Self::FirstSeen => format!("h.first_seen_ms {dir}, h.address_key, h.id"),
            Self::Vendor => {
                format!("CASE WHEN h.vendor = '' THEN 1 ELSE 0 END, LOWER(h.vendor) {dir}, h.address_key, h.id")
            }
            Self::Name => format!("CASE WHEN h.name = '' THEN 1 ELSE 0 END, LOWER(h.name) {dir}, h.address_key, h.id"),
        }
    }
}

impl FromStr for HostSort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Address, Self::LastSeen, Self::FirstSeen, Self::Vendor, Self::Name]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown sort {s:?}: use address, last_seen, first_seen, vendor or name"))
    }
}

/// Which hosts to list, and how.
#[derive(Clone, Debug, Default)]
pub struct HostQuery {
    /// Only this site's.
    pub site: Option<SiteId>,
    /// Sort key.
    pub sort: HostSort,
    /// Largest first.
    pub descending: bool,
    /// Text to look for, case-insensitively: a prefix of any of the host's
    /// addresses, or part of its MAC, names, or vendor. Empty: everything.
    pub filter: String,
    /// Gone hosts too.
    pub include_gone: bool,
    /// At most this many ([`DEFAULT_HOST_LIMIT`] when unset).
    pub limit: Option<u32>,
}

/// `s` with LIKE's wildcards escaped (escape character `\`).
pub(crate) fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An address the host answers at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddress {
    /// The address.
    pub address: String,
    /// First seen there.
    pub first_seen_ms: i64,
    /// Last seen there.
    pub last_seen_ms: i64,
}

/// An open port with what the scan learnt about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRow {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Number.
    pub port: u16,
    /// Service.
    pub service: String,
    /// Product.
    pub product: String,
    /// Version.
    pub version: String,
    /// Banner.
    pub banner: String,
    /// First seen open.
    pub first_seen_ms: i64,
    /// Last seen open.
    pub last_seen_ms: i64,
}

/// What SNMP last answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnmpFacts {
    /// sysDescr.
    pub descr: String,
    /// sysObjectID.
    pub object_id: String,
    /// sysName.
    pub name: String,
    /// sysLocation.
    pub location: String,
    /// sysUpTime, hundredths of a second.
    pub uptime_ticks: Option<i64>,
    /// Interfaces.
    pub interfaces: Vec<SnmpInterface>,
    /// LLDP neighbours.
    pub lldp: Vec<LldpNeighbor>,
}

/// One host with everything known about it.
#[derive(Clone, Debug)]
pub struct HostDetail {
    /// As listed.
    pub host: HostRow,
    /// Every address, primary first.
    pub addresses: Vec<HostAddress>,
    /// Open ports.
    pub ports: Vec<PortRow>,
    /// SNMP, when it ever answered.
    pub snmp: Option<SnmpFacts>,
    /// Why SNMP failed the last time it was tried (empty: it worked, or was
    /// not tried).
    pub snmp_error: String,
    /// The last MNDP announcement.
    pub mndp: Option<MndpFacts>,
    /// Echo round trip, microseconds.
    pub rtt_us: Option<i64>,
    /// Accuracy of [`HostRow::os_guess`], percent.
    pub os_accuracy: i64,
    /// The scan that saw it last.
    pub last_scan_id: String,
    /// Its history, newest first.
    pub changes: Vec<HostChange>,
}

type DetailTuple = (
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    String,
    String,
);
type PortTuple = (String, i64, String, String, String, String, i64, i64);

impl Store {
    /// The viewer's hosts matching `query`.
    pub async fn list_hosts(&self, viewer: &Viewer, query: &HostQuery) -> Result<Vec<HostRow>, StoreError> {
        let tenant = viewer.tenant_filter();
        let filter = query.filter.trim().to_lowercase();
        let prefix = format!("{}%", like_escaped(&filter));
        let inside = format!("%{}%", like_escaped(&filter));
        let gone = if query.include_gone {
            ""
        } else {
            "AND h.gone_at_ms IS NULL"
        };
        // Built from this module's constants only; values are bound.
        let sql = format!(
            "SELECT {HOST_COLUMNS} {HOST_FROM} WHERE s.deleted_at_ms IS NULL {gone} \
             AND ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || h.tenant_id || ',%')) AND ($2 IS NULL OR h.site_id = $2) \
             AND ($3 = '' OR LOWER(h.mac) LIKE $5 ESCAPE '\\' OR LOWER(h.names) LIKE $5 ESCAPE '\\' \
               OR LOWER(h.name) LIKE $5 ESCAPE '\\' OR LOWER(h.vendor) LIKE $5 ESCAPE '\\' \
               OR EXISTS (SELECT 1 FROM host_addresses a WHERE a.host_id = h.id AND LOWER(a.address) LIKE $4 ESCAPE '\\')) \
             ORDER BY {} LIMIT $6",
            query.sort.order_by(query.descending)
        );
        let limit = i64::from(query.limit.unwrap_or(DEFAULT_HOST_LIMIT));
        let mut hosts = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant.clone())
                .bind(query.site.map(|s| s.to_string()))
                .bind(&filter)
                .bind(&prefix)
                .bind(&inside)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(host_row).collect::<Result<Vec<_>, _>>()?
        });
        attach_ports(self, &mut hosts, tenant.as_deref()).await?;
        Ok(hosts)
    }

    /// One host of the viewer's tenants, with its addresses, ports, facts
    /// and history; `NotFound` for another tenant's.
    pub async fn host(&self, viewer: &Viewer, id: HostId) -> Result<HostDetail, StoreError> {
        let tenant = viewer.tenant_filter();
        let sql = format!(
            "SELECT {HOST_COLUMNS} {HOST_FROM} WHERE h.id = $1 AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || h.tenant_id || ',%'))"
        );
        let host = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.to_string())
                .bind(tenant.clone())
                .fetch_optional(pool)
                .await?;
            match row {
                Some(r) => host_row(&r)?,
                None => return Err(StoreError::NotFound(format!("host {id}"))),
            }
        });
        let mut host = [host];
        attach_ports(self, &mut host, tenant.as_deref()).await?;
        let [host] = host;
        let key = id.to_string();
        let (detail, addresses, ports): (DetailTuple, Vec<(String, i64, i64)>, Vec<PortTuple>) = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            let detail: DetailTuple = sqlx::query_as(
                "SELECT snmp_descr, snmp_object_id, snmp_name, snmp_location, snmp_uptime_ticks, snmp_interfaces, \
                 snmp_lldp, mndp, rtt_us, os_accuracy, last_scan_id, snmp_error FROM hosts WHERE id = $1",
            )
            .bind(&key)
            .fetch_one(pool)
            .await?;
            let addresses = sqlx::query_as(
                "SELECT address, first_seen_ms, last_seen_ms FROM host_addresses WHERE host_id = $1 \
                 ORDER BY family, last_seen_ms DESC, address_key",
            )
            .bind(&key)
            .fetch_all(pool)
            .await?;
            let ports = sqlx::query_as(
                "SELECT protocol, port, service, product, version, banner, first_seen_ms, last_seen_ms \
                 FROM host_ports WHERE host_id = $1 ORDER BY protocol, port",
            )
            .bind(&key)
            .fetch_all(pool)
            .await?;
            (detail, addresses, ports)
        });
        let (
            descr,
            object_id,
            name,
            location,
            uptime_ticks,
            interfaces,
            lldp,
            mndp,
            rtt_us,
            os_accuracy,
            last_scan_id,
            snmp_error,
        ) = detail;
        let answered = !(descr.is_empty() && object_id.is_empty() && name.is_empty());
        let snmp = answered
            .then(|| -> Result<SnmpFacts, StoreError> {
                Ok(SnmpFacts {
                    descr,
                    object_id,
                    name,
                    location,
                    uptime_ticks,
                    interfaces: from_json("SNMP interfaces", &interfaces)?,
                    lldp: from_json("LLDP neighbours", &lldp)?,
                })
            })
            .transpose()?;
        let changes = self.host_history(viewer, id).await?;
        Ok(HostDetail {
            host,
            addresses: addresses
                .into_iter()
                .map(|(address, first_seen_ms, last_seen_ms)| HostAddress {
                    address,
                    first_seen_ms,
                    last_seen_ms,
                })
                .collect(),
            ports: ports
                .into_iter()
                .filter_map(
                    |(protocol, port, service, product, version, banner, first_seen_ms, last_seen_ms)| {
                        Some(PortRow {
                            protocol,
                            port: u16::try_from(port).ok()?,
                            service,
                            product,
                            version,
                            banner,
                            first_seen_ms,
                            last_seen_ms,
                        })
                    },
                )
                .collect(),
            snmp,
            snmp_error,
            mndp: mndp.map(|m| from_json("host MNDP facts", &m)).transpose()?,
            rtt_us,
            os_accuracy,
            last_scan_id,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped_and_sorts_parse() {
        assert_eq!(like_escaped(r"10.0_%\"), r"10.0\_\%\\");
        assert_eq!("last_seen".parse::<HostSort>(), Ok(HostSort::LastSeen));
        assert!("size".parse::<HostSort>().is_err());
    }
}
