//! Enrollment tokens: created by an administrator, redeemed once by an agent.
use std::time::Duration;

use outpost_certs::ca::IssuedCertificate;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, AgentIdentity, SiteId, TenantId};

use super::audit::{Actor, AppendAudit, AuditEvent, Details};
use super::tenants::EnsuredSite;
use super::{AdminScope, Store, StoreError, now_ms, on_pool, parse_id};
use crate::row_scope::RowScope;

/// Why an enrollment was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// No such token, or the secret does not match (not told apart on purpose).
    #[error("enrollment token is not valid")]
    UnknownToken,
    /// The token was already redeemed.
    #[error("enrollment token has already been used")]
    AlreadyUsed,
    /// The token expired.
    #[error("enrollment token expired")]
    Expired,
    /// The token's site was deleted.
    #[error("the site this enrollment token was issued for has been deleted")]
    SiteDeleted,
    /// The CSR could not be signed.
    #[error("{0}")]
    Certificate(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for EnrollError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

/// How long a redeemed token answers a retry (same token, same key) with the
/// certificate it already issued: covers an answer lost on the network.
pub const RETRY_WINDOW_MS: i64 = 10 * 60 * 1000;

/// What the agent asks for, beyond the token.
#[derive(Clone, Debug)]
pub struct EnrollAsk<'a> {
    /// Reported host name.
    pub hostname: &'a str,
    /// Reported agent version.
    pub version: &'a str,
    /// SHA-256 (hex) of the CSR's public key, whose signature the caller checked.
    pub csr_key_sha256: String,
    /// The identity of the agent's previous certificate, when the caller has
    /// checked that it was issued by this collector's CA and that the CSR is
    /// signed by that certificate's key.
    pub previous: Option<AgentIdentity>,
}

/// A completed enrollment.
#[derive(Clone, Debug)]
pub struct Enrolled {
    /// The agent's identity.
    pub identity: AgentIdentity,
    /// Its certificate.
    pub certificate: IssuedCertificate,
    /// Tenant name.
    pub tenant_name: String,
    /// Site name.
    pub site_name: String,
    /// The agent kept the id of its previous certificate (same tenant and site,
    /// key proven); that certificate no longer works.
    pub kept_id: bool,
    /// A retry of an enrollment already completed with this token and key: the
    /// same certificate as before.
    pub retried: bool,
}

