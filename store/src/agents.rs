//! Agents: enrollment records, connection state, revocation.
use std::collections::HashSet;

use outpost_certs::ca::IssuedCertificate;
use outpost_certs::{AgentId, SiteId, TenantId};

use super::audit::{Actor, AppendAudit, AuditEvent};
use super::scope::Viewer;
use super::{AdminScope, AgentScope, Store, StoreError, now_ms, on_pool, parse_id};
use crate::row_scope::RowScope;

/// An agent counts as online while connected and heard from within this window.
/// Agents report host facts every minute, so two missed reports mark it offline.
pub const ONLINE_WINDOW_MS: i64 = 150_000;

/// One agent, for listings.
#[derive(Clone, Debug)]
pub struct AgentRow {
    /// Agent id.
    pub agent: AgentId,
    /// Tenant id.
    pub tenant: TenantId,
    /// Tenant name.
    pub tenant_name: String,
    /// Site id.
    pub site: SiteId,
    /// Site name.
    pub site_name: String,
    /// Reported host name.
    pub hostname: String,
    /// Reported operating system.
    pub os: String,
    /// Reported agent version.
    pub version: String,
    /// Last time the collector heard from it, Unix ms.
    pub last_seen_ms: Option<i64>,
    /// Connected now and heard from recently.
    pub online: bool,
    /// Observations waiting in the agent's outbox, as last reported.
    pub outbox_depth: i64,
    /// Highest committed sequence number.
    pub acked_seq: i64,
    /// Revoked agents are refused at the TLS handshake.
    pub revoked: bool,
    /// Expiry of the current certificate, Unix ms.
    pub cert_not_after_ms: i64,
    /// The outbox instance that last streamed for this agent.
    pub instance_id: String,
    /// Set when a second instance tried to stream as this agent while the first
    /// was connected (a cloned machine): when (Unix ms) and what was seen.
    pub instance_conflict: Option<(i64, String)>,
    /// Resent observations whose payload differed from what was stored under
    /// the same sequence number.
    pub seq_conflicts: i64,
}

#[cfg(any(test, feature = "test-support"))]
impl AgentRow {
    /// An offline, never-seen agent `host` in `site`, for tests to adjust.
    /// Other crates' unit tests get it with the `test-support` feature.
    #[doc(hidden)]
    pub fn sample(site: &super::tenants::SiteRow, host: &str) -> Self {
        Self {
            agent: AgentId::random(),
            tenant: site.tenant,
            tenant_name: site.tenant_name.clone(),
            site: site.site,
            site_name: site.site_name.clone(),
            hostname: host.into(),
            os: "linux".into(),
            version: "1.0.0".into(),
            last_seen_ms: None,
            online: false,
            outbox_depth: 0,
            acked_seq: 0,
            revoked: false,
            cert_not_after_ms: 0,
            instance_id: String::new(),
            instance_conflict: None,
            seq_conflicts: 0,
        }
    }
}

impl AgentRow {
    /// What the console and `agent list` say about an instance conflict.
    pub fn conflict_note(&self) -> Option<String> {
        self.instance_conflict
            .as_ref()
            .map(|(_, what)| format!("agent id used by two instances (cloned machine?): {what}"))
    }
}

/// What an agent's stream opening tells the store.
#[derive(Clone, Copy, Debug)]
pub struct Connecting<'a> {
    /// Reported agent version.
    pub version: &'a str,
    /// Reported outbox depth.
    pub outbox_depth: u64,
    /// Serial (lowercase hex) of the certificate the connection presented.
    pub serial: &'a str,
    /// The outbox instance (`Hello.instance_id`); empty from agents that predate it.
    pub instance_id: &'a str,
    /// Where it connects from, for the conflict note.
    pub remote: std::net::SocketAddr,
}

