//! `GET /devices/{id}/live`: the device's interface traffic, one `sample`
//! event a second, while the page's live view is on. The collector starts the
//! traffic monitor on the first watch and stops it when the last stream's
//! guard is dropped, which happens when the browser goes away and the stream
//! with it. When live traffic cannot start, one `unavailable` event says why.
use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::{api_error, parse_id};
use crate::agent_control::{LiveSample, LiveWatch};
use crate::error::json_error;
use crate::session::ApiSession;
use crate::state::ConsoleState;

#[derive(Serialize)]
struct RateJson<'a> {
    name: &'a str,
    rx_bps: f64,
    tx_bps: f64,
}

#[derive(Serialize)]
struct SampleJson<'a> {
    at_ms: i64,
    interfaces: Vec<RateJson<'a>>,
}

fn sample_event(sample: &LiveSample) -> Event {
    let json = SampleJson {
        at_ms: sample.at_ms,
        interfaces: sample
            .interfaces
            .iter()
            .map(|r| RateJson {
                name: &r.name,
                rx_bps: r.rx_bps,
                tx_bps: r.tx_bps,
            })
            .collect(),
    };
    match serde_json::to_string(&json) {
        Ok(data) => Event::default().event("sample").data(data),
        Err(error) => {
            tracing::error!(%error, "console: encoding a live sample failed");
            Event::default()
                .event("problem")
                .data(r#"{"error":"internal server error"}"#)
        }
    }
}

/// The samples of `watch` as events; the guard lives as long as the stream.
fn sample_stream(watch: LiveWatch) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::unfold(watch, |mut watch| async move {
        loop {
            match watch.samples.recv().await {
                Ok(sample) => return Some((Ok(sample_event(&sample)), watch)),
                // A slow reader skips samples; the chart has a gap, no more.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

/// One event saying why there is no live traffic, then the end.
fn unavailable(reason: &str) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let data = serde_json::json!({ "error": reason }).to_string();
    futures::stream::iter([Ok(Event::default().event("unavailable").data(data))])
}

fn sse<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    (
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// `GET /devices/{id}/live`.
pub(crate) async fn events(
    State(state): State<ConsoleState>,
    ApiSession(auth): ApiSession,
    Path(raw_id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&raw_id) else {
        return json_error(StatusCode::NOT_FOUND, "device not found");
    };
    let viewer = &auth.session.viewer;
    let row = match state.store.device(viewer, id).await {
        Ok(r) => r,
        Err(e) => return api_error(e),
    };
    let scope = match auth.scope_for(row.tenant) {
        Ok(scope) => scope,
        Err(d) => return crate::access::api_denied(d, "device"),
    };
    match state.agents.watch(scope, id).await {
        Ok(watch) => sse(sample_stream(watch)),
        Err(reason) => sse(unavailable(&reason)),
    }
}
