//! What an operator does with discovered hosts: adopt one that looks like a
//! RouterOS router as a managed device, and clear a host's conflict flag.
//!
//! A host looks like RouterOS when it has the API (8728) or API-SSL (8729)
//! port open, sent an MNDP announcement, or answered SNMP with a sysObjectID
//! under MikroTik's enterprise number (1.3.6.1.4.1.14988). Adoption creates
//! the device through the same path as `device add`, with the site's
//! credential profile (see [`super::jobs`]): API-SSL on 8729 when that port is
//! open, else the plain API on 8728; SSH on 22.
use outpost_certs::SiteId;

use super::views::{HOST_COLUMNS, HOST_FROM, HostRow, attach_ports, host_row};
use super::{ApplyDiscovery, ChangeKind, HostId};
use crate::audit::{Actor, AppendAudit, AuditEvent, Details};
use crate::devices::insert::InsertDevice;
use crate::devices::{DeviceId, NewDevice};
use crate::row_scope::RowScope;
use crate::scope::{TenantScope, Viewer};
use crate::{Store, StoreError, now_ms, on_pool};

/// MikroTik's SNMP enterprise: sysObjectIDs of RouterOS start with it.
pub const MIKROTIK_ENTERPRISE_OID: &str = "1.3.6.1.4.1.14988";
/// Seconds between polls of an adopted device.
pub const ADOPTED_POLL_INTERVAL_SECS: u32 = 60;

/// A discovered host that looks like RouterOS and is not managed yet.
#[derive(Clone, Debug)]
pub struct AdoptionCandidate {
    /// The host.
    pub host: HostRow,
    /// Why it looks like RouterOS, in words.
    pub why: Vec<String>,
    /// The API port adoption would use.
    pub api_port: u16,
    /// Whether that is API-SSL.
    pub api_tls: bool,
}

/// What the caller reseals when a host is adopted: the site profile's
/// password (sealed for the site) becomes the device's (sealed for it).
#[derive(Debug)]
pub struct Resealing<'a> {
    /// The site the profile belongs to.
    pub site: SiteId,
    /// The device being created.
    pub device: DeviceId,
    /// The profile's sealed password.
    pub sealed: &'a [u8],
}

/// site, address, adopted device, MNDP facts, sysObjectID.
type HostToAdopt = (String, String, Option<String>, Option<String>, String);

/// The API port and TLS setting for a host with these open TCP ports.
fn api_of(tcp_ports: &[u16]) -> (u16, bool) {
    if tcp_ports.contains(&8729) {
        (8729, true)
    } else {
        (8728, false)
    }
}

