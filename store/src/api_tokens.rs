//! API tokens: bearer credentials for programs using the public API.
//!
//! A token reads `outpost_<id>_<secret><check>`: a public id to find the row
//! by, 190 random bits of base62 secret, and six base62 characters of CRC-32
//! over everything before them, so a mistyped or truncated token is told
//! apart from a wrong one without a database read (and secret scanners can
//! recognise the shape). Only the SHA-256 of the whole token is stored: the
//! secret is random and long, so a slow hash would add nothing.
//!
//! A token is bound to one tenant or, created by an MSP administrator, to
//! every tenant; its scope (read, operate, admin) is an upper bound that the
//! access check intersects with its creator's role at the time of use, so a
//! token never outlives the rights of whoever made it.
use std::fmt;

use outpost_certs::TenantId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::{Actor, AppendAudit, AuditEvent, Details};
use super::members::{Principal, Role};
use super::{AdminScope, Store, StoreError, TenantScope, now_ms, on_pool, parse_id};
use crate::row_scope::RowScope;

/// What every token starts with.
pub const PREFIX: &str = "outpost_";
/// Default lifetime.
pub const DEFAULT_TTL_MS: i64 = 90 * 24 * 3_600 * 1_000;
/// Longest lifetime a token may be given.
pub const MAX_TTL_MS: i64 = 2 * 365 * 24 * 3_600 * 1_000;
/// `last_used_ms` is only written when it is older than this, so a busy
/// client does not turn every call into a write.
pub const LAST_USED_GRANULARITY_MS: i64 = 5 * 60 * 1_000;

const ID_CHARS: usize = 12;
const SECRET_CHARS: usize = 32;
const CHECK_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What a token may do, at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenScope {
    /// Reads.
    Read,
    /// Reads and operational writes.
    Operate,
    /// Everything a tenant administrator may do.
    Admin,
}

impl TokenScope {
    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Admin => "admin",
        }
    }
}

impl std::str::FromStr for TokenScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "operate" => Ok(Self::Operate),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown token scope {other:?} (read, operate or admin)")),
        }
    }
}

impl TokenScope {
    /// The highest role a token of this scope acts with.
    pub fn role(self) -> Role {
        match self {
            Self::Read => Role::Viewer,
            Self::Operate => Role::Operator,
            Self::Admin => Role::Admin,
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which tenants a new token reaches: one, proven by the caller's scope for
/// it, or every tenant, proven by an MSP administrator's scope.
#[derive(Clone, Copy, Debug)]
pub enum TokenBinding {
    /// One tenant.
    Tenant(TenantScope),
    /// Every tenant.
    MspWide(AdminScope),
}

/// A new token's settings.
#[derive(Clone, Debug)]
pub struct NewApiToken<'a> {
    /// A label for people ("psa-sync").
    pub name: &'a str,
    /// Upper bound of what it may do.
    pub scope: TokenScope,
    /// Its tenant, or every tenant.
    pub binding: TokenBinding,
    /// The user creating it (whose role caps it from now on).
    pub created_by: &'a str,
    /// Lifetime.
    pub ttl_ms: i64,
}

/// A token as listed; never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRow {
    /// Public id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Upper bound.
    pub scope: TokenScope,
    /// Its tenant; `None` for an MSP-wide token.
    pub tenant: Option<TenantId>,
    /// The creating user's id.
    pub created_by: String,
    /// The creating user's name.
    pub created_by_name: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// End of validity.
    pub expires_at_ms: i64,
    /// Last accepted use (to within [`LAST_USED_GRANULARITY_MS`]).
    pub last_used_ms: Option<i64>,
    /// When it was revoked.
    pub revoked_at_ms: Option<i64>,
}

/// A token that matched a stored, live one. The access check still has to cap
/// its scope by its creator's current role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedApiToken {
    /// Public id.
    pub id: String,
    /// Upper bound.
    pub scope: TokenScope,
    /// Its tenant; `None` for an MSP-wide token.
    pub tenant: Option<TenantId>,
    /// The creating user's id.
    pub user_id: String,
    /// End of validity.
    pub expires_at_ms: i64,
}

/// Why a presented token was refused. Callers answer all of them the same way
/// ("unauthenticated"); the difference is for logs and the audit log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRefused {
    /// Not of the token shape, or its check characters do not match (a typo).
    #[error("not an Outpost API token (malformed or mistyped)")]
    Malformed,
    /// No token with that id, or the secret does not match.
    #[error("API token is not valid")]
    Unknown,
    /// Past its expiry.
    #[error("API token expired")]
    Expired,
    /// Revoked.
    #[error("API token was revoked")]
    Revoked,
}

