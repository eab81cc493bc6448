//! Managed RouterOS devices: what the collector knows about each one, which
//! agent polls it, and what the polls reported.
//!
//! * this module: ids, adding and deleting devices, the assignment of devices
//!   to agents, pins;
//! * [`reports`]: rows the agent port turns device reports into, stored in
//!   the same transaction as the rest of a batch;
//! * [`views`]: what the console and the command line read.
//!
//! A device belongs to one site of one tenant. Its password is stored sealed
//! with the tenant's vault key (see `outpost-vault`); the store never sees it
//! in clear. A device is polled by one agent of its site: a device without an
//! agent, or whose agent is no longer connected, is claimed by the next agent
//! of the site that asks ([`Store::claim_devices`]).
use std::fmt;
use std::str::FromStr;

use outpost_certs::{AgentId, SiteId, TenantId};
use uuid::Uuid;

use crate::audit::{Actor, AppendAudit, AuditEvent, Details};
use crate::row_scope::RowScope;
use crate::scope::{AdminScope, AgentScope, TenantScope};
use crate::{Store, StoreError, now_ms, on_pool, parse_id};

pub mod details;
pub mod import;
pub(crate) mod insert;
pub mod reports;
mod ssh_login;
pub mod views;

/// A device's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Uuid);

impl DeviceId {
    /// A fresh id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for DeviceId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What a device is in: the state its agent last reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// Added, not polled yet.
    Pending,
    /// Polled successfully.
    Up,
    /// Refused, timed out or unreachable.
    Unreachable,
    /// Wrong user name or password.
    AuthFailed,
    /// The API-SSL certificate is not the pinned one.
    TlsPinMismatch,
    /// The user's group lacks the `api` policy.
    NoApiPolicy,
    /// API-SSL without a certificate (anonymous DH).
    TlsUnsupported,
    /// The device answered with something unusable.
    ProtocolError,
}

impl DeviceState {
    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Up => "up",
            Self::Unreachable => "unreachable",
            Self::AuthFailed => "auth_failed",
            Self::TlsPinMismatch => "tls_pin_mismatch",
            Self::NoApiPolicy => "no_api_policy",
            Self::TlsUnsupported => "tls_unsupported",
            Self::ProtocolError => "protocol_error",
        }
    }

    /// Words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Pending => "not polled yet",
            Self::Up => "up",
            Self::Unreachable => "unreachable",
            Self::AuthFailed => "login failed",
            Self::TlsPinMismatch => "certificate changed",
            Self::NoApiPolicy => "no api policy",
            Self::TlsUnsupported => "api-ssl without certificate",
            Self::ProtocolError => "protocol error",
        }
    }
}

impl FromStr for DeviceState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => Self::Pending,
            "up" => Self::Up,
            "unreachable" => Self::Unreachable,
            "auth_failed" => Self::AuthFailed,
            "tls_pin_mismatch" => Self::TlsPinMismatch,
            "no_api_policy" => Self::NoApiPolicy,
            "tls_unsupported" => Self::TlsUnsupported,
            "protocol_error" => Self::ProtocolError,
            other => return Err(StoreError::Corrupt(format!("device state {other:?}"))),
        })
    }
}

/// A device to add. The caller makes the id first, because the sealed
/// password is bound to it.
#[derive(Clone)]
pub struct NewDevice {
    /// Its id (see [`DeviceId::random`]).
    pub id: DeviceId,
    /// The site it is at.
    pub site: SiteId,
    /// Address as the site's agent reaches it.
    pub address: String,
    /// API port.
    pub api_port: u16,
    /// API-SSL rather than the plain API.
    pub api_tls: bool,
    /// SSH port for configuration backups.
    pub ssh_port: u16,
    /// API (and SSH) user.
    pub username: String,
    /// The password, sealed with the tenant's vault key.
    pub password_sealed: Vec<u8>,
    /// Seconds between polls.
    pub poll_interval_secs: u32,
}

impl fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDevice")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("api_port", &self.api_port)
            .field("api_tls", &self.api_tls)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Checks what an operator typed for a device; the error names the field.
