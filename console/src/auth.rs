//! Signing in and out.
//!
//! The login form is protected against login CSRF (an attacker signing the
//! victim into the attacker's account) with a double-submit token: a random
//! value in a `SameSite=Strict` cookie that the form must echo. A cross-site page
//! can neither read the cookie nor make the browser send it.
use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::audit::{Actor, AuditEvent, Details};
use outpost_store::second_factor::Purpose;
use outpost_store::users::{SESSION_TTL_MS, random_token};

use super::cookies;
use super::csrf::{CsrfForm, CsrfProtected, tokens_match};
use super::error::PageError;
use super::hashing::{BUSY_RETRY_AFTER_SECS, HashError};
use super::layout::{Layout, render};
use super::rate_limit::{ClientIp, describe_wait, wait_secs};
use super::session::authenticate;
use super::state::ConsoleState;

/// Inputs this long are not credentials; refusing them early keeps oversized
/// strings out of the password hasher.
pub(crate) const MAX_USERNAME_LEN: usize = 256;
pub(crate) const MAX_PASSWORD_LEN: usize = 1024;

const INVALID_CREDENTIALS: &str = "Invalid username or password.";

/// The login form's token cookie lives as long as a form may sit open.
const LOGIN_CSRF_MAX_AGE_SECS: i64 = 3600;

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub(crate) layout: Layout,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// `GET /login`.
pub(crate) async fn login_form(State(state): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    if authenticate(&headers, &state.store).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    // Reusing a well-formed token keeps a second open login tab working.
    let token = cookies::get(&headers, cookies::LOGIN_CSRF)
        .filter(|t| is_token(t))
        .map_or_else(random_token, str::to_owned);
    login_page(&state, StatusCode::OK, &token, "", None)
}

/// Fields of the login form. Missing fields are empty rather than a rejection,
/// so every bad submission gets the same readable answer. No `Debug`: it holds
/// a password.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /login`.
pub(crate) async fn login(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(mut form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let cookie_token = cookies::get(&headers, cookies::LOGIN_CSRF).filter(|t| is_token(t));
    let Some(token) = cookie_token.filter(|t| tokens_match(t, &form.csrf)) else {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            &random_token(),
            &form.username,
            Some(
                "This sign-in form has expired or did not come from this console. \
                 Try again with the form below (your browser must accept cookies from this site).",
            ),
        );
    };

    let attempt_at = Instant::now();
    if let Err(wait) = state.limiter.try_begin(ip, &form.username, attempt_at) {
        tracing::warn!(username = ?form.username, client = ?ip, "console sign-in refused: too many failures");
        // Counted, not recorded: refusals past the limit cost no write each.
        state.metrics.login_failed();
        let message = format!(
            "Too many failed sign-in attempts. Try again in {}.",
            describe_wait(wait)
        );
        let mut res = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            token,
            &form.username,
            Some(&message),
        )?;
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs(wait)));
        return Ok(res);
    }

    let user = if form.username.len() > MAX_USERNAME_LEN || form.password.len() > MAX_PASSWORD_LEN {
        None
    } else {
        let credential = state.store.credential(&form.username).await?;
        let password = std::mem::take(&mut form.password);
        match state.hashing.run(move || credential.verify(&password)).await {
            Ok(user) => user,
            Err(HashError::Busy) => {
                state.limiter.abandoned(ip, &form.username, attempt_at);
                tracing::warn!(
                    username = ?form.username,
                    client = ?ip,
                    running = state.hashing.running(),
                    "console sign-in refused: every password check slot is taken"
                );
                let mut res = login_page(
                    &state,
                    StatusCode::SERVICE_UNAVAILABLE,
                    token,
                    &form.username,
                    Some("The console is busy with other sign-ins. Try again in a few seconds."),
                )?;
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_SECS));
                return Ok(res);
            }
            Err(e @ HashError::Task(_)) => return Err(PageError::internal("checking a password failed", &e)),
        }
    };
    let Some(user) = user else {
        state.limiter.failed(&form.username, Instant::now());
        tracing::info!(username = ?form.username, client = ?ip, "console sign-in failed");
        audit_failure(&state, &form.username, ip, "invalid username or password").await;
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            token,
            &form.username,
            Some(INVALID_CREDENTIALS),
        );
    };
    state.limiter.succeeded(ip, &form.username);
    // The password was right; a second factor, or enrolling one, may still be due.
    let purpose = if state.store.has_totp(&user).await? {
        Some(Purpose::Code)
    } else if state.store.totp_required().await? {
        Some(Purpose::Enrol)
    } else {
        None
    };
    if let Some(purpose) = purpose {
        let challenge = state.store.begin_challenge(user, purpose).await?;
        tracing::info!(username = ?form.username, client = ?ip, ?purpose, "console sign-in: password accepted, second step due");
        let mut res = super::second_step::start(&state, &challenge, purpose)?;
        res.headers_mut().append(
            header::SET_COOKIE,
            cookie(cookies::clear(cookies::LOGIN_CSRF, state.secure_cookies))?,
        );
        return Ok(res);
    }
    let session = state.store.open_session(user, &Actor::user(&form.username, ip)).await?;
    tracing::info!(username = ?form.username, client = ?ip, "console sign-in");

    let mut res = Redirect::to("/").into_response();
    let set = res.headers_mut();
    set.append(
        header::SET_COOKIE,
        cookie(cookies::set(
            cookies::SESSION,
            &session,
            state.secure_cookies,
            Some(SESSION_TTL_MS / 1000),
        ))?,
    );
    set.append(
        header::SET_COOKIE,
        cookie(cookies::clear(cookies::LOGIN_CSRF, state.secure_cookies))?,
    );
    Ok(res)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

