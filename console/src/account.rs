//! `/account`: the signed-in user's own page: their roles, and their TOTP
//! second factor (set up, new recovery codes, turn off; the last two
//! re-confirmed with a current code).
use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::PageError;
use super::layout::{Layout, render};
use super::rate_limit::ClientIp;
use super::second_step::{CodesPage, EnrolForm, EnrolPage, pending_secret, qr_response};
use super::session::{Authenticated, PageSession};
use super::state::ConsoleState;
use super::totp;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    layout: Layout,
    csrf: &'a str,
    username: &'a str,
    msp_admin: bool,
    roles: Vec<(String, String)>,
    totp: bool,
    required: bool,
    recovery_left: i64,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    done: String,
}

async fn show(
    state: &ConsoleState,
    auth: &Authenticated,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let p = &auth.session.principal;
    let tfa = state.store.totp_state(p.user_id()).await?;
    let names = state.store.list_tenants(p).await?;
    let roles = p
        .memberships()
        .iter()
        .map(|(t, r)| {
            let name = names
                .iter()
                .find(|n| n.id == *t)
                .map_or_else(|| t.to_string(), |n| n.name.clone());
            (name, r.to_string())
        })
        .collect();
    Ok(render(
        status,
        &AccountPage {
            layout: Layout::signed_in(&auth.session),
            csrf: &auth.session.csrf_token,
            username: p.username(),
            msp_admin: p.is_msp_admin(),
            roles,
            totp: tfa.sealed.is_some(),
            required: state.store.totp_required().await?,
            recovery_left: tfa.recovery_left,
            notice,
            error,
        },
    ))
}

/// `GET /account`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let notice = match q.done.as_str() {
        "totp-off" => Some("TOTP is off."),
        _ => None,
    };
    show(&state, &auth, StatusCode::OK, notice, None).await
}

fn enrol_page(auth: &Authenticated, secret: &[u8], status: StatusCode, error: Option<&str>) -> Response {
    render(
        status,
        &EnrolPage {
            layout: Layout::signed_in(&auth.session),
            csrf: &auth.session.csrf_token,
            secret: &totp::secret_text(secret),
            qr_url: "/account/totp/qr.svg",
            action: "/account/totp",
            required: false,
            error,
        },
    )
}

/// `GET /account/totp`.
pub(crate) async fn enrol_form(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
) -> Result<Response, PageError> {
    let (_, secret) = pending_secret(&state, auth.session.principal.user_id()).await?;
    Ok(enrol_page(&auth, &secret, StatusCode::OK, None))
}

/// `GET /account/totp/qr.svg`.
pub(crate) async fn enrol_qr(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
) -> Result<Response, PageError> {
    let p = &auth.session.principal;
    qr_response(&state, p.user_id(), p.username()).await
}

/// Counts a code attempt against the user's and the address's limits.
fn limited(state: &ConsoleState, ip: Option<std::net::IpAddr>, username: &str) -> Option<Response> {
    state
        .code_limiter
        .try_begin(ip, username, Instant::now())
        .err()
        .map(|wait| {
            super::error::status_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!(
                    "Too many wrong codes. Try again in {}.",
                    super::rate_limit::describe_wait(wait)
                ),
            )
        })
}

/// `POST /account/totp`: confirms the shown secret with a first code.
pub(crate) async fn enrol(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<EnrolForm>,
) -> Result<Response, PageError> {
    let p = &auth.session.principal;
    if let Some(res) = limited(&state, ip, p.username()) {
        return Ok(res);
    }
    let (sealed, secret) = pending_secret(&state, p.user_id()).await?;
    let codes = match totp::check(&secret, &form.code) {
        Some(step) => state.store.confirm_totp(p.user_id(), &sealed, step).await?,
        None => None,
    };
    let Some(codes) = codes else {
        state.code_limiter.failed(p.username(), Instant::now());
        return Ok(enrol_page(
            &auth,
            &secret,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("That code is not valid. Try the next one."),
        ));
    };
    state.code_limiter.succeeded(ip, p.username());
    tracing::info!(user = %p.username(), "console: TOTP set up");
    Ok(render(
        StatusCode::OK,
        &CodesPage {
            layout: Layout::signed_in(&auth.session),
            codes: &codes,
            next: "/account",
        },
    ))
}

/// Checks a current code of the user's confirmed secret and accepts its step.
async fn reconfirm(state: &ConsoleState, auth: &Authenticated, code: &str) -> Result<bool, PageError> {
    let p = &auth.session.principal;
    let Some(sealed) = state.store.totp_state(p.user_id()).await?.sealed else {
        return Ok(false);
    };
    let secret = state
        .vault
        .open_totp_secret(p.user_id(), &sealed)
        .map_err(|e| PageError::internal("opening a TOTP secret failed", &e))?;
    match totp::check(&secret, code) {
        Some(step) => Ok(state.store.accept_totp_step(p.user_id(), step).await?),
        None => Ok(false),
    }
}

/// `POST /account/totp/disable`.
pub(crate) async fn disable(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<EnrolForm>,
) -> Result<Response, PageError> {
    let p = &auth.session.principal;
    if state.store.totp_required().await? {
        return show(
            &state,
            &auth,
            StatusCode::FORBIDDEN,
            None,
            Some("This console requires TOTP; it cannot be turned off."),
        )
        .await;
    }
    if let Some(res) = limited(&state, ip, p.username()) {
        return Ok(res);
    }
    if !reconfirm(&state, &auth, &form.code).await? {
        state.code_limiter.failed(p.username(), Instant::now());
        return show(
            &state,
            &auth,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("That code is not valid."),
        )
        .await;
    }
    state.code_limiter.succeeded(ip, p.username());
    state.store.clear_totp(p.user_id(), None).await?;
    tracing::info!(user = %p.username(), "console: TOTP turned off");
    Ok(Redirect::to("/account?done=totp-off").into_response())
}

/// `POST /account/totp/recovery`: new recovery codes, the old ones void.
pub(crate) async fn regenerate(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<EnrolForm>,
) -> Result<Response, PageError> {
    let p = &auth.session.principal;
    if let Some(res) = limited(&state, ip, p.username()) {
        return Ok(res);
    }
    if !reconfirm(&state, &auth, &form.code).await? {
        state.code_limiter.failed(p.username(), Instant::now());
        return show(
            &state,
            &auth,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("That code is not valid."),
        )
        .await;
    }
    state.code_limiter.succeeded(ip, p.username());
    let codes = state.store.regenerate_recovery_codes(p.user_id()).await?;
    tracing::info!(user = %p.username(), "console: recovery codes regenerated");
    Ok(render(
        StatusCode::OK,
        &CodesPage {
            layout: Layout::signed_in(&auth.session),
            codes: &codes,
            next: "/account",
        },
    ))
}