fn is_mikrotik_oid(oid: &str) -> bool {
    oid == MIKROTIK_ENTERPRISE_OID
        || oid
            .strip_prefix(MIKROTIK_ENTERPRISE_OID)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Why a host looks like RouterOS (empty: it does not).
fn reasons(tcp_ports: &[u16], mndp: bool, object_id: &str) -> Vec<String> {
    let mut why = Vec::new();
    if tcp_ports.contains(&8728) {
        why.push("API port 8728 open".to_owned());
    }
    if tcp_ports.contains(&8729) {
        why.push("API-SSL port 8729 open".to_owned());
    }
    if mndp {
        why.push("announces itself by MNDP".to_owned());
    }
    if is_mikrotik_oid(object_id) {
        why.push(format!("MikroTik sysObjectID {object_id}"));
    }
    why
}

impl Store {
    /// The viewer's live hosts (optionally of one site) that look like
    /// RouterOS and are not a managed device of their tenant yet (neither
    /// adopted nor at the address of a live device of the site), by address.
    pub async fn adoption_candidates(
        &self,
        viewer: &Viewer,
        site: Option<SiteId>,
    ) -> Result<Vec<AdoptionCandidate>, StoreError> {
        let tenant = viewer.tenant_filter();
        let sql = format!(
            "SELECT {HOST_COLUMNS} {HOST_FROM} \
             WHERE h.gone_at_ms IS NULL AND s.deleted_at_ms IS NULL \
             AND ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || h.tenant_id || ',%')) AND ($2 IS NULL OR h.site_id = $2) \
             AND (h.mndp IS NOT NULL OR h.snmp_object_id = $3 OR h.snmp_object_id LIKE $4 \
               OR EXISTS (SELECT 1 FROM host_ports p WHERE p.host_id = h.id AND p.protocol = 'tcp' \
                 AND p.port IN (8728, 8729))) \
             AND (h.device_id IS NULL OR NOT EXISTS \
               (SELECT 1 FROM devices d WHERE d.id = h.device_id AND d.deleted_at_ms IS NULL)) \
             AND NOT EXISTS (SELECT 1 FROM host_addresses a JOIN devices d ON d.address = a.address \
               WHERE a.host_id = h.id AND d.site_id = h.site_id AND d.tenant_id = h.tenant_id \
               AND d.deleted_at_ms IS NULL) \
             ORDER BY t.name, s.name, h.address_key, h.id"
        );
        let mut hosts = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            // Built from this module's constants only; values are bound.
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant.clone())
                .bind(site.map(|s| s.to_string()))
                .bind(MIKROTIK_ENTERPRISE_OID)
                .bind(format!("{MIKROTIK_ENTERPRISE_OID}.%"))
                .fetch_all(pool)
                .await?;
            rows.iter().map(host_row).collect::<Result<Vec<_>, _>>()?
        });
        attach_ports(self, &mut hosts, tenant.as_deref()).await?;
        Ok(hosts
            .into_iter()
            .map(|host| {
                let tcp = host.tcp_ports();
                let (api_port, api_tls) = api_of(&tcp);
                AdoptionCandidate {
                    why: reasons(&tcp, host.mndp_identity.is_some(), &host.snmp_object_id),
                    host,
                    api_port,
                    api_tls,
                }
            })
            .collect())
    }

    /// Adopts a host of the scope's tenant as a managed RouterOS device, with
    /// its site's credential profile: `reseal` turns the profile's sealed
    /// password into the new device's (see [`Resealing`]). One transaction:
    /// the device is added (as by [`Store::add_device`]), the host linked to
    /// it, and an `adopted` change recorded. `NotFound` for a host of another
    /// tenant (or a gone one); `Conflict`, explained, when the host is already
    /// managed, does not look like RouterOS, or its site has no profile.
    /// Recorded in the audit log (`discovery.adopt`) in the same transaction.
    pub async fn adopt_host<F>(
        &self,
        scope: &TenantScope,
        host: HostId,
        actor: &Actor,
        reseal: F,
    ) -> Result<DeviceId, StoreError>
    where
        F: FnOnce(&Resealing<'_>) -> Result<Vec<u8>, String> + Send,
    {
        let now = now_ms();
        let tenant = scope.tenant().to_string();
        let host_id = host.to_string();
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            // Write first: on SQLite a transaction that reads before it
            // writes fails with "database is locked" (no wait) when another
            // writer committed in between; a write takes the lock, waiting.
            sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
                .bind(&tenant)
                .execute(&mut *tx)
                .await?;
            let row: Option<HostToAdopt> = sqlx::query_as(
                "SELECT site_id, address, device_id, mndp, snmp_object_id FROM hosts \
                 WHERE id = $1 AND tenant_id = $2 AND gone_at_ms IS NULL",
            )
            .bind(&host_id)
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((site, address, device, mndp, object_id)) = row else {
                return Err(StoreError::NotFound(format!("host {host}")));
            };
            if let Some(device) = device {
                let live: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM devices WHERE id = $1 AND deleted_at_ms IS NULL")
                        .bind(&device)
                        .fetch_optional(&mut *tx)
                        .await?;
                if live.is_some() {
                    return Err(StoreError::Conflict(format!("host {host} is already managed as device {device}")));
                }
            }
            let managed: Option<(String, String)> = sqlx::query_as(
                "SELECT d.id, d.address FROM devices d JOIN host_addresses a ON a.address = d.address \
                 WHERE a.host_id = $1 AND d.site_id = $2 AND d.tenant_id = $3 AND d.deleted_at_ms IS NULL \
                 ORDER BY d.id LIMIT 1",
            )
            .bind(&host_id)
            .bind(&site)
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((device, at)) = managed {
                return Err(StoreError::Conflict(format!(
                    "host {host} is already managed: device {device} is at {at}"
                )));
            }
            let ports: Vec<(i64,)> = sqlx::query_as(
                "SELECT port FROM host_ports WHERE host_id = $1 AND protocol = 'tcp' AND port IN (8728, 8729)",
            )
            .bind(&host_id)
            .fetch_all(&mut *tx)
            .await?;
            let tcp: Vec<u16> = ports.into_iter().filter_map(|(p,)| u16::try_from(p).ok()).collect();
            if reasons(&tcp, mndp.is_some(), &object_id).is_empty() {
                return Err(StoreError::Conflict(format!(
                    "host {host} does not look like a RouterOS device (no API port open, no MNDP announcement, \
                     no MikroTik sysObjectID)"
                )));
            }
            let profile: Option<(String, Vec<u8>)> = sqlx::query_as(
                "SELECT username, password_sealed FROM site_credentials WHERE site_id = $1 AND tenant_id = $2",
            )
            .bind(&site)
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((username, sealed)) = profile else {
                return Err(StoreError::Conflict(
                    "the host's site has no credential profile to adopt it with; set one first".into(),
                ));
            };
            let site: SiteId = crate::parse_id("site", &site)?;
            let id = DeviceId::random();
            let password_sealed = reseal(&Resealing { site, device: id, sealed: &sealed }).map_err(StoreError::Vault)?;
            let (api_port, api_tls) = api_of(&tcp);
            let device = NewDevice {
                id,
                site,
                address,
                api_port,
                api_tls,
                ssh_port: 22,
                username,
                password_sealed,
                poll_interval_secs: ADOPTED_POLL_INTERVAL_SECS,
            };
            <Db as InsertDevice>::insert(&mut tx, &tenant, &device, now).await?;
            sqlx::query("UPDATE hosts SET device_id = $1, updated_at_ms = $2 WHERE id = $3")
                .bind(id.to_string())
                .bind(now)
                .bind(&host_id)
                .execute(&mut *tx)
                .await?;
            let detail = format!("as device {id} ({}:{api_port})", device.address);
            <Db as ApplyDiscovery>::change(
                &mut tx, &tenant, &site.to_string(), &host_id, now, ChangeKind::Adopted, &detail, "",
            )
            .await?;
            let event = AuditEvent::success(Some(scope.tenant()), "discovery.adopt", format!("host {host}")).with(
                Details::new()
                    .text("device", id.to_string())
                    .text("site", site.to_string())
                    .text("address", device.address.clone())
                    .number("api_port", i64::from(api_port)),
            );
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Clears a host's conflict flag (an operator looked into it). The
    /// `mac_conflict` change stays in its history.
    pub async fn clear_host_conflict(&self, scope: &TenantScope, host: HostId) -> Result<(), StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let n = sqlx::query(
                "UPDATE hosts SET conflict = 0, conflict_detail = '', updated_at_ms = $1 WHERE id = $2 AND tenant_id = $3",
            )
            .bind(now_ms())
            .bind(host.to_string())
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("host {host}")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routeros_is_recognised_by_port_mndp_or_enterprise_oid() {
        assert!(reasons(&[22, 80], false, "1.3.6.1.4.1.9.1.1").is_empty());
        assert!(reasons(&[], false, "1.3.6.1.4.1.149880").is_empty());
        assert_eq!(reasons(&[8728], false, ""), ["API port 8728 open"]);
        assert_eq!(reasons(&[], true, "").len(), 1);
        assert_eq!(reasons(&[], false, "1.3.6.1.4.1.14988.1").len(), 1);
        assert_eq!(api_of(&[8728, 8729]), (8729, true));
        assert_eq!(api_of(&[8728]), (8728, false));
        assert_eq!(api_of(&[]), (8728, false));
    }
}
