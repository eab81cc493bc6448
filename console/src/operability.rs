//! What operators and their tools ask of a running collector, on the console
//! port, without signing in:
//!
//! * `GET /healthz`: the process answers (200 `ok`);
//! * `GET /readyz`: 200 `ready` when the database answers a trivial query
//!   and the agent port is listening, else 503 with the reason;
//! * `GET /metrics`: Prometheus metrics in the OpenMetrics text format.
//!
//! None of them reveals a tenant's data, but `/metrics` shows fleet-wide
//! counts, so it is meant for a scraper on a trusted network. Setting
//! `OUTPOST_METRICS_TOKEN` makes `/metrics` require `Authorization: Bearer
//! <token>` (compared in constant time); without it the endpoint is open.
//!
//! Metric names follow Prometheus' conventions: `outpost_` prefix, base units
//! in the name (`_seconds`), `_total` on counters only (the library appends
//! it, so counters are registered without it). Counters and the histogram are
//! fed where things happen (`Metrics` is shared with the collector's agent
//! port); gauges are read when scraped: from the store (agents online, outbox
//! depths, console sessions), from the collector (agent streams on this
//! collector), and from this console (open live-update streams).
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;

use crate::csrf::tokens_match;
use crate::state::ConsoleState;

/// How long `/readyz` waits for the database.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /healthz`.
pub(crate) async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// `GET /readyz`.
pub(crate) async fn readyz(State(state): State<ConsoleState>) -> Response {
    match tokio::time::timeout(READY_DB_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database does not answer\n",
            );
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within 2 s");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database did not answer within 2 s\n",
            );
        }
    }
    if !state.agent_port.get() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the agent port is not listening\n",
        );
    }
    text(StatusCode::OK, "ready\n")
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let m = &state.metrics;
    if let Some(token) = &m.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !tokens_match(token, presented) {
            let mut res = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    let _one = m.scrape.lock().await;
    match state.store.operability_gauges().await {
        Ok(g) => {
            m.agents_online.set(g.agents_online);
            m.outbox_depth.set(g.outbox_depth_sum);
            m.outbox_depth_max.set(g.outbox_depth_max);
            m.console_sessions.set(g.console_sessions);
        }
        // The gauges keep their last values; the error counter says why.
        Err(error) => tracing::warn!(%error, "reading gauges for /metrics failed"),
    }
    m.agent_streams
        .set(i64::try_from(state.agents.streaming_agents()).unwrap_or(i64::MAX));
    m.event_streams
        .set(i64::try_from(state.feed.streams()).unwrap_or(i64::MAX));
    m.sync_database_errors();
    let mut body = String::new();
    if let Err(error) = encode(&mut body, &m.registry) {
        tracing::error!(%error, "encoding metrics failed");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed\n");
    }
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    res
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