/// secret hash, tenant, site, expiry, used, site deleted, tenant name, site name,
/// used by, key hash, issued certificate
type TokenRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Store {
    /// Stores a new token (hashed) for `site`; returns its expiry in Unix ms.
    pub async fn create_token(
        &self,
        _admin: &AdminScope,
        site: &EnsuredSite,
        token: &EnrollmentToken,
        ttl: Duration,
        actor: &Actor,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        let expires = now.saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64);
        let audit = AuditEvent::success(Some(site.tenant), "token.create", format!("token {}", token.id())).with(
            Details::new()
                .text("site", site.site.to_string())
                .number("expires_at_ms", expires),
        );
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO enrollment_tokens (id, secret_hash, tenant_id, site_id, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token.id())
            .bind(token.secret_hash())
            .bind(site.tenant.to_string())
            .bind(site.site.to_string())
            .bind(now)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
        });
        Ok(expires)
    }

    /// Redeems `token`, atomically: the token is marked used and the agent
    /// recorded in one transaction, so a token can enroll one agent only.
    /// `sign` turns the identity decided here into a certificate.
    ///
    /// * An agent proving its previous identity (`ask.previous`) for the
    ///   token's own tenant and site keeps its id, if that agent exists and is
    ///   not revoked; its previous certificates stop working.
    /// * A retry with the same token and the same key within
    ///   [`RETRY_WINDOW_MS`] gets the certificate already issued; any other use
    ///   of a redeemed token is refused.
    ///
    /// An enrollment is recorded in the audit log (`agent.enroll`, the agent
    /// as actor, `source` its peer address) in the same transaction; a retry
    /// changes nothing and records nothing.
    pub async fn enroll(
        &self,
        token: &EnrollmentToken,
        ask: &EnrollAsk<'_>,
        source: Option<std::net::SocketAddr>,
        sign: impl FnOnce(&AgentIdentity) -> Result<IssuedCertificate, String>,
    ) -> Result<Enrolled, EnrollError> {
        let now = now_ms();
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            // Claim first: a write as the transaction's first statement takes
            // SQLite's write lock up front (waiting out other writers) instead of
            // failing when a read transaction later tries to upgrade. On
            // PostgreSQL the row lock and the `used_at_ms IS NULL` recheck make
            // two concurrent redemptions serialise; only one can win.
            let claimed: Option<(String,)> = sqlx::query_as(
                "UPDATE enrollment_tokens SET used_at_ms = $1, csr_key_sha256 = $2 \
                 WHERE id = $3 AND used_at_ms IS NULL RETURNING secret_hash",
            )
            .bind(now)
            .bind(&ask.csr_key_sha256)
            .bind(token.id())
            .fetch_optional(&mut *tx)
            .await?;
            let row: Option<TokenRow> = sqlx::query_as(
                "SELECT k.secret_hash, k.tenant_id, k.site_id, k.expires_at_ms, k.used_at_ms, s.deleted_at_ms, t.name, s.name, \
                 k.used_by_agent, k.csr_key_sha256, k.issued_cert_hex \
                 FROM enrollment_tokens k JOIN sites s ON s.id = k.site_id JOIN tenants t ON t.id = k.tenant_id \
                 WHERE k.id = $1",
            )
            .bind(token.id())
            .fetch_optional(&mut *tx)
            .await?;
            // Every early return drops `tx`, which rolls the claim back.
            let Some((hash, tenant, site, expires, used, deleted, tenant_name, site_name, used_by, key_hash, issued)) = row
            else {
                return Err(EnrollError::UnknownToken);
            };
            if !token.matches_hash(&hash) {
                return Err(EnrollError::UnknownToken);
            }
            if deleted.is_some() {
                return Err(EnrollError::SiteDeleted);
            }
            if claimed.is_none() {
                let retry = used.is_some_and(|at| now - at <= RETRY_WINDOW_MS)
                    && key_hash.as_deref() == Some(ask.csr_key_sha256.as_str());
                return match (retry, issued, used_by) {
                    (true, Some(der_hex), Some(_)) => {
                        let der = hex::decode(&der_hex)
                            .map_err(|e| StoreError::Corrupt(format!("issued certificate of token {}: {e}", token.id())))?;
                        let cert = outpost_certs::AgentCertificate::parse(&der)
                            .map_err(|e| StoreError::Corrupt(format!("issued certificate of token {}: {e}", token.id())))?;
                        Ok(Enrolled {
                            identity: cert.identity,
                            certificate: IssuedCertificate {
                                der,
                                serial: cert.serial,
                                not_before: cert.not_before,
                                not_after: cert.not_after,
                            },
                            tenant_name,
                            site_name,
                            kept_id: false,
                            retried: true,
                        })
                    }
                    _ => Err(EnrollError::AlreadyUsed),
                };
            }
            if expires <= now {
                return Err(EnrollError::Expired);
            }
            let tenant_id: TenantId = parse_id("tenant", &tenant)?;
            let site_id: SiteId = parse_id("site", &site)?;
            // Keep the previous id only for the token's own tenant and site, and
            // only for an agent that still exists there unrevoked.
            let kept = match ask.previous {
                Some(prev) if prev.tenant == tenant_id && prev.site == site_id => {
                    let live: Option<(String,)> = sqlx::query_as(
                        "SELECT id FROM agents WHERE id = $1 AND tenant_id = $2 AND site_id = $3 AND revoked_at_ms IS NULL",
                    )
                    .bind(prev.agent.to_string())
                    .bind(&tenant)
                    .bind(&site)
                    .fetch_optional(&mut *tx)
                    .await?;
                    live.map(|_| prev.agent)
                }
                _ => None,
            };
            let identity = AgentIdentity {
                tenant: tenant_id,
                site: site_id,
                agent: kept.unwrap_or_else(AgentId::random),
            };
            let certificate = sign(&identity).map_err(EnrollError::Certificate)?;
            if kept.is_some() {
                // The new certificate replaces every earlier one of this agent.
                sqlx::query(
                    "UPDATE agents SET hostname = $1, version = $2, cert_serial = $3, prev_cert_serial = NULL, \
                     cert_not_after_ms = $4 WHERE id = $5",
                )
                .bind(ask.hostname)
                .bind(ask.version)
                .bind(&certificate.serial)
                .bind(certificate.not_after.saturating_mul(1000))
                .bind(identity.agent.to_string())
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO agents (id, tenant_id, site_id, hostname, version, enrolled_at_ms, cert_serial, cert_not_after_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(identity.agent.to_string())
                .bind(&tenant)
                .bind(&site)
                .bind(ask.hostname)
                .bind(ask.version)
                .bind(now)
                .bind(&certificate.serial)
                .bind(certificate.not_after.saturating_mul(1000))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE enrollment_tokens SET used_by_agent = $1, issued_cert_hex = $2 WHERE id = $3")
                .bind(identity.agent.to_string())
                .bind(hex::encode(&certificate.der))
                .bind(token.id())
                .execute(&mut *tx)
                .await?;
            let actor = Actor::agent(&format!("agent {}", identity.agent), source);
            let audit = AuditEvent::success(Some(identity.tenant), "agent.enroll", format!("agent {}", identity.agent))
                .with(
                    Details::new()
                        .text("token", token.id())
                        .text("site", identity.site.to_string())
                        .text("hostname", ask.hostname)
                        .text("version", ask.version)
                        .text("cert_serial", certificate.serial.clone())
                        .flag("kept_id", kept.is_some()),
                );
            <Db as AppendAudit>::append(&mut tx, &actor, std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(Enrolled { identity, certificate, tenant_name, site_name, kept_id: kept.is_some(), retried: false })
        })
    }
}

