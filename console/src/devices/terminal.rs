//! The browser terminal on a device: `GET /devices/{id}/terminal` (the page)
//! and `GET /devices/{id}/terminal/ws` (a WebSocket carrying the shell).
//! Binary frames are terminal bytes both ways; text frames from the browser
//! are JSON controls, `{"type":"resize","cols":N,"rows":N}` (at most
//! 500×200). The WebSocket is accepted only from the console's own origin,
//! with the same session cookie; role and tenant are checked before the
//! upgrade, so another tenant's device is 404 and a viewer 403 whether or
//! not the request is an upgrade.
use askama::Template;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::actions::{remote_target, target};
use crate::agent_control::{FromShell, TerminalAsk, ToShell, TunnelRefused};
use crate::error::status_page;
use crate::layout::{Layout, render};
use crate::rate_limit::ClientIp;
use crate::session::PageSession;
use crate::state::ConsoleState;

/// Largest terminal accepted.
const MAX_COLS: u32 = 500;
const MAX_ROWS: u32 = 200;
/// The console's policy plus inline styles: xterm.js inserts `<style>`
/// elements for its character measurements and themes. Scripts stay
/// same-origin only.
pub(crate) const CSP: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
/// Size until the browser sends its own.
const START: (u32, u32) = (80, 24);

#[derive(Template)]
#[template(path = "devices/terminal.html")]
struct TerminalPage {
    layout: Layout,
    id: String,
    name: String,
}

/// `GET /devices/{id}/terminal`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_id): Path<String>,
) -> Response {
    let (id, _scope) = match target(&state.store, &auth, &raw_id).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let name = match state.store.device(&auth.session.viewer, id).await {
        Ok(d) if !d.identity.is_empty() => d.identity,
        Ok(d) => d.address,
        Err(_) => id.to_string(),
    };
    let mut res = render(
        StatusCode::OK,
        &TerminalPage {
            layout: Layout::signed_in(&auth.session),
            id: id.to_string(),
            name,
        },
    );
    res.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CSP));
    res
}

/// The upgrade, when the request is one; checked after access so a refusal
/// never depends on it.
pub(crate) struct MaybeUpgrade(Option<WebSocketUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUpgrade {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(WebSocketUpgrade::from_request_parts(parts, state).await.ok()))
    }
}

/// `GET /devices/{id}/terminal/ws`.
pub(crate) async fn socket(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    MaybeUpgrade(upgrade): MaybeUpgrade,
) -> Response {
    let (id, scope) = match remote_target(&state.store, &auth, &raw_id, ip, "terminal").await {
        Ok(t) => t,
        Err(res) => return res,
    };
    if !same_origin(&headers) {
        return status_page(
            StatusCode::FORBIDDEN,
            "Wrong origin",
            "The terminal only accepts connections from the console's own pages.",
        );
    }
    let Some(upgrade) = upgrade else {
        return status_page(
            StatusCode::BAD_REQUEST,
            "Not a WebSocket",
            "Open the terminal from the device's page.",
        );
    };
    let ask = TerminalAsk {
        scope,
        device: id,
        user: auth.session.username.clone(),
        source: ip,
        cols: START.0,
        rows: START.1,
    };
    upgrade
        .on_upgrade(move |ws| async move { run(state, ask, ws).await })
        .into_response()
}

/// Whether `Origin` names the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Some((_scheme, origin_host)) = origin.split_once("://") else {
        return false;
    };
    origin_host.eq_ignore_ascii_case(host)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u32, rows: u32 },
}

/// A control frame as a shell message, or why it was refused.
fn control(text: &str) -> Result<ToShell, String> {
    match serde_json::from_str::<Control>(text) {
        Ok(Control::Resize { cols, rows }) if (1..=MAX_COLS).contains(&cols) && (1..=MAX_ROWS).contains(&rows) => {
            Ok(ToShell::Resize { cols, rows })
        }
        Ok(Control::Resize { cols, rows }) => Err(format!(
            "terminal size {cols}x{rows} is outside 1x1 to {MAX_COLS}x{MAX_ROWS}"
        )),
        Err(e) => Err(format!("not a terminal control: {e}")),
    }
}

async fn run(state: ConsoleState, ask: TerminalAsk, mut ws: WebSocket) {
    let mut shell = match state.agents.open_terminal(ask).await {
        Ok(s) => s,
        Err(refused) => {
            let why = match refused {
                TunnelRefused::NotFound(_) => "device not found".to_owned(),
                other => other.to_string(),
            };
            let _ = ws.send(Message::Binary(Bytes::from(format!("\r\n{why}\r\n")))).await;
            let _ = ws.send(Message::Close(None)).await;
            return;
        }
    };
    loop {
        tokio::select! {
            frame = ws.recv() => match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    if shell.to_shell.send(ToShell::Data(bytes)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => match control(text.as_str()) {
                    Ok(msg) => {
                        if shell.to_shell.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Err(why) => {
                        let _ = ws.send(Message::Binary(Bytes::from(format!("\r\n{why}\r\n")))).await;
                        break;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = shell.from_shell.recv() => match out {
                Some(FromShell::Data(bytes)) => {
                    if ws.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
                Some(FromShell::Closed(why)) => {
                    let _ = ws.send(Message::Binary(Bytes::from(format!("\r\n[{why}]\r\n")))).await;
                    break;
                }
                None => break,
            },
        }
    }
    let _ = ws.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_controls_are_bounded() {
        assert_eq!(
            control(r#"{"type":"resize","cols":120,"rows":40}"#),
            Ok(ToShell::Resize { cols: 120, rows: 40 })
        );
        assert!(control(r#"{"type":"resize","cols":501,"rows":40}"#).is_err());
        assert!(control(r#"{"type":"resize","cols":80,"rows":0}"#).is_err());
        assert!(control(r#"{"type":"paste"}"#).is_err());
        assert!(control("not json").is_err());
    }

    #[test]
    fn only_the_consoles_own_origin_is_accepted() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, "console.example:8443".parse().expect("host"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().expect("origin"));
            }
            h
        };
        assert!(same_origin(&headers(Some("https://console.example:8443"))));
        assert!(!same_origin(&headers(Some("https://evil.example"))));
        assert!(!same_origin(&headers(Some("https://console.example"))));
        assert!(!same_origin(&headers(None)));
    }
}