/// Why checking a token failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCheckError {
    /// The token is refused.
    #[error(transparent)]
    Refused(#[from] TokenRefused),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TokenCheckError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

fn random_base62(n: usize) -> String {
    // Rejection sampling keeps every character equally likely (62 does not divide 256).
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in rand::random::<[u8; 32]>() {
            if out.len() == n {
                break;
            }
            if b < 248 {
                out.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

fn base62_fixed(mut v: u32, width: usize) -> String {
    let mut chars = vec![b'0'; width];
    for slot in chars.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(chars).unwrap_or_default()
}

fn check_chars(body: &str) -> String {
    base62_fixed(CRC.checksum(body.as_bytes()), CHECK_CHARS)
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The public id of a token of the right shape with matching check
/// characters; [`TokenRefused::Malformed`] otherwise.
pub fn parse_token(token: &str) -> Result<&str, TokenRefused> {
    let rest = token.strip_prefix(PREFIX).ok_or(TokenRefused::Malformed)?;
    let (id, tail) = rest.split_once('_').ok_or(TokenRefused::Malformed)?;
    if id.len() != ID_CHARS || tail.len() != SECRET_CHARS + CHECK_CHARS || !is_base62(id) || !is_base62(tail) {
        return Err(TokenRefused::Malformed);
    }
    let (_, check) = tail.split_at(SECRET_CHARS);
    let body = &token[..token.len() - CHECK_CHARS];
    if check_chars(body) != check {
        return Err(TokenRefused::Malformed);
    }
    Ok(id)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

type TokenTuple = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

fn token_row(r: TokenTuple) -> Result<ApiTokenRow, StoreError> {
    let (
        id,
        name,
        scope,
        tenant,
        created_by,
        created_by_name,
        created_at_ms,
        expires_at_ms,
        last_used_ms,
        revoked_at_ms,
    ) = r;
    Ok(ApiTokenRow {
        scope: scope
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("API token {id} scope {scope:?}")))?,
        tenant: tenant.map(|t| parse_id("tenant", &t)).transpose()?,
        id,
        name,
        created_by,
        created_by_name,
        created_at_ms,
        expires_at_ms,
        last_used_ms,
        revoked_at_ms,
    })
}

const LIST_SQL: &str = "SELECT t.id, t.name, t.scope, t.tenant_id, t.created_by, u.username, t.created_at_ms, \
     t.expires_at_ms, t.last_used_ms, t.revoked_at_ms \
     FROM api_tokens t JOIN users u ON u.id = t.created_by";

impl Store {
    /// Creates a token; returns its row and the token text, which is shown
    /// once and never stored.
    /// Recorded in the audit log (`api_token.create`, done by `actor`) in the
    /// same transaction.
    pub async fn create_api_token(
        &self,
        new: &NewApiToken<'_>,
        actor: &Actor,
    ) -> Result<(ApiTokenRow, String), StoreError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(StoreError::Conflict(
                "token name must be 1 to 64 characters without control characters".into(),
            ));
        }
        if new.ttl_ms <= 0 || new.ttl_ms > MAX_TTL_MS {
            return Err(StoreError::Conflict(format!(
                "token lifetime must be between 1 ms and {} days",
                MAX_TTL_MS / 86_400_000
            )));
        }
        let id = random_base62(ID_CHARS);
        let body = format!("{PREFIX}{id}_{}", random_base62(SECRET_CHARS));
        let token = format!("{body}{}", check_chars(&body));
        let hash = token_hash(&token);
        let tenant = match new.binding {
            TokenBinding::Tenant(scope) => Some(scope.tenant().to_string()),
            TokenBinding::MspWide(_) => None,
        };
        let now = now_ms();
        let expires = now.saturating_add(new.ttl_ms);
        let tenant_id: Option<TenantId> = match new.binding {
            TokenBinding::Tenant(scope) => Some(scope.tenant()),
            TokenBinding::MspWide(_) => None,
        };
        let event = AuditEvent::success(tenant_id, "api_token.create", format!("api token {id}")).with(
            Details::new()
                .text("name", name)
                .text("scope", new.scope.as_str())
                .number("expires_at_ms", expires),
        );
        let inserted = on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO api_tokens (id, name, secret_hash, scope, tenant_id, created_by, created_at_ms, expires_at_ms) \
                 SELECT $1, $2, $3, $4, $5, u.id, $7, $8 FROM users u WHERE u.id = $6",
            )
            .bind(&id)
            .bind(name)
            .bind(&hash)
            .bind(new.scope.as_str())
            .bind(&tenant)
            .bind(new.created_by)
            .bind(now)
            .bind(expires)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted > 0 {
                <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
            }
            inserted
        });
        if inserted == 0 {
            return Err(StoreError::NotFound(format!("user {}", new.created_by)));
        }
        let row = self
            .api_token(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API token {id}")))?;
        Ok((row, token))
    }

    async fn api_token(&self, id: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        let sql = format!("{LIST_SQL} WHERE t.id = $1");
        let row: Option<TokenTuple> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?
        });
        row.map(token_row).transpose()
    }

    /// One tenant's tokens, newest first (MSP-wide tokens are not among them).
    pub async fn tenant_api_tokens(&self, scope: &TenantScope) -> Result<Vec<ApiTokenRow>, StoreError> {
        let sql = format!("{LIST_SQL} WHERE t.tenant_id = $1 ORDER BY t.created_at_ms DESC, t.id");
        let rows: Vec<TokenTuple> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(scope.tenant().to_string())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(token_row).collect()
    }

    /// Every token, MSP-wide ones included, newest first.
    pub async fn all_api_tokens(&self, _admin: &AdminScope) -> Result<Vec<ApiTokenRow>, StoreError> {
        let sql = format!("{LIST_SQL} ORDER BY t.created_at_ms DESC, t.id");
        let rows: Vec<TokenTuple> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        rows.into_iter().map(token_row).collect()
    }

    /// Revokes a token of `binding`'s reach: a tenant's own token, or (MSP
    /// administrators) any. Another tenant's token is "not found". Revoking a
    /// revoked token is a no-op.
    /// Recorded in the audit log (`api_token.revoke`) in the same transaction.
    pub async fn revoke_api_token(
        &self,
        binding: TokenBinding,
        id: &str,
        actor: &Actor,
    ) -> Result<ApiTokenRow, StoreError> {
        let now = now_ms();
        let changed = on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let changed = match binding {
                TokenBinding::Tenant(scope) => sqlx::query(
                    "UPDATE api_tokens SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE id = $2 AND tenant_id = $3",
                )
                .bind(now)
                .bind(id)
                .bind(scope.tenant().to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                TokenBinding::MspWide(_) => sqlx::query(
                    "UPDATE api_tokens SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            };
            if changed > 0 {
                let tenant: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM api_tokens WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                let tenant = tenant.map(|t| parse_id("tenant", &t)).transpose()?;
                let event = AuditEvent::success(tenant, "api_token.revoke", format!("api token {id}"));
                <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
            }
            changed
        });
        if changed == 0 {
            return Err(StoreError::NotFound(format!("API token {id}")));
        }
        self.api_token(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API token {id}")))
    }

    /// Checks a presented token: shape and check characters, then the stored
    /// hash (compared in constant time), expiry and revocation. Records the
    /// use (coarsely, see [`LAST_USED_GRANULARITY_MS`]).
    pub async fn verify_api_token(&self, token: &str) -> Result<VerifiedApiToken, TokenCheckError> {
        let id = parse_token(token)?;
        type Row = (String, String, Option<String>, String, i64, Option<i64>, Option<i64>);
        let row: Option<Row> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT secret_hash, scope, tenant_id, created_by, expires_at_ms, revoked_at_ms, last_used_ms \
                 FROM api_tokens WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some((hash, scope, tenant, user_id, expires_at_ms, revoked_at_ms, last_used_ms)) = row else {
            return Err(TokenRefused::Unknown.into());
        };
        if !bool::from(token_hash(token).as_bytes().ct_eq(hash.as_bytes())) {
            return Err(TokenRefused::Unknown.into());
        }
        if revoked_at_ms.is_some() {
            return Err(TokenRefused::Revoked.into());
        }
        let now = now_ms();
        if now >= expires_at_ms {
            return Err(TokenRefused::Expired.into());
        }
        if last_used_ms.is_none_or(|t| now - t >= LAST_USED_GRANULARITY_MS) {
            on_pool!(self, RowScope::All, pool, _Db => {
                sqlx::query(
                    "UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2 AND (last_used_ms IS NULL OR last_used_ms < $1)",
                )
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
            });
        }
        Ok(VerifiedApiToken {
            id: id.to_owned(),
            scope: scope
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("API token {id} scope {scope:?}")))?,
            tenant: tenant.map(|t| parse_id("tenant", &t)).transpose()?,
            user_id,
            expires_at_ms,
        })
    }
}

