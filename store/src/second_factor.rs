//! The TOTP second factor (RFC 6238), recovery codes, half-way sign-ins and
//! the console-wide "require TOTP" setting.
//!
//! The store keeps the secret sealed (the console seals and opens it with the
//! collector's vault) and the last accepted time step; it never sees a code.
//! The caller checks a code against the opened secret and hands over the step
//! it matched: [`Store::complete_with_code`] accepts that step only if it is
//! later than the last one, in the same transaction that opens the session, so
//! a code is good once (RFC 6238 §5.2).
//!
//! A half-way sign-in (password right, second factor due) is a
//! [`login_challenges`] row named by its own cookie: it opens no page but the
//! next sign-in step, and becomes a session only when that step succeeds.
use sha2::{Digest, Sha256};

use super::audit::{Actor, AppendAudit, AuditEvent, Details};
use super::users::{VerifiedUser, random_token};
use super::{AdminScope, Store, StoreError, now_ms, on_pool};
use crate::row_scope::RowScope;

/// How long a half-way sign-in waits for its second step.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;

/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

const REQUIRE_TOTP: &str = "require_totp";

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A recovery code as the user types it, reduced to what counts: letters and
/// digits, lower case ("ABCD-efgh" and "abcdefgh" are the same code).
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Ten fresh recovery codes, 80 random bits each, as `xxxx-xxxx-xxxx-xxxx`
/// (base32 letters and digits).
fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..RECOVERY_CODES)
        .map(|_| {
            let bits: u128 = u128::from_le_bytes(rand::random::<[u8; 16]>());
            let chars: Vec<char> = (0..16)
                .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What a half-way sign-in waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A TOTP or recovery code.
    Code,
    /// Enrolling a second factor, which the console requires.
    Enrol,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Code => "code",
            Purpose::Enrol => "enrol",
        }
    }
}

/// A live half-way sign-in, from [`Store::challenge`].
#[derive(Clone, Debug)]
pub struct Challenge {
    /// The user.
    pub user_id: String,
    /// Their name.
    pub username: String,
    /// What it waits for.
    pub purpose: Purpose,
    /// The token its forms carry.
    pub csrf_token: String,
}

/// A user's second factor as stored.
#[derive(Clone, Default)]
pub struct TotpState {
    /// The confirmed secret, sealed.
    pub sealed: Option<Vec<u8>>,
    /// A secret shown for enrolment, not yet confirmed, sealed.
    pub pending: Option<Vec<u8>>,
    /// Unused recovery codes left.
    pub recovery_left: i64,
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState")
            .field("enrolled", &self.sealed.is_some())
            .field("pending", &self.pending.is_some())
            .field("recovery_left", &self.recovery_left)
            .finish()
    }
}

