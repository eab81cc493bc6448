//! Agents: enrollment records, connection state, revocation.
use std::collections::HashSet;

use outpost_certs::ca::IssuedCertificate;
use outpost_certs::{AgentId, SiteId, TenantId};

use super::scope::Viewer;
use super::{AdminScope, AgentScope, Store, StoreError, now_ms, on_pool, parse_id};

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
}

/// State returned when an agent's stream opens.
#[derive(Clone, Copy, Debug)]
pub struct SessionStart {
    /// Everything up to here is committed.
    pub acked_seq: u64,
    /// When this stream opened; identifies it to [`Store::agent_disconnected`].
    pub connected_since_ms: i64,
}

type AgentTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    i64,
);

macro_rules! agent_select {
    () => {
        "SELECT a.id, a.tenant_id, t.name, a.site_id, s.name, a.hostname, a.os, a.version, \
     a.last_seen_ms, a.connected_since_ms, a.outbox_depth, a.acked_seq, a.revoked_at_ms, a.cert_not_after_ms \
     FROM agents a JOIN tenants t ON t.id = a.tenant_id JOIN sites s ON s.id = a.site_id"
    };
}

fn agent_row(t: AgentTuple, now: i64) -> Result<AgentRow, StoreError> {
    let (
        id,
        tenant,
        tenant_name,
        site,
        site_name,
        hostname,
        os,
        version,
        last_seen,
        connected,
        depth,
        acked,
        revoked,
        not_after,
    ) = t;
    Ok(AgentRow {
        agent: parse_id("agent", &id)?,
        tenant: parse_id("tenant", &tenant)?,
        tenant_name,
        site: parse_id("site", &site)?,
        site_name,
        hostname,
        os,
        version,
        last_seen_ms: last_seen,
        online: connected.is_some() && revoked.is_none() && last_seen.is_some_and(|s| now - s < ONLINE_WINDOW_MS),
        outbox_depth: depth,
        acked_seq: acked,
        revoked: revoked.is_some(),
        cert_not_after_ms: not_after,
    })
}

impl Store {
    /// Agents the viewer may see, by tenant, site and host name.
    pub async fn list_agents(&self, viewer: &Viewer) -> Result<Vec<AgentRow>, StoreError> {
        let tenant_filter = match viewer {
            Viewer::Admin(_) => None,
            Viewer::Tenant(scope) => Some(scope.tenant().to_string()),
        };
        let sql = concat!(
            agent_select!(),
            " WHERE ($1 IS NULL OR a.tenant_id = $1) ORDER BY t.name, s.name, a.hostname, a.id"
        );
        let rows: Vec<AgentTuple> =
            on_pool!(self, pool, _Db => sqlx::query_as(sql).bind(tenant_filter).fetch_all(pool).await?);
        let now = now_ms();
        rows.into_iter().map(|r| agent_row(r, now)).collect()
    }

    /// Every revoked agent id, for the TLS verifier.
    pub async fn revoked_agents(&self) -> Result<HashSet<AgentId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool, _Db => {
            sqlx::query_as("SELECT id FROM agents WHERE revoked_at_ms IS NOT NULL").fetch_all(pool).await?
        });
        rows.into_iter().map(|(id,)| parse_id("agent", &id)).collect()
    }

    /// Revokes an agent. Returns false if it was already revoked.
    pub async fn revoke_agent(&self, _admin: &AdminScope, agent: AgentId) -> Result<bool, StoreError> {
        on_pool!(self, pool, _Db => {
            let exists: Option<(Option<i64>,)> = sqlx::query_as("SELECT revoked_at_ms FROM agents WHERE id = $1")
                .bind(agent.to_string())
                .fetch_optional(pool)
                .await?;
            match exists {
                None => Err(StoreError::NotFound(format!("agent {agent}"))),
                Some((Some(_),)) => Ok(false),
                Some((None,)) => {
                    sqlx::query("UPDATE agents SET revoked_at_ms = $1, connected_since_ms = NULL WHERE id = $2 AND revoked_at_ms IS NULL")
                        .bind(now_ms())
                        .bind(agent.to_string())
                        .execute(pool)
                        .await?;
                    Ok(true)
                }
            }
        })
    }

    /// Records that the agent's stream opened; fails with `NotFound` if the agent is
    /// unknown or revoked, so a deleted record cannot be revived by a valid certificate.
    pub async fn agent_connected(
        &self,
        scope: &AgentScope,
        version: &str,
        outbox_depth: u64,
    ) -> Result<SessionStart, StoreError> {
        let now = now_ms();
        let row: Option<(i64,)> = on_pool!(self, pool, _Db => {
            sqlx::query_as(
                "UPDATE agents SET connected_since_ms = $1, last_seen_ms = $1, version = $2, outbox_depth = $3 \
                 WHERE id = $4 AND tenant_id = $5 AND site_id = $6 AND revoked_at_ms IS NULL RETURNING acked_seq",
            )
            .bind(now)
            .bind(version)
            .bind(i64::try_from(outbox_depth).unwrap_or(i64::MAX))
            .bind(scope.agent().to_string())
            .bind(scope.tenant().to_string())
            .bind(scope.site().to_string())
            .fetch_optional(pool)
            .await?
        });
        match row {
            Some((acked,)) => Ok(SessionStart {
                acked_seq: u64::try_from(acked).unwrap_or(0),
                connected_since_ms: now,
            }),
            None => Err(StoreError::NotFound(format!("agent {}", scope.agent()))),
        }
    }

    /// Records that the agent's stream opened at `session.connected_since_ms`
    /// closed. A newer stream of the same agent (a reconnect that overtook the
    /// old stream's teardown) keeps the agent online.
    pub async fn agent_disconnected(&self, scope: &AgentScope, session: &SessionStart) -> Result<(), StoreError> {
        on_pool!(self, pool, _Db => {
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

    /// Whether the agent is revoked (or gone).
    pub async fn agent_is_revoked(&self, scope: &AgentScope) -> Result<bool, StoreError> {
        let row: Option<(Option<i64>,)> = on_pool!(self, pool, _Db => {
            sqlx::query_as("SELECT revoked_at_ms FROM agents WHERE id = $1 AND tenant_id = $2")
                .bind(scope.agent().to_string())
                .bind(scope.tenant().to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(!matches!(row, Some((None,))))
    }

    /// Records a renewed certificate.
    pub async fn agent_renewed(&self, scope: &AgentScope, cert: &IssuedCertificate) -> Result<(), StoreError> {
        on_pool!(self, pool, _Db => {
            sqlx::query("UPDATE agents SET cert_serial = $1, cert_not_after_ms = $2 WHERE id = $3 AND tenant_id = $4")
                .bind(&cert.serial)
                .bind(cert.not_after.saturating_mul(1000))
                .bind(scope.agent().to_string())
                .bind(scope.tenant().to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
