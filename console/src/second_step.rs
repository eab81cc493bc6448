//! The second sign-in step: after the right password, a user with TOTP gives a
//! code (or a recovery code); a user without one, when the console requires
//! it, enrols first. Until then the browser holds only a half-way cookie that
//! opens these pages and nothing else: the session is opened by the step that
//! completes the sign-in.
use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::audit::Actor;
use outpost_store::second_factor::{Challenge, Purpose};
use outpost_store::users::SESSION_TTL_MS;

use super::cookies;
use super::csrf::{forbidden, tokens_match};
use super::error::PageError;
use super::layout::{Layout, render};
use super::rate_limit::{ClientIp, describe_wait, wait_secs};
use super::state::ConsoleState;
use super::totp;

/// The half-way cookie lives as long as the challenge.
const CHALLENGE_MAX_AGE_SECS: i64 = outpost_store::second_factor::CHALLENGE_TTL_MS / 1000;

const BAD_CODE: &str = "That code is not valid (or was already used). Try the next one.";

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage<'a> {
    layout: Layout,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub(crate) struct EnrolPage<'a> {
    pub(crate) layout: Layout,
    pub(crate) csrf: &'a str,
    pub(crate) secret: &'a str,
    pub(crate) qr_url: &'a str,
    pub(crate) action: &'a str,
    pub(crate) required: bool,
    pub(crate) error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct CodesPage<'a> {
    pub(crate) layout: Layout,
    pub(crate) codes: &'a [String],
    pub(crate) next: &'a str,
}

/// Sets the half-way cookie and sends the browser to the step it needs.
pub(crate) fn start(state: &ConsoleState, token: &str, purpose: Purpose) -> Result<Response, PageError> {
    let to = match purpose {
        Purpose::Code => "/login/code",
        Purpose::Enrol => "/login/enrol",
    };
    let mut res = Redirect::to(to).into_response();
    let value = cookies::set(
        cookies::LOGIN_STEP,
        token,
        state.secure_cookies,
        Some(CHALLENGE_MAX_AGE_SECS),
    )
    .ok_or_else(|| PageError::internal("building a cookie failed", &"invalid value"))?;
    res.headers_mut().append(header::SET_COOKIE, value);
    Ok(res)
}

/// The live challenge of `purpose` the request's half-way cookie names.
async fn challenge(
    state: &ConsoleState,
    headers: &HeaderMap,
    purpose: Purpose,
) -> Result<Option<(String, Challenge)>, PageError> {
    let Some(token) = cookies::get(headers, cookies::LOGIN_STEP) else {
        return Ok(None);
    };
    Ok(state
        .store
        .challenge(token)
        .await?
        .filter(|c| c.purpose == purpose)
        .map(|c| (token.to_owned(), c)))
}

/// The response that completes a sign-in: the session cookie set, the
/// half-way cookie cleared, then `res`.
fn signed_in(state: &ConsoleState, mut res: Response, session: &str) -> Result<Response, PageError> {
    let set = res.headers_mut();
    for value in [
        cookies::set(
            cookies::SESSION,
            session,
            state.secure_cookies,
            Some(SESSION_TTL_MS / 1000),
        ),
        cookies::clear(cookies::LOGIN_STEP, state.secure_cookies),
    ] {
        let value = value.ok_or_else(|| PageError::internal("building a cookie failed", &"invalid value"))?;
        set.append(header::SET_COOKIE, value);
    }
    Ok(res)
}

/// The 429 for too many wrong codes.
fn too_many(wait: std::time::Duration) -> Response {
    let mut res = super::error::status_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!("Too many wrong codes. Try again in {}.", describe_wait(wait)),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs(wait)));
    res
}

/// `GET /login/code`.
pub(crate) async fn code_form(State(state): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    let Some((_, c)) = challenge(&state, &headers, Purpose::Code).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(render(
        StatusCode::OK,
        &CodePage {
            layout: Layout::anonymous(),
            csrf: &c.csrf_token,
            username: &c.username,
            error: None,
        },
    ))
}

/// Fields of the code form. No `Debug`: it holds codes.
#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery: String,
}