impl CsrfProtected for LogoutForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form: _ }: CsrfForm<LogoutForm>,
) -> Result<Response, PageError> {
    state
        .store
        .logout(&auth.token, &Actor::user(&auth.session.username, ip))
        .await?;
    tracing::info!(username = ?auth.session.username, "console sign-out");
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookie(cookies::clear(cookies::SESSION, state.secure_cookies))?,
    );
    Ok(res)
}

/// Records a refused sign-in (`console.login`, failure) right after the
/// refusal. Only attempts the rate limiter let through get here, so the
/// writes are bounded the same way. The name is recorded as typed, cut to
/// 256 characters.
pub(crate) async fn audit_failure(state: &ConsoleState, username: &str, ip: Option<std::net::IpAddr>, reason: &str) {
    state.metrics.login_failed();
    let name: String = username.chars().take(MAX_USERNAME_LEN).collect();
    let event =
        AuditEvent::failure(None, "console.login", format!("user {name}")).with(Details::new().text("reason", reason));
    if let Err(error) = state.store.record_audit(&Actor::user(&name, ip), event).await {
        tracing::error!(%error, client = ?ip, "recording a refused sign-in in the audit log failed");
    }
}

/// The login page with a (re)issued token cookie.
fn login_page(
    state: &ConsoleState,
    status: StatusCode,
    token: &str,
    username: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    // A rejected, oversized name is not worth echoing back.
    let username = if username.len() > MAX_USERNAME_LEN {
        ""
    } else {
        username
    };
    let mut res = render(
        status,
        &LoginPage {
            layout: Layout::anonymous(),
            csrf: token,
            username,
            error,
        },
    );
    let value = cookie(cookies::set(
        cookies::LOGIN_CSRF,
        token,
        state.secure_cookies,
        Some(LOGIN_CSRF_MAX_AGE_SECS),
    ))?;
    res.headers_mut().append(header::SET_COOKIE, value);
    Ok(res)
}

/// Tokens from [`random_token`]: 43 base64url characters.
fn is_token(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn cookie(value: Option<HeaderValue>) -> Result<HeaderValue, PageError> {
    value.ok_or_else(|| PageError::internal("building a cookie failed", &"value is not a valid header"))
}
