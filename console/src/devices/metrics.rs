//! `GET /api/devices/{id}/metrics?metric=if_rx_bps&range=1h[&subject=ether1]`:
//! a device's stored series for the charts, one per subject, as
//! `[time ms, mean, min, max]` points.
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use outpost_store::now_ms;

use super::{api_error, parse_id};
use crate::error::json_error;
use crate::session::ApiSession;
use crate::state::ConsoleState;

/// The metrics the charts may ask for (see the store's metric table).
const METRICS: [&str; 6] = [
    "cpu_load",
    "memory_used_bytes",
    "if_rx_bps",
    "if_tx_bps",
    "health",
    "wireless_signal_dbm",
];

/// Points per series: about one per pixel of a wide chart.
const MAX_POINTS: usize = 720;

/// The chart ranges, ms.
fn range_ms(range: &str) -> Option<i64> {
    const HOUR: i64 = 3_600_000;
    match range {
        "1h" => Some(HOUR),
        "24h" => Some(24 * HOUR),
        "30d" => Some(30 * 24 * HOUR),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct MetricsQuery {
    #[serde(default)]
    metric: String,
    #[serde(default)]
    range: String,
    subject: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Series {
    subject: String,
    step_ms: i64,
    /// `[time ms, mean, min, max]`.
    points: Vec<(i64, f64, f64, f64)>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MetricsAnswer {
    metric: String,
    range: String,
    from_ms: i64,
    to_ms: i64,
    series: Vec<Series>,
}

/// `GET /api/devices/{id}/metrics`.
pub(crate) async fn api(
    State(state): State<ConsoleState>,
    ApiSession(auth): ApiSession,
    Path(raw_id): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> Response {
    let Some(id) = parse_id(&raw_id) else {
        return json_error(StatusCode::NOT_FOUND, "device not found");
    };
    if !METRICS.contains(&q.metric.as_str()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("metric must be one of {}", METRICS.join(", ")),
        );
    }
    let Some(span) = range_ms(&q.range) else {
        return json_error(StatusCode::BAD_REQUEST, "range must be 1h, 24h or 30d");
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
    let to_ms = now_ms();
    let from_ms = to_ms - span;
    let series = match state
        .store
        .metric_points(
            &scope,
            &id.to_string(),
            &q.metric,
            q.subject.as_deref(),
            from_ms,
            to_ms,
            MAX_POINTS,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => return api_error(e),
    };
    Json(MetricsAnswer {
        metric: q.metric,
        range: q.range,
        from_ms,
        to_ms,
        series: series
            .into_iter()
            .map(|s| Series {
                subject: s.subject,
                step_ms: s.step_ms,
                points: s.points.iter().map(|p| (p.ts_ms, p.avg, p.min, p.max)).collect(),
            })
            .collect(),
    })
    .into_response()
}