/// Why an agent's stream is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectRefused {
    /// No such agent in this tenant and site, or revoked.
    #[error("this agent is revoked or unknown to the collector")]
    UnknownOrRevoked,
    /// The certificate is not the agent's current one (nor the one before it).
    #[error(
        "this certificate has been replaced by a newer one of the same agent \
         (renewed or re-enrolled elsewhere); it is no longer accepted"
    )]
    CertificateReplaced,
    /// Another instance of the agent id is streaming.
    #[error(
        "agent id {agent} is already streaming from another instance ({other}); \
         two machines share one agent identity (cloned machine?): \
         re-enroll this copy with a new token for its own site"
    )]
    OtherInstance {
        /// The agent.
        agent: AgentId,
        /// The instance that holds the stream.
        other: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ConnectRefused {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

/// State returned when an agent's stream opens.
#[derive(Clone, Copy, Debug)]
pub struct SessionStart {
    /// Everything up to here is committed.
    pub acked_seq: u64,
    /// When this stream opened; identifies it to [`Store::agent_disconnected`].
    pub connected_since_ms: i64,
}

/// One row of [`agent_select!`].
#[derive(sqlx::FromRow)]
struct AgentDbRow {
    id: String,
    tenant_id: String,
    tenant_name: String,
    site_id: String,
    site_name: String,
    hostname: String,
    os: String,
    version: String,
    last_seen_ms: Option<i64>,
    connected_since_ms: Option<i64>,
    outbox_depth: i64,
    acked_seq: i64,
    revoked_at_ms: Option<i64>,
    cert_not_after_ms: i64,
    instance_id: String,
    instance_conflict_at_ms: Option<i64>,
    instance_conflict: String,
    seq_conflicts: i64,
}

macro_rules! agent_select {
    () => {
        "SELECT a.id, a.tenant_id, t.name AS tenant_name, a.site_id, s.name AS site_name, a.hostname, a.os, \
         a.version, a.last_seen_ms, a.connected_since_ms, a.outbox_depth, a.acked_seq, a.revoked_at_ms, \
         a.cert_not_after_ms, a.instance_id, a.instance_conflict_at_ms, a.instance_conflict, a.seq_conflicts \
         FROM agents a JOIN tenants t ON t.id = a.tenant_id JOIN sites s ON s.id = a.site_id"
    };
}

fn agent_row(r: AgentDbRow, now: i64) -> Result<AgentRow, StoreError> {
    Ok(AgentRow {
        agent: parse_id("agent", &r.id)?,
        tenant: parse_id("tenant", &r.tenant_id)?,
        tenant_name: r.tenant_name,
        site: parse_id("site", &r.site_id)?,
        site_name: r.site_name,
        hostname: r.hostname,
        os: r.os,
        version: r.version,
        last_seen_ms: r.last_seen_ms,
        online: r.connected_since_ms.is_some()
            && r.revoked_at_ms.is_none()
            && r.last_seen_ms.is_some_and(|s| now - s < ONLINE_WINDOW_MS),
        outbox_depth: r.outbox_depth,
        acked_seq: r.acked_seq,
        revoked: r.revoked_at_ms.is_some(),
        cert_not_after_ms: r.cert_not_after_ms,
        instance_id: r.instance_id,
        instance_conflict: r.instance_conflict_at_ms.map(|at| (at, r.instance_conflict)),
        seq_conflicts: r.seq_conflicts,
    })
}

impl Store {
    /// Agents the viewer may see, by tenant, site and host name.
    pub async fn list_agents(&self, viewer: &Viewer) -> Result<Vec<AgentRow>, StoreError> {
        let tenant_filter = viewer.tenant_filter();
        let sql = concat!(
            agent_select!(),
            " WHERE ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || a.tenant_id || ',%')) ORDER BY t.name, s.name, a.hostname, a.id"
        );
        let rows: Vec<AgentDbRow> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => sqlx::query_as(sql).bind(tenant_filter).fetch_all(pool).await?);
        let now = now_ms();
        rows.into_iter().map(|r| agent_row(r, now)).collect()
    }

    /// Every revoked agent id, for the TLS verifier.
    pub async fn revoked_agents(&self) -> Result<HashSet<AgentId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT id FROM agents WHERE revoked_at_ms IS NOT NULL").fetch_all(pool).await?
        });
        rows.into_iter().map(|(id,)| parse_id("agent", &id)).collect()
    }

    /// Revokes an agent, recorded in the audit log (`agent.revoke`) in the
    /// same transaction. Returns false if it was already revoked.
    pub async fn revoke_agent(&self, _admin: &AdminScope, agent: AgentId, actor: &Actor) -> Result<bool, StoreError> {
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            // Write first (SQLite takes its write lock here, waiting for others).
            let revoked: Option<(String,)> = sqlx::query_as(
                "UPDATE agents SET revoked_at_ms = $1, connected_since_ms = NULL \
                 WHERE id = $2 AND revoked_at_ms IS NULL RETURNING tenant_id",
            )
            .bind(now_ms())
            .bind(agent.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((tenant,)) = revoked else {
                let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM agents WHERE id = $1")
                    .bind(agent.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                return match exists {
                    None => Err(StoreError::NotFound(format!("agent {agent}"))),
                    Some(_) => Ok(false),
                };
            };
            let event = AuditEvent::success(Some(parse_id("tenant", &tenant)?), "agent.revoke", format!("agent {agent}"));
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records that the agent's stream opened, if it may: the agent exists
    /// unrevoked in its tenant and site, presents its current certificate (or
    /// the one before it, which stops working once the current one is used),
    /// and no other instance of it is streaming. `other_live` names an
    /// instance this collector knows to be streaming for the agent right now.
    pub async fn agent_connected(
        &self,
        scope: &AgentScope,
        c: &Connecting<'_>,
        other_live: Option<&str>,
    ) -> Result<SessionStart, ConnectRefused> {
        let now = now_ms();
        let agent = scope.agent();
        let local_conflict = other_live.filter(|o| !o.is_empty() && !c.instance_id.is_empty() && *o != c.instance_id);
        // One statement decides and records, so two streams racing on two
        // collectors cannot both pass. A stream another collector holds counts
        // as live while it was heard from within the online window.
        let row: Option<(i64,)> = if local_conflict.is_some() {
            // Known refused; the checks below say whether for that or for a
            // worse reason (revoked, replaced certificate).
            None
        } else {
            on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query_as(
                "UPDATE agents SET connected_since_ms = $1, last_seen_ms = $1, version = $2, outbox_depth = $3, \
                 instance_id = $4, prev_cert_serial = CASE WHEN cert_serial = $5 THEN NULL ELSE prev_cert_serial END \
                 WHERE id = $6 AND tenant_id = $7 AND site_id = $8 AND revoked_at_ms IS NULL \
                 AND (cert_serial = $5 OR prev_cert_serial = $5) \
                 AND NOT (instance_id <> '' AND $4 <> '' AND instance_id <> $4 \
                          AND connected_since_ms IS NOT NULL AND last_seen_ms > $9) \
                 RETURNING acked_seq",
            )
            .bind(now)
            .bind(c.version)
            .bind(i64::try_from(c.outbox_depth).unwrap_or(i64::MAX))
            .bind(c.instance_id)
            .bind(c.serial)
            .bind(agent.to_string())
            .bind(scope.tenant().to_string())
            .bind(scope.site().to_string())
            .bind(now - ONLINE_WINDOW_MS)
            .fetch_optional(pool)
            .await?
            })
        };
        if let Some((acked,)) = row {
            return Ok(SessionStart {
                acked_seq: u64::try_from(acked).unwrap_or(0),
                connected_since_ms: now,
            });
        }
        // Refused: say why.
        let why: Option<(Option<i64>, String, Option<String>, String)> = on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query_as(
                "SELECT revoked_at_ms, cert_serial, prev_cert_serial, instance_id FROM agents \
                 WHERE id = $1 AND tenant_id = $2 AND site_id = $3",
            )
            .bind(agent.to_string())
            .bind(scope.tenant().to_string())
            .bind(scope.site().to_string())
            .fetch_optional(pool)
            .await?
        });
        match why {
            None | Some((Some(_), ..)) => Err(ConnectRefused::UnknownOrRevoked),
            Some((None, current, prev, _)) if current != c.serial && prev.as_deref() != Some(c.serial) => {
                Err(ConnectRefused::CertificateReplaced)
            }
            Some((None, _, _, stored)) => {
                let other = local_conflict.map(str::to_owned).unwrap_or(stored);
                self.record_instance_conflict(scope, c, &other, now).await?;
                Err(ConnectRefused::OtherInstance { agent, other })
            }
        }
    }

    async fn record_instance_conflict(
        &self,
        scope: &AgentScope,
        c: &Connecting<'_>,
        other: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let note = format!(
            "instance {} from {} refused while instance {other} was streaming",
            c.instance_id, c.remote
        );
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query(
                "UPDATE agents SET instance_conflict_at_ms = $1, instance_conflict = $2 WHERE id = $3 AND tenant_id = $4",
            )
            .bind(now)
            .bind(&note)
            .bind(scope.agent().to_string())
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records that the agent's stream opened at `session.connected_since_ms`
    /// closed. A newer stream of the same agent (a reconnect that overtook the
    /// old stream's teardown) keeps the agent online.
    pub async fn agent_disconnected(&self, scope: &AgentScope, session: &SessionStart) -> Result<(), StoreError> {
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query(
                "UPDATE agents SET connected_since_ms = NULL, last_seen_ms = $1 \
                 WHERE id = $2 AND tenant_id = $3 AND connected_since_ms = $4",
            )
                .bind(now_ms())
                .bind(scope.agent().to_string())
                .bind(scope.tenant().to_string())
                .bind(session.connected_since_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Whether the agent may renew with the certificate `serial`: it exists
    /// unrevoked, and `serial` is its current certificate or the one before.
    /// An old certificate cannot renew forever.
    pub async fn agent_may_renew(&self, scope: &AgentScope, serial: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query_as(
                "SELECT id FROM agents WHERE id = $1 AND tenant_id = $2 AND site_id = $3 AND revoked_at_ms IS NULL \
                 AND (cert_serial = $4 OR prev_cert_serial = $4)",
            )
            .bind(scope.agent().to_string())
            .bind(scope.tenant().to_string())
            .bind(scope.site().to_string())
            .bind(serial)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }

    /// Records a renewed certificate, issued to a connection that presented
    /// `presented`: that one stays valid until the new one is first used (the
    /// answer may be lost), every other earlier one stops working. False when
    /// `presented` stopped being acceptable in the meantime.
    pub async fn agent_renewed(
        &self,
        scope: &AgentScope,
        presented: &str,
        cert: &IssuedCertificate,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, RowScope::agent(scope), pool, _Db => {
            sqlx::query(
                "UPDATE agents SET prev_cert_serial = $1, cert_serial = $2, cert_not_after_ms = $3 \
                 WHERE id = $4 AND tenant_id = $5 AND revoked_at_ms IS NULL AND (cert_serial = $1 OR prev_cert_serial = $1)",
            )
            .bind(presented)
            .bind(&cert.serial)
            .bind(cert.not_after.saturating_mul(1000))
            .bind(scope.agent().to_string())
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