impl Store {
    /// Whether every user must have a second factor.
    pub async fn totp_required(&self) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT value FROM console_settings WHERE name = $1")
                .bind(REQUIRE_TOTP)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some_and(|(v,)| v == "1"))
    }

    /// Requires (or stops requiring) a second factor of every user.
    pub async fn set_totp_required(&self, _admin: &AdminScope, on: bool, by: &Actor) -> Result<(), StoreError> {
        let event = AuditEvent::success(None, "settings.require_totp", "console settings")
            .with(Details::new().flag("require_totp", on));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO console_settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(REQUIRE_TOTP)
            .bind(if on { "1" } else { "0" })
            .execute(&mut *tx)
            .await?;
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A user's second factor.
    pub async fn totp_state(&self, user_id: &str) -> Result<TotpState, StoreError> {
        /// Sealed secret, sealed pending secret, unused recovery codes.
        type Row = (Option<Vec<u8>>, Option<Vec<u8>>, i64);
        let row: Option<Row> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT totp_sealed, totp_pending_sealed, \
                 (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = u.id AND r.used_at_ms IS NULL) \
                 FROM users u WHERE id = $1",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        });
        let (sealed, pending, recovery_left) = row.ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))?;
        Ok(TotpState {
            sealed,
            pending,
            recovery_left,
        })
    }

    /// Keeps `sealed` as the secret shown for enrolment, replacing any
    /// earlier one not yet confirmed.
    pub async fn set_pending_totp(&self, user_id: &str, sealed: &[u8]) -> Result<(), StoreError> {
        on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query("UPDATE users SET totp_pending_sealed = $1 WHERE id = $2")
                .bind(sealed)
                .bind(user_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Makes the pending secret (which must still be `pending`, the one the
    /// caller checked the first code against) the user's second factor, with
    /// `step` as the last accepted step, and returns fresh recovery codes
    /// (shown once; earlier ones are void). `None` if the pending secret
    /// changed meanwhile.
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        pending: &[u8],
        step: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let codes = new_recovery_codes();
        on_pool!(self, RowScope::All, pool, _Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE users SET totp_sealed = totp_pending_sealed, totp_pending_sealed = NULL, totp_last_step = $1 \
                 WHERE id = $2 AND totp_pending_sealed = $3",
            )
            .bind(step)
            .bind(user_id)
            .bind(pending)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(None);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            for code in &codes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(hash(&normalize_code(code)))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(Some(codes))
    }

    /// Accepts `step` for a signed-in user's re-confirmation (disabling,
    /// regenerating codes): true only if it is later than the last accepted one.
    pub async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let n = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_sealed IS NOT NULL \
                 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Voids every recovery code of the user and returns ten new ones.
    pub async fn regenerate_recovery_codes(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let codes = new_recovery_codes();
        on_pool!(self, RowScope::All, pool, _Db => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            for code in &codes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(hash(&normalize_code(code)))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(codes)
    }

    /// Removes the user's second factor and recovery codes; recorded in the
    /// audit log when `by` (someone else: an administrator's reset) is given.
    pub async fn clear_totp(&self, user_id: &str, by: Option<&Actor>) -> Result<(), StoreError> {
        let event = AuditEvent::success(None, "user.reset_second_factor", format!("user {user_id}"));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE users SET totp_sealed = NULL, totp_pending_sealed = NULL, totp_last_step = NULL WHERE id = $1",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            if let Some(by) = by {
                <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Starts a half-way sign-in for a user whose password was just checked;
    /// returns its cookie value.
    pub async fn begin_challenge(&self, user: VerifiedUser, purpose: Purpose) -> Result<String, StoreError> {
        let token = random_token();
        let now = now_ms();
        on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query(
                "INSERT INTO login_challenges (id_hash, user_id, purpose, csrf_token, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(hash(&token))
            .bind(&user.user_id)
            .bind(purpose.as_str())
            .bind(random_token())
            .bind(now)
            .bind(now + CHALLENGE_TTL_MS)
            .execute(pool)
            .await?;
            sqlx::query("DELETE FROM login_challenges WHERE expires_at_ms <= $1").bind(now).execute(pool).await?;
        });
        Ok(token)
    }

    /// The live half-way sign-in a cookie value names, if any.
    pub async fn challenge(&self, token: &str) -> Result<Option<Challenge>, StoreError> {
        let row: Option<(String, String, String, String)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT c.user_id, u.username, c.purpose, c.csrf_token FROM login_challenges c \
                 JOIN users u ON u.id = c.user_id \
                 WHERE c.id_hash = $1 AND c.expires_at_ms > $2 AND u.disabled_at_ms IS NULL",
            )
            .bind(hash(token))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(user_id, username, purpose, csrf_token)| Challenge {
            user_id,
            username,
            purpose: if purpose == "enrol" {
                Purpose::Enrol
            } else {
                Purpose::Code
            },
            csrf_token,
        }))
    }

    /// Ends a half-way sign-in without a session.
    pub async fn drop_challenge(&self, token: &str) -> Result<(), StoreError> {
        on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query("DELETE FROM login_challenges WHERE id_hash = $1").bind(hash(token)).execute(pool).await?;
        });
        Ok(())
    }

    /// Completes a half-way sign-in with a TOTP code that matched `step`: in
    /// one transaction the step must be later than the last accepted one, the
    /// challenge is consumed and a session opened. Returns the session cookie
    /// value, or `None` (replayed step, or the challenge is gone).
    pub async fn complete_with_code(
        &self,
        token: &str,
        step: i64,
        actor: &Actor,
    ) -> Result<Option<String>, StoreError> {
        let (session, row) = Store::new_session_row();
        let now = now_ms();
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let user: Option<(String,)> = sqlx::query_as(
                "DELETE FROM login_challenges WHERE id_hash = $1 AND expires_at_ms > $2 AND purpose = 'code' RETURNING user_id",
            )
            .bind(hash(token))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id,)) = user else {
                return Ok(None);
            };
            let accepted = sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_sealed IS NOT NULL \
                 AND disabled_at_ms IS NULL AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if accepted == 0 {
                // The challenge stays: the user may try the next code.
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&row.id_hash)
            .bind(&user_id)
            .bind(&row.csrf_token)
            .bind(row.created_at_ms)
            .bind(row.expires_at_ms)
            .execute(&mut *tx)
            .await?;
            let event = AuditEvent::success(None, "console.login", format!("user {}", actor.name()))
                .with_detail("second_factor", "totp");
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(Some(session))
    }

    /// Completes a half-way sign-in with a recovery code, which is used up in
    /// the same transaction that opens the session. `None` if the code is
    /// unknown or used, or the challenge is gone.
    pub async fn complete_with_recovery(
        &self,
        token: &str,
        code: &str,
        actor: &Actor,
    ) -> Result<Option<String>, StoreError> {
        let (session, row) = Store::new_session_row();
        let now = now_ms();
        let code_hash = hash(&normalize_code(code));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let user: Option<(String,)> = sqlx::query_as(
                "DELETE FROM login_challenges WHERE id_hash = $1 AND expires_at_ms > $2 AND purpose = 'code' RETURNING user_id",
            )
            .bind(hash(token))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id,)) = user else {
                return Ok(None);
            };
            let used = sqlx::query(
                "UPDATE recovery_codes SET used_at_ms = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at_ms IS NULL",
            )
            .bind(now)
            .bind(&user_id)
            .bind(&code_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used == 0 {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&row.id_hash)
            .bind(&user_id)
            .bind(&row.csrf_token)
            .bind(row.created_at_ms)
            .bind(row.expires_at_ms)
            .execute(&mut *tx)
            .await?;
            let event = AuditEvent::success(None, "console.login", format!("user {}", actor.name()))
                .with_detail("second_factor", "recovery_code");
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(Some(session))
    }

    /// Completes a half-way sign-in that had to enrol a second factor: the
    /// pending secret (still `pending`, which the caller checked the first code
    /// against) becomes the user's with `step` accepted, the challenge is
    /// consumed and a session opened. Returns the session cookie value and
    /// the recovery codes to show once; `None` if anything changed meanwhile.
    pub async fn complete_enrolment(
        &self,
        token: &str,
        pending: &[u8],
        step: i64,
        actor: &Actor,
    ) -> Result<Option<(String, Vec<String>)>, StoreError> {
        let Some(challenge) = self.challenge(token).await? else {
            return Ok(None);
        };
        if challenge.purpose != Purpose::Enrol {
            return Ok(None);
        }
        let Some(codes) = self.confirm_totp(&challenge.user_id, pending, step).await? else {
            return Ok(None);
        };
        let (session, row) = Store::new_session_row();
        let now = now_ms();
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let gone: Option<(String,)> = sqlx::query_as(
                "DELETE FROM login_challenges WHERE id_hash = $1 AND expires_at_ms > $2 RETURNING user_id",
            )
            .bind(hash(token))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if gone.is_none() {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&row.id_hash)
            .bind(&challenge.user_id)
            .bind(&row.csrf_token)
            .bind(row.created_at_ms)
            .bind(row.expires_at_ms)
            .execute(&mut *tx)
            .await?;
            let event = AuditEvent::success(None, "console.login", format!("user {}", actor.name()))
                .with_detail("second_factor", "enrolled");
            <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(Some((session, codes)))
    }

    /// Whether the user has a confirmed second factor.
    pub async fn has_totp(&self, user: &VerifiedUser) -> Result<bool, StoreError> {
        Ok(self.totp_state(&user.user_id).await?.sealed.is_some())
    }
}