/// Lets the engine tests forge tokens of the right shape.
impl Store {
    /// Checks a presented token and returns who it acts as: its creator, as
    /// they are now, cut down to the token's tenant and capped by its scope.
    /// A creator who was disabled or deleted takes their tokens with them; a
    /// creator who lost a role takes it from their tokens too.
    pub async fn api_token_principal(&self, token: &str) -> Result<(Principal, VerifiedApiToken), TokenCheckError> {
        let verified = self.verify_api_token(token).await?;
        match self.token_principal(&verified).await? {
            Some(principal) => Ok((principal, verified)),
            None => Err(TokenRefused::Unknown.into()),
        }
    }

    /// A token checked before, by its id, for a call that outlives one
    /// request (a live stream): who it acts as now, or `None` once it was
    /// revoked, expired or lost its creator.
    pub async fn api_token_principal_by_id(
        &self,
        id: &str,
    ) -> Result<Option<(Principal, VerifiedApiToken)>, StoreError> {
        type Row = (String, Option<String>, String, i64, Option<i64>);
        let row: Option<Row> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT scope, tenant_id, created_by, expires_at_ms, revoked_at_ms FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let Some((scope, tenant, user_id, expires_at_ms, revoked_at_ms)) = row else {
            return Ok(None);
        };
        if revoked_at_ms.is_some() || now_ms() >= expires_at_ms {
            return Ok(None);
        }
        let verified = VerifiedApiToken {
            id: id.to_owned(),
            scope: scope
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("API token {id} scope {scope:?}")))?,
            tenant: tenant.map(|t| parse_id("tenant", &t)).transpose()?,
            user_id,
            expires_at_ms,
        };
        Ok(self.token_principal(&verified).await?.map(|p| (p, verified)))
    }

    /// The principal a verified token acts as; `None` when its creator is
    /// disabled or gone.
    async fn token_principal(&self, verified: &VerifiedApiToken) -> Result<Option<Principal>, StoreError> {
        let owner: Option<(String, i64)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT username, is_msp_admin FROM users WHERE id = $1 AND disabled_at_ms IS NULL")
                .bind(&verified.user_id)
                .fetch_optional(pool)
                .await?
        });
        let Some((username, msp_admin)) = owner else {
            return Ok(None);
        };
        let cap = verified.scope.role();
        let label = format!("{username} (token {})", verified.id);
        let principal = match (verified.tenant, msp_admin != 0) {
            (None, true) if cap == Role::Admin => {
                Principal::verified(verified.user_id.clone(), label, true, Vec::new())
            }
            (None, true) => {
                let tenants: Vec<String> = on_pool!(self, RowScope::All, pool, _Db => {
                    sqlx::query_scalar("SELECT id FROM tenants").fetch_all(pool).await?
                });
                let roles = tenants
                    .iter()
                    .map(|t| Ok((parse_id("tenant", t)?, cap)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Principal::verified(verified.user_id.clone(), label, false, roles)
            }
            (bound, owner_is_admin) => {
                let roles = if owner_is_admin {
                    bound.map(|t| vec![(t, Role::Admin)]).unwrap_or_default()
                } else {
                    self.roles_of(&verified.user_id).await?
                };
                let roles = roles
                    .into_iter()
                    .filter(|(t, _)| bound.is_none_or(|b| b == *t))
                    .map(|(t, r)| (t, r.min(cap)))
                    .collect();
                Principal::verified(verified.user_id.clone(), label, false, roles)
            }
        };
        Ok(Some(principal))
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) fn check(body: &str) -> String {
        super::check_chars(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of_shape() -> String {
        let body = format!("{PREFIX}{}_{}", random_base62(ID_CHARS), random_base62(SECRET_CHARS));
        format!("{body}{}", check_chars(&body))
    }

    #[test]
    fn a_generated_token_parses_and_any_changed_character_is_caught() {
        let token = token_of_shape();
        assert!(parse_token(&token).is_ok(), "{token}");
        assert_eq!(parse_token(&token[..token.len() - 1]), Err(TokenRefused::Malformed));
        // Every single-character substitution in the id or secret is caught by the check.
        for i in PREFIX.len()..token.len() - CHECK_CHARS {
            if token.as_bytes()[i] == b'_' {
                continue;
            }
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).expect("ascii");
            assert_eq!(parse_token(&typo), Err(TokenRefused::Malformed), "position {i}");
        }
    }

    #[test]
    fn other_shapes_are_malformed() {
        for bad in [
            "",
            "outpost_",
            "outpost_abc_def",
            "Bearer x",
            "outpost1.a.b.c",
            "outpost_ééééééééééé_x",
        ] {
            assert_eq!(parse_token(bad), Err(TokenRefused::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn base62_is_fixed_width_and_secrets_use_the_alphabet() {
        assert_eq!(base62_fixed(0, 6), "000000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(u32::MAX, 6).len(), 6);
        let s = random_base62(1_000);
        assert!(is_base62(&s) && s.len() == 1_000);
    }
}