/// `POST /login/code`.
pub(crate) async fn code(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    let Some((token, c)) = challenge(&state, &headers, Purpose::Code).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !tokens_match(&c.csrf_token, &form.csrf) {
        return Ok(forbidden());
    }
    let at = Instant::now();
    if let Err(wait) = state.code_limiter.try_begin(ip, &c.username, at) {
        tracing::warn!(username = ?c.username, client = ?ip, "console second factor refused: too many wrong codes");
        return Ok(too_many(wait));
    }
    let session = if !form.recovery.trim().is_empty() {
        if form.recovery.len() > 64 {
            None
        } else {
            state
                .store
                .complete_with_recovery(&token, &form.recovery, &Actor::user(&c.username, ip))
                .await?
        }
    } else {
        let sealed = state.store.totp_state(&c.user_id).await?.sealed;
        let step = match sealed {
            Some(sealed) => {
                let secret = state
                    .vault
                    .open_totp_secret(&c.user_id, &sealed)
                    .map_err(|e| PageError::internal("opening a TOTP secret failed", &e))?;
                totp::check(&secret, &form.code)
            }
            None => None,
        };
        match step {
            Some(step) => {
                state
                    .store
                    .complete_with_code(&token, step, &Actor::user(&c.username, ip))
                    .await?
            }
            None => None,
        }
    };
    let Some(session) = session else {
        state.code_limiter.failed(&c.username, Instant::now());
        tracing::info!(username = ?c.username, client = ?ip, "console second factor failed");
        // A used-up challenge (a recovery code attempt consumes nothing, but
        // a vanished one) sends the user back to the password.
        if state.store.challenge(&token).await?.is_none() {
            return Ok(Redirect::to("/login").into_response());
        }
        return Ok(render(
            StatusCode::UNAUTHORIZED,
            &CodePage {
                layout: Layout::anonymous(),
                csrf: &c.csrf_token,
                username: &c.username,
                error: Some(BAD_CODE),
            },
        ));
    };
    state.code_limiter.succeeded(ip, &c.username);
    tracing::info!(username = ?c.username, client = ?ip, "console sign-in (with second factor)");
    signed_in(&state, Redirect::to("/").into_response(), &session)
}

/// The user's pending (shown, unconfirmed) TOTP secret, sealed and opened;
/// made now if there is none.
pub(crate) async fn pending_secret(state: &ConsoleState, user_id: &str) -> Result<(Vec<u8>, Vec<u8>), PageError> {
    let open = |sealed: &[u8]| {
        state
            .vault
            .open_totp_secret(user_id, sealed)
            .map(|s| s.to_vec())
            .map_err(|e| PageError::internal("opening a TOTP secret failed", &e))
    };
    if let Some(sealed) = state.store.totp_state(user_id).await?.pending {
        let secret = open(&sealed)?;
        return Ok((sealed, secret));
    }
    let secret = totp::new_secret();
    let sealed = state
        .vault
        .seal_totp_secret(user_id, &secret)
        .map_err(|e| PageError::internal("sealing a TOTP secret failed", &e))?;
    state.store.set_pending_totp(user_id, &sealed).await?;
    Ok((sealed, secret))
}

/// The QR code of the user's pending secret.
pub(crate) async fn qr_response(state: &ConsoleState, user_id: &str, username: &str) -> Result<Response, PageError> {
    let (_, secret) = pending_secret(state, user_id).await?;
    let svg = totp::qr_svg(&totp::otpauth_url(username, &secret))
        .ok_or_else(|| PageError::internal("drawing a QR code failed", &"too long"))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `GET /login/enrol`.
pub(crate) async fn enrol_form(State(state): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    let Some((_, c)) = challenge(&state, &headers, Purpose::Enrol).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let (_, secret) = pending_secret(&state, &c.user_id).await?;
    Ok(render(
        StatusCode::OK,
        &EnrolPage {
            layout: Layout::anonymous(),
            csrf: &c.csrf_token,
            secret: &totp::secret_text(&secret),
            qr_url: "/login/enrol/qr.svg",
            action: "/login/enrol",
            required: true,
            error: None,
        },
    ))
}

/// `GET /login/enrol/qr.svg`.
pub(crate) async fn enrol_qr(State(state): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    let Some((_, c)) = challenge(&state, &headers, Purpose::Enrol).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    qr_response(&state, &c.user_id, &c.username).await
}

/// Fields of an enrolment or re-confirmation form.
#[derive(Deserialize)]
pub(crate) struct EnrolForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) code: String,
}

impl super::csrf::CsrfProtected for EnrolForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /login/enrol`.
pub(crate) async fn enrol(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<EnrolForm>,
) -> Result<Response, PageError> {
    let Some((token, c)) = challenge(&state, &headers, Purpose::Enrol).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !tokens_match(&c.csrf_token, &form.csrf) {
        return Ok(forbidden());
    }
    if let Err(wait) = state.code_limiter.try_begin(ip, &c.username, Instant::now()) {
        return Ok(too_many(wait));
    }
    let (sealed, secret) = pending_secret(&state, &c.user_id).await?;
    let done = match totp::check(&secret, &form.code) {
        Some(step) => {
            state
                .store
                .complete_enrolment(&token, &sealed, step, &Actor::user(&c.username, ip))
                .await?
        }
        None => None,
    };
    let Some((session, codes)) = done else {
        state.code_limiter.failed(&c.username, Instant::now());
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &EnrolPage {
                layout: Layout::anonymous(),
                csrf: &c.csrf_token,
                secret: &totp::secret_text(&secret),
                qr_url: "/login/enrol/qr.svg",
                action: "/login/enrol",
                required: true,
                error: Some(BAD_CODE),
            },
        ));
    };
    state.code_limiter.succeeded(ip, &c.username);
    tracing::info!(username = ?c.username, client = ?ip, "console sign-in (second factor enrolled)");
    let page = render(
        StatusCode::OK,
        &CodesPage {
            layout: Layout::anonymous(),
            codes: &codes,
            next: "/",
        },
    );
    signed_in(&state, page, &session)
}
