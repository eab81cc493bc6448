//! Signing in without the browser's forms: the `outpost` command line sends a
//! user name, a password and, for an account with one, its second factor in
//! one call of the public API. The same limits, checks and audit records as
//! the console's own sign-in apply, through the same parts: the per-address
//! and per-name limiter, the password-hashing cap, the TOTP step that must
//! move forward, single-use recovery codes.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use outpost_store::StoreError;
use outpost_store::audit::Actor;
use outpost_store::second_factor::Purpose;

use crate::auth::{MAX_PASSWORD_LEN, MAX_USERNAME_LEN, audit_failure};
use crate::hashing::HashError;
use crate::state::ConsoleState;
use crate::totp;

/// Why a sign-in did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failures from this address or for this name: try again later.
    #[error("too many failed sign-in attempts; try again in {} s", .0.as_secs().max(1))]
    TooMany(Duration),
    /// Every password-check slot is taken.
    #[error("the collector is busy with other sign-ins; try again in a few seconds")]
    Busy,
    /// Wrong name, password or code (never told apart).
    #[error("invalid username, password or code")]
    Invalid,
    /// The password was right; the account's second factor must come with it.
    #[error("second factor required: give the TOTP code or a recovery code")]
    SecondFactorRequired,
    /// Second factors are required and this account has none yet: it must
    /// set one up in the console first.
    #[error("this account must set up a second factor in the console before signing in here")]
    EnrolFirst,
    /// The database or the vault failed.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "sign-in: database failed");
        Self::Internal("the sign-in could not be checked; try again later".into())
    }
}

/// The console's sign-in, for other front ends.
#[derive(Clone, Debug)]
pub struct SignIn {
    state: ConsoleState,
}

impl ConsoleState {
    /// The sign-in this console uses, sharing its limits.
    pub fn sign_in(&self) -> SignIn {
        SignIn { state: self.clone() }
    }
}

impl SignIn {
    /// Checks `username` and `password` (and `second_factor`: a TOTP code or a
    /// recovery code, for an account with a second factor) from a client at
    /// `ip`, and opens a session: its token.
    pub async fn sign_in(
        &self,
        ip: Option<IpAddr>,
        username: &str,
        password: String,
        second_factor: &str,
    ) -> Result<String, SignInError> {
        let state = &self.state;
        let attempt_at = Instant::now();
        if let Err(wait) = state.limiter.try_begin(ip, username, attempt_at) {
            state.metrics.login_failed();
            return Err(SignInError::TooMany(wait));
        }
        let user = if username.len() > MAX_USERNAME_LEN || password.len() > MAX_PASSWORD_LEN {
            None
        } else {
            let credential = state.store.credential(username).await?;
            match state.hashing.run(move || credential.verify(&password)).await {
                Ok(user) => user,
                Err(HashError::Busy) => {
                    state.limiter.abandoned(ip, username, attempt_at);
                    return Err(SignInError::Busy);
                }
                Err(e @ HashError::Task(_)) => return Err(SignInError::Internal(e.to_string())),
            }
        };
        let Some(user) = user else {
            state.limiter.failed(username, Instant::now());
            tracing::info!(username, client = ?ip, "API sign-in failed");
            audit_failure(state, username, ip, "invalid username or password").await;
            return Err(SignInError::Invalid);
        };
        state.limiter.succeeded(ip, username);
        let actor = Actor::user(username, ip);
        if !state.store.has_totp(&user).await? {
            if state.store.totp_required().await? {
                return Err(SignInError::EnrolFirst);
            }
            return Ok(state.store.open_session(user, &actor).await?);
        }
        let second_factor = second_factor.trim();
        if second_factor.is_empty() {
            return Err(SignInError::SecondFactorRequired);
        }
        if let Err(wait) = state.code_limiter.try_begin(ip, username, Instant::now()) {
            return Err(SignInError::TooMany(wait));
        }
        let user_id = user.user_id().to_owned();
        let challenge = state.store.begin_challenge(user, Purpose::Code).await?;
        let session = if second_factor.len() > 64 {
            None
        } else if second_factor.chars().filter(|c| !c.is_whitespace()).count() == 6
            && second_factor.chars().all(|c| c.is_ascii_digit() || c.is_whitespace())
        {
            let step = match state.store.totp_state(&user_id).await?.sealed {
                Some(sealed) => {
                    let secret = state
                        .vault
                        .open_totp_secret(&user_id, &sealed)
                        .map_err(|e| SignInError::Internal(format!("opening a TOTP secret failed: {e}")))?;
                    totp::check(&secret, second_factor)
                }
                None => None,
            };
            match step {
                Some(step) => state.store.complete_with_code(&challenge, step, &actor).await?,
                None => None,
            }
        } else {
            state
                .store
                .complete_with_recovery(&challenge, second_factor, &actor)
                .await?
        };
        match session {
            Some(session) => {
                state.code_limiter.succeeded(ip, username);
                Ok(session)
            }
            None => {
                state.store.drop_challenge(&challenge).await?;
                state.code_limiter.failed(username, Instant::now());
                audit_failure(state, username, ip, "invalid second factor").await;
                Err(SignInError::Invalid)
            }
        }
    }
}