pub fn validate_new(address: &str, username: &str, poll_interval_secs: u32) -> Result<(), String> {
    if address.is_empty() || address.len() > 253 {
        return Err("address must be 1 to 253 characters".into());
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(format!("address {address:?} is not an IP address or host name"));
    }
    if username.is_empty() || username.len() > 64 || username.chars().any(char::is_control) {
        return Err("user name must be 1 to 64 printable characters".into());
    }
    if !(10..=86_400).contains(&poll_interval_secs) {
        return Err("poll interval must be 10 to 86400 seconds".into());
    }
    Ok(())
}

/// A device as its agent needs it (password still sealed).
#[derive(Clone)]
pub struct AssignedDevice {
    /// Its id.
    pub id: DeviceId,
    /// Its tenant (the vault key to open the password with).
    pub tenant: TenantId,
    /// Address.
    pub address: String,
    /// API port.
    pub api_port: u16,
    /// API-SSL.
    pub api_tls: bool,
    /// SSH port.
    pub ssh_port: u16,
    /// User.
    pub username: String,
    /// Sealed password.
    pub password_sealed: Vec<u8>,
    /// Seconds between polls.
    pub poll_interval_secs: u32,
    /// Pinned API-SSL certificate, hex SHA-256.
    pub api_tls_pin: Option<String>,
    /// Pinned SSH host key, hex SHA-256.
    pub ssh_host_key_pin: Option<String>,
}

impl fmt::Debug for AssignedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssignedDevice")
            .field("id", &self.id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

type AssignedRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Vec<u8>,
    i64,
    Option<String>,
    Option<String>,
);

fn assigned(row: AssignedRow) -> Result<AssignedDevice, StoreError> {
    let (id, tenant, address, api_port, api_tls, ssh_port, username, password_sealed, interval, pin, ssh_pin) = row;
    Ok(AssignedDevice {
        id: parse_id("device", &id)?,
        tenant: parse_id("tenant", &tenant)?,
        address,
        api_port: u16::try_from(api_port).map_err(|_| StoreError::Corrupt(format!("api port {api_port}")))?,
        api_tls: api_tls != 0,
        ssh_port: u16::try_from(ssh_port).map_err(|_| StoreError::Corrupt(format!("ssh port {ssh_port}")))?,
        username,
        password_sealed,
        poll_interval_secs: u32::try_from(interval).unwrap_or(60),
        api_tls_pin: pin,
        ssh_host_key_pin: ssh_pin,
    })
}

/// The audit record of a device added by an operator.
pub(crate) fn added_event(scope: &TenantScope, device: &NewDevice) -> AuditEvent {
    AuditEvent::success(Some(scope.tenant()), "device.add", format!("device {}", device.id)).with(
        Details::new()
            .text("site", device.site.to_string())
            .text("address", device.address.clone())
            .number("api_port", i64::from(device.api_port)),
    )
}

/// A cheap fingerprint of an agent's assignment: when it changes, the agent
/// must be sent its device list again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AssignmentVersion {
    count: i64,
    updated_at_ms: i64,
}

