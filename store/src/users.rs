//! Console users and their sessions.
//!
//! Passwords are argon2id hashes (PHC strings). Session and CSRF tokens are 256
//! random bits; the database holds only the SHA-256 of the session token, so a
//! leaked database does not leak live sessions.
use std::collections::HashMap;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::audit::{Actor, AppendAudit, AuditEvent};
use super::members::Principal;
use super::scope::Viewer;
use super::{AdminScope, Store, StoreError, now_ms, on_pool};

/// How long a console session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// A logged-in console session.
#[derive(Clone, Debug)]
pub struct Session {
    /// User name.
    pub username: String,
    /// CSRF token for this session's forms.
    pub csrf_token: String,
    /// What the user may see.
    pub viewer: Viewer,
    /// Who the user is and their roles.
    pub principal: Principal,
    /// TOTP is required and the user has none yet: the console shows them
    /// nothing but setting it up (sessions opened before it was required).
    pub totp_due: bool,
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A session row to insert: see [`Store::new_session_row`].
pub(crate) struct NewSessionRow {
    pub(crate) id_hash: String,
    pub(crate) csrf_token: String,
    pub(crate) created_at_ms: i64,
    pub(crate) expires_at_ms: i64,
}

/// Names a session without being able to open one: the hash the database
/// keeps. Lets a caller ask "is this session still live?" in bulk.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl SessionKey {
    /// The key of the session a cookie value opens.
    pub fn of(token: &str) -> Self {
        Self(token_hash(token))
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

use super::passwords::hash_password;
use super::passwords::verify_password;
use crate::row_scope::RowScope;

/// A valid argon2id hash of a random password, checked for unknown users so
/// they cost the same as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0vU6dMOMSfJ9rG7hKzcD1fZ3Cz0lJ2l1gKQ3tJm5uWk";

/// A user's stored password hash (or a dummy one for an unknown name), from
/// [`Store::credential`].
pub struct Credential {
    /// User id and whether they may sign in (not disabled); `None` for an unknown name.
    user: Option<(String, bool)>,
    hash: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of logs.
        f.debug_struct("Credential")
            .field("known", &self.user.is_some())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Checks `password` with argon2id: slow on purpose, so run it off the
    /// async threads. Disabled users and unknown names fail after the same work.
    pub fn verify(self, password: &str) -> Option<VerifiedUser> {
        let ok = verify_password(password, &self.hash);
        match self.user {
            Some((user_id, true)) if ok => Some(VerifiedUser { user_id }),
            _ => None,
        }
    }
}

/// A user whose password [`Credential::verify`] accepted: the only way to get
/// one, so no session opens without a checked password.
#[derive(Debug)]
pub struct VerifiedUser {
    pub(crate) user_id: String,
}

impl VerifiedUser {
    /// The user's id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

impl Store {
    /// Sets the password of `username`, creating them as an MSP-wide
    /// administrator if there is no such user (an existing user keeps their
    /// roles: a password reset grants nothing), and ends their sessions;
    /// recorded in the audit log (`user.set_password`) in the same transaction.
    pub async fn set_admin_password(
        &self,
        _admin: &AdminScope,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| StoreError::Corrupt(format!("hashing task failed: {e}")))??;
        let event = AuditEvent::success(None, "user.set_password", format!("user {username}"));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, is_msp_admin, created_at_ms) VALUES ($1, $2, $3, 1, $4) \
                 ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(username)
            .bind(&hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            // A new password ends every session of that user.
            sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM login_challenges WHERE user_id = (SELECT id FROM users WHERE username = $1)")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Whether any user exists.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let (n,): (i64,) = on_pool!(self, RowScope::All, pool, _Db => sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(pool).await?);
        Ok(n > 0)
    }

    /// The stored credential of `username`, to check a password against with
    /// [`Credential::verify`] and then [`Self::open_session`]. The two steps are
    /// apart so the caller decides where the slow hash runs (the console caps
    /// how many run at once). Unknown users get a credential too, so timing
    /// does not tell which user names exist.
    pub async fn credential(&self, username: &str) -> Result<Credential, StoreError> {
        let row: Option<(String, String, Option<i64>)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT id, password_hash, disabled_at_ms FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await?
        });
        Ok(match row {
            Some((user_id, hash, disabled)) => Credential {
                user: Some((user_id, disabled.is_none())),
                hash,
            },
            None => Credential {
                user: None,
                hash: DUMMY_HASH.to_owned(),
            },
        })
    }

