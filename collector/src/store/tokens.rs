//! Enrollment tokens: created by an administrator, redeemed once by an agent.
use std::time::Duration;

use outpost_certs::ca::IssuedCertificate;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, AgentIdentity};

use super::tenants::EnsuredSite;
use super::{AdminScope, Store, StoreError, now_ms, on_pool, parse_id};

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
        Self::Store(StoreError::Database(e))
    }
}

/// A completed enrollment.
#[derive(Clone, Debug)]
pub struct Enrolled {
    /// The new agent's identity.
    pub identity: AgentIdentity,
    /// Its certificate.
    pub certificate: IssuedCertificate,
    /// Tenant name.
    pub tenant_name: String,
    /// Site name.
    pub site_name: String,
}

/// secret hash, tenant, site, expiry, used, site deleted, tenant name, site name
type TokenRow = (String, String, String, i64, Option<i64>, Option<i64>, String, String);

impl Store {
    /// Stores a new token (hashed) for `site`; returns its expiry in Unix ms.
    pub async fn create_token(
        &self,
        _admin: &AdminScope,
        site: &EnsuredSite,
        token: &EnrollmentToken,
        ttl: Duration,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        let expires = now.saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64);
        on_pool!(self, pool, _Db => {
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
            .execute(pool)
            .await?;
        });
        Ok(expires)
    }

    /// Redeems `token` for a new agent, atomically: the token is marked used and
    /// the agent recorded in one transaction, so a token can enroll one agent only.
    /// `sign` turns the identity decided here into a certificate.
    pub async fn enroll(
        &self,
        token: &EnrollmentToken,
        hostname: &str,
        version: &str,
        sign: impl FnOnce(&AgentIdentity) -> Result<IssuedCertificate, String>,
    ) -> Result<Enrolled, EnrollError> {
        let now = now_ms();
        let agent = AgentId::random();
        on_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            // Claim first: a write as the transaction's first statement takes
            // SQLite's write lock up front (waiting out other writers) instead of
            // failing when a read transaction later tries to upgrade. On
            // PostgreSQL the row lock and the `used_at_ms IS NULL` recheck make
            // two concurrent redemptions serialise; only one can win.
            let claimed: Option<(String,)> = sqlx::query_as(
                "UPDATE enrollment_tokens SET used_at_ms = $1, used_by_agent = $2 \
                 WHERE id = $3 AND used_at_ms IS NULL RETURNING secret_hash",
            )
            .bind(now)
            .bind(agent.to_string())
            .bind(token.id())
            .fetch_optional(&mut *tx)
            .await?;
            let row: Option<TokenRow> = sqlx::query_as(
                "SELECT k.secret_hash, k.tenant_id, k.site_id, k.expires_at_ms, k.used_at_ms, s.deleted_at_ms, t.name, s.name \
                 FROM enrollment_tokens k JOIN sites s ON s.id = k.site_id JOIN tenants t ON t.id = k.tenant_id \
                 WHERE k.id = $1",
            )
            .bind(token.id())
            .fetch_optional(&mut *tx)
            .await?;
            // Every early return drops `tx`, which rolls the claim back.
            let Some((hash, tenant, site, expires, _used, deleted, tenant_name, site_name)) = row else {
                return Err(EnrollError::UnknownToken);
            };
            if !token.matches_hash(&hash) {
                return Err(EnrollError::UnknownToken);
            }
            if claimed.is_none() {
                return Err(EnrollError::AlreadyUsed);
            }
            if expires <= now {
                return Err(EnrollError::Expired);
            }
            if deleted.is_some() {
                return Err(EnrollError::SiteDeleted);
            }
            let identity = AgentIdentity {
                tenant: parse_id("tenant", &tenant)?,
                site: parse_id("site", &site)?,
                agent,
            };
            let certificate = sign(&identity).map_err(EnrollError::Certificate)?;
            sqlx::query(
                "INSERT INTO agents (id, tenant_id, site_id, hostname, version, enrolled_at_ms, cert_serial, cert_not_after_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(identity.agent.to_string())
            .bind(&tenant)
            .bind(&site)
            .bind(hostname)
            .bind(version)
            .bind(now)
            .bind(&certificate.serial)
            .bind(certificate.not_after.saturating_mul(1000))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Enrolled { identity, certificate, tenant_name, site_name })
        })
    }
}

/// secret hash, expiry, used, site deleted: what a read-only token check needs.
type TokenCheckRow = (String, i64, Option<i64>, Option<i64>);

impl Store {
    /// Checks `token` with a read only: it exists, its secret matches, it is
    /// unused and unexpired, and its site is live. [`Store::enroll`] checks all
    /// of this again (the token may be redeemed in between), but claims the
    /// token first, which takes SQLite's write lock; checking here before it
    /// means a wrong, used or expired token never does.
    pub async fn check_enrollment_token(&self, token: &EnrollmentToken) -> Result<(), EnrollError> {
        let now = now_ms();
        let row: Option<TokenCheckRow> = on_pool!(self, pool, _Db => {
            sqlx::query_as(
                "SELECT k.secret_hash, k.expires_at_ms, k.used_at_ms, s.deleted_at_ms \
                 FROM enrollment_tokens k JOIN sites s ON s.id = k.site_id \
                 WHERE k.id = $1",
            )
            .bind(token.id())
            .fetch_optional(pool)
            .await?
        });
        // The same refusals, in the same order, as `Store::enroll`.
        let Some((hash, expires, used, deleted)) = row else {
            return Err(EnrollError::UnknownToken);
        };
        if !token.matches_hash(&hash) {
            return Err(EnrollError::UnknownToken);
        }
        if used.is_some() {
            return Err(EnrollError::AlreadyUsed);
        }
        if expires <= now {
            return Err(EnrollError::Expired);
        }
        if deleted.is_some() {
            return Err(EnrollError::SiteDeleted);
        }
        Ok(())
    }
}