impl Store {
    /// The tenant and site of these names, if the site is live.
    pub async fn find_site(
        &self,
        _admin: &AdminScope,
        tenant_name: &str,
        site_name: &str,
    ) -> Result<Option<(TenantId, SiteId)>, StoreError> {
        on_pool!(self, RowScope::All, pool, _Db => {
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT s.tenant_id, s.id FROM sites s JOIN tenants t ON t.id = s.tenant_id \
                 WHERE t.name = $1 AND s.name = $2 AND s.deleted_at_ms IS NULL",
            )
            .bind(tenant_name)
            .bind(site_name)
            .fetch_optional(pool)
            .await?;
            row.map(|(t, s)| Ok((parse_id("tenant", &t)?, parse_id("site", &s)?))).transpose()
        })
    }

    /// Adds a device to a live site of the scope's tenant. Fails with
    /// `NotFound` for a site of another tenant, and with a message when the
    /// site already has a device at that address and port. Recorded in the
    /// audit log (`device.add`) in the same transaction.
    pub async fn add_device(
        &self,
        scope: &TenantScope,
        device: &NewDevice,
        actor: &Actor,
    ) -> Result<DeviceId, StoreError> {
        let now = now_ms();
        let tenant = scope.tenant().to_string();
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            // Write first: on SQLite a transaction that reads before it
            // writes fails with "database is locked" (no wait) when another
            // writer committed in between; a write takes the lock, waiting.
            sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
                .bind(&tenant)
                .execute(&mut *tx)
                .await?;
            <Db as insert::InsertDevice>::insert(&mut tx, &tenant, device, now).await?;
            let event = added_event(scope, device);
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            Ok(device.id)
        })
    }

    /// Deletes a device of the scope's tenant; its agent stops polling it.
    /// Recorded in the audit log (`device.delete`) in the same transaction.
    pub async fn delete_device(&self, scope: &TenantScope, device: DeviceId, actor: &Actor) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE devices SET deleted_at_ms = $1, updated_at_ms = $1 WHERE id = $2 AND tenant_id = $3 AND deleted_at_ms IS NULL",
            )
            .bind(now)
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("device {device}")));
            }
            let event = AuditEvent::success(Some(scope.tenant()), "device.delete", format!("device {device}"));
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Makes the API-SSL certificate `device` presents instead of its pin
    /// the new pin; returns it. A conflict when none is waiting. Recorded in
    /// the audit log (`device.accept_certificate`) in the same transaction.
    pub async fn accept_device_certificate(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        actor: &Actor,
    ) -> Result<String, StoreError> {
        self.accept_presented(scope, device, Presented::Certificate, actor)
            .await
    }

    /// Makes the SSH host key `device` presents instead of its pin the new
    /// pin; returns it. A conflict when no other key is waiting. Recorded in
    /// the audit log (`device.accept_host_key`) in the same transaction.
    pub async fn accept_device_host_key(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        actor: &Actor,
    ) -> Result<String, StoreError> {
        self.accept_presented(scope, device, Presented::HostKey, actor).await
    }

    async fn accept_presented(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        what: Presented,
        actor: &Actor,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let (tenant, id) = (scope.tenant().to_string(), device.to_string());
        let (select, update, event, missing) = what.sql();
        let action = match what {
            Presented::Certificate => "device.accept_certificate",
            Presented::HostKey => "device.accept_host_key",
        };
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            // Write first: on SQLite a transaction that reads before it
            // writes fails with "database is locked" (no wait) when another
            // writer committed in between; a write takes the lock, waiting.
            sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
                .bind(&tenant)
                .execute(&mut *tx)
                .await?;
            let row: Option<(Option<String>,)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .bind(&id)
                .bind(&tenant)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((presented,)) = row else {
                return Err(StoreError::NotFound(format!("device {device}")));
            };
            let Some(presented) = presented else {
                return Err(StoreError::Conflict(missing.into()));
            };
            // The assignment's version moves with updated_at_ms, so the
            // agent gets the new pin.
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(&presented)
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            <Db as reports::ApplyReports>::event(&mut tx, &tenant, &id, now, event, &format!("sha256 {presented}")).await?;
            let audit = AuditEvent::success(Some(scope.tenant()), action, format!("device {device}"))
                .with(Details::new().text("sha256", presented.clone()));
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(presented)
        })
    }

    /// Gives the agent the site's devices that no connected agent polls
    /// (new devices, or those of an agent that went away). Answers how many
    /// it took.
    pub async fn claim_devices(&self, scope: &AgentScope) -> Result<u64, StoreError> {
        let now = now_ms();
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            let n = sqlx::query(
                "UPDATE devices SET agent_id = $1, updated_at_ms = $2 \
                 WHERE site_id = $3 AND tenant_id = $4 AND deleted_at_ms IS NULL \
                 AND (agent_id IS NULL OR (agent_id <> $1 AND agent_id NOT IN \
                   (SELECT id FROM agents WHERE connected_since_ms IS NOT NULL AND revoked_at_ms IS NULL)))",
            )
            .bind(scope.agent().to_string())
            .bind(now)
            .bind(scope.site().to_string())
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n)
        })
    }

    /// The version of the agent's assignment (see [`AssignmentVersion`]).
    pub async fn assignment_version(&self, scope: &AgentScope) -> Result<AssignmentVersion, StoreError> {
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            let (count, updated_at_ms): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(updated_at_ms) FROM devices WHERE agent_id = $1 AND tenant_id = $2",
            )
            .bind(scope.agent().to_string())
            .bind(scope.tenant().to_string())
            .fetch_one(pool)
            .await?;
            Ok(AssignmentVersion { count, updated_at_ms: updated_at_ms.unwrap_or(0) })
        })
    }

    /// The live devices the agent polls.
    pub async fn assigned_devices(&self, scope: &AgentScope) -> Result<Vec<AssignedDevice>, StoreError> {
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            let rows: Vec<AssignedRow> = sqlx::query_as(
                "SELECT id, tenant_id, address, api_port, api_tls, ssh_port, username, password_sealed, \
                 poll_interval_secs, api_tls_pin, ssh_host_key_pin FROM devices \
                 WHERE agent_id = $1 AND tenant_id = $2 AND site_id = $3 AND deleted_at_ms IS NULL ORDER BY id",
            )
            .bind(scope.agent().to_string())
            .bind(scope.tenant().to_string())
            .bind(scope.site().to_string())
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(assigned).collect()
        })
    }

    /// Which agent polls each of the tenant's devices (for sending it
    /// commands such as live traffic).
    pub async fn device_agent(&self, scope: &TenantScope, device: DeviceId) -> Result<Option<AgentId>, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let row: Option<(Option<String>,)> = sqlx::query_as(
                "SELECT agent_id FROM devices WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
            )
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .fetch_optional(pool)
            .await?;
            match row {
                None => Err(StoreError::NotFound(format!("device {device}"))),
                Some((agent,)) => agent.map(|a| parse_id("agent", &a)).transpose(),
            }
        })
    }

    /// The newest stored configuration of one of the agent's site's devices:
    /// (HMAC of the normalised export, sealed export).
    pub async fn latest_config(
        &self,
        scope: &AgentScope,
        device: DeviceId,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            let row: Option<(String, Vec<u8>)> = sqlx::query_as(
                "SELECT c.normalized_hmac, c.sealed_export FROM config_versions c JOIN devices d ON d.id = c.device_id \
                 WHERE c.device_id = $1 AND d.tenant_id = $2 AND d.site_id = $3 ORDER BY c.taken_at_ms DESC LIMIT 1",
            )
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .bind(scope.site().to_string())
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }

    /// Records the vault's key check on first use, and refuses another key
    /// afterwards: a wrong key file would make every sealed password unusable.
    pub async fn check_vault_key(&self, _admin: &AdminScope, key_check: &str) -> Result<bool, StoreError> {
        on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query("INSERT INTO vault_meta (id, key_check, created_at_ms) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(key_check)
                .bind(now_ms())
                .execute(pool)
                .await?;
            let (stored,): (String,) = sqlx::query_as("SELECT key_check FROM vault_meta WHERE id = 1")
                .fetch_one(pool)
                .await?;
            Ok(stored == key_check)
        })
    }
}

#[cfg(test)]
mod tests;

/// A credential a device presents that an operator may accept as its pin.
#[derive(Clone, Copy, Debug)]
enum Presented {
    Certificate,
    HostKey,
}

impl Presented {
    /// Its select, update, event kind and the conflict's words; fixed SQL.
    fn sql(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Self::Certificate => (
                "SELECT presented_tls_fingerprint FROM devices WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
                "UPDATE devices SET api_tls_pin = $1, presented_tls_fingerprint = NULL, updated_at_ms = $2, \
                 state = 'pending', state_reason = 'new certificate accepted', state_since_ms = $2 WHERE id = $3",
                "certificate_accepted",
                "the device has not presented a different certificate",
            ),
            Self::HostKey => (
                "SELECT presented_ssh_host_key FROM devices WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
                "UPDATE devices SET ssh_host_key_pin = $1, presented_ssh_host_key = NULL, updated_at_ms = $2 WHERE id = $3",
                "ssh_host_key_accepted",
                "the device has not presented a different SSH host key",
            ),
        }
    }
}