    /// Opens a session for a user whose password was just checked and returns
    /// its cookie value. The sign-in is recorded in the audit log
    /// (`console.login`, done by `actor`) in the same transaction.
    pub async fn open_session(&self, user: VerifiedUser, actor: &Actor) -> Result<String, StoreError> {
        let token = random_token();
        let now = now_ms();
        let event = AuditEvent::success(None, "console.login", format!("user {}", actor.name()));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash(&token))
            .bind(&user.user_id)
            .bind(random_token())
            .bind(now)
            .bind(now + SESSION_TTL_MS)
            .execute(&mut *tx)
            .await?;
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(token)
    }

    /// A new session's cookie value and the row to insert for it, for
    /// callers that open a session inside their own transaction.
    pub(crate) fn new_session_row() -> (String, NewSessionRow) {
        let token = random_token();
        let now = now_ms();
        let row = NewSessionRow {
            id_hash: token_hash(&token),
            csrf_token: random_token(),
            created_at_ms: now,
            expires_at_ms: now + SESSION_TTL_MS,
        };
        (token, row)
    }

    /// The live session for a cookie value, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<(String, String, String, i64, bool)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT u.id, u.username, s.csrf_token, u.is_msp_admin, \
                 (u.totp_sealed IS NULL AND EXISTS (SELECT 1 FROM console_settings c \
                   WHERE c.name = 'require_totp' AND c.value = '1')) \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = $1 AND s.expires_at_ms > $2 AND u.disabled_at_ms IS NULL",
            )
            .bind(token_hash(token))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?
        });
        let Some((user_id, username, csrf_token, is_admin, totp_due)) = row else {
            return Ok(None);
        };
        let roles = if is_admin != 0 {
            Vec::new()
        } else {
            self.roles_of(&user_id).await?
        };
        let principal = Principal::verified(user_id, username.clone(), is_admin != 0, roles);
        Ok(Some(Session {
            username,
            csrf_token,
            viewer: principal.viewer(),
            principal,
            totp_due,
        }))
    }

    /// Deletes every expired session and returns how many there were. Expired
    /// sessions are already refused by [`Self::session`]; this keeps the table
    /// from growing with every sign-in that never signs out.
    pub async fn prune_expired_sessions(&self) -> Result<u64, StoreError> {
        let pruned = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                .bind(now_ms())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(pruned)
    }

    /// Every session [`Self::session`] would accept now, with what it may
    /// see as of now (its user's current memberships), in one query, so one
    /// reader can check many open streams at once and a stream follows a
    /// change of its user's tenants without reconnecting.
    pub async fn live_sessions(&self) -> Result<HashMap<SessionKey, Viewer>, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> = on_pool!(self, RowScope::All, pool, _Db => {
            // The same conditions as `session`, so both agree on who is signed in.
            sqlx::query_as(
                "SELECT s.id_hash, u.is_msp_admin, m.tenant_id FROM sessions s JOIN users u ON u.id = s.user_id \
                 LEFT JOIN memberships m ON m.user_id = u.id AND u.is_msp_admin = 0 \
                 WHERE s.expires_at_ms > $1 AND u.disabled_at_ms IS NULL",
            )
            .bind(now_ms())
            .fetch_all(pool)
            .await?
        });
        let mut tenants: HashMap<SessionKey, Option<Vec<outpost_certs::TenantId>>> = HashMap::new();
        for (hash, msp_admin, tenant) in rows {
            let entry = tenants
                .entry(SessionKey(hash))
                .or_insert_with(|| (msp_admin == 0).then(Vec::new));
            if let (Some(list), Some(t)) = (entry.as_mut(), tenant) {
                list.push(crate::parse_id("tenant", &t)?);
            }
        }
        Ok(tenants
            .into_iter()
            .map(|(key, list)| {
                let viewer = match list {
                    None => Viewer::Admin(AdminScope::verified()),
                    Some(list) => Viewer::Tenants(crate::scope::TenantSet::verified(list)),
                };
                (key, viewer)
            })
            .collect())
    }

    /// Ends a session, recorded in the audit log (`console.logout`, done by
    /// `actor`) in the same transaction when it was still open.
    pub async fn logout(&self, token: &str, actor: &Actor) -> Result<(), StoreError> {
        let now = now_ms();
        let event = AuditEvent::success(None, "console.logout", format!("user {}", actor.name()));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query("DELETE FROM sessions WHERE id_hash = $1 AND expires_at_ms > $2")
                .bind(token_hash(token))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if ended > 0 {
                <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Test helpers: tests outside the store cannot reach the pool. Other crates'
/// unit tests get them with the `test-support` feature.
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
impl Store {
    /// Moves every session's expiry into the past, as if its lifetime had run out.
    pub async fn expire_all_sessions(&self) -> Result<(), StoreError> {
        on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query("UPDATE sessions SET expires_at_ms = $1")
                .bind(now_ms() - 1)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Rows in `sessions`, expired or not.
    pub async fn session_rows(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(self, RowScope::All, pool, _Db => sqlx::query_as("SELECT COUNT(*) FROM sessions").fetch_one(pool).await?);
        Ok(n)
    }
}