/// secret hash, expiry, used, site deleted: what a read-only token check needs.
type TokenCheckRow = (String, i64, Option<i64>, Option<i64>, Option<String>);

impl Store {
    /// Checks `token` with a read only: it exists, its secret matches, it is
    /// unused and unexpired, and its site is live. [`Store::enroll`] checks all
    /// of this again (the token may be redeemed in between), but claims the
    /// token first, which takes SQLite's write lock; checking here before it
    /// means a wrong, used or expired token never does.
    pub async fn check_enrollment_token(
        &self,
        token: &EnrollmentToken,
        csr_key_sha256: &str,
    ) -> Result<(), EnrollError> {
        let now = now_ms();
        let row: Option<TokenCheckRow> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT k.secret_hash, k.expires_at_ms, k.used_at_ms, s.deleted_at_ms, k.csr_key_sha256 \
                 FROM enrollment_tokens k JOIN sites s ON s.id = k.site_id \
                 WHERE k.id = $1",
            )
            .bind(token.id())
            .fetch_optional(pool)
            .await?
        });
        // The same refusals, in the same order, as `Store::enroll`.
        let Some((hash, expires, used, deleted, key_hash)) = row else {
            return Err(EnrollError::UnknownToken);
        };
        if !token.matches_hash(&hash) {
            return Err(EnrollError::UnknownToken);
        }
        if deleted.is_some() {
            return Err(EnrollError::SiteDeleted);
        }
        if let Some(at) = used {
            // A retry with the same key inside the window gets its certificate
            // again from `Store::enroll`; anything else is refused here.
            let retry = now - at <= RETRY_WINDOW_MS && key_hash.as_deref() == Some(csr_key_sha256);
            return if retry { Ok(()) } else { Err(EnrollError::AlreadyUsed) };
        }
        if expires <= now {
            return Err(EnrollError::Expired);
        }
        Ok(())
    }
}
