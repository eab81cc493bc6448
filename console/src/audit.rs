//! `/audit`: the audit log, newest first, within a time range; `/audit.csv`:
//! the same range as CSV. MSP administrators see every record, a tenant's
//! users only their tenant's (the store filters by the session's scope).
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use outpost_store::audit::{AuditQuery, AuditRecord, CSV_HEADER, csv_line};
use outpost_store::members::Role;
use outpost_store::now_ms;

use crate::error::{PageError, status_page};
use crate::inventory::changes::{datetime_input, parse_datetime};
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;

/// Most records the page lists.
pub(crate) const PAGE_LIMIT: i64 = 500;
/// Most records one CSV download holds.
pub(crate) const CSV_LIMIT: i64 = 100_000;
/// Records read per query while writing a CSV download.
const CSV_CHUNK: i64 = 5_000;
/// The range shown without one: the last day.
const DEFAULT_RANGE_MS: i64 = 86_400_000;

/// The query string: `from` and `to` as `2025-01-31T14:05` (UTC, what a
/// `datetime-local` input sends) or RFC 3339 in UTC (`2025-01-31T14:05:00Z`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeParams {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// `[from, to)` in Unix ms, or what is wrong with the query.
fn range(params: &RangeParams, now: i64) -> Result<(i64, i64), String> {
    let parse = |name: &str, raw: Option<&str>, default: i64| -> Result<i64, String> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(raw) => parse_moment(raw).ok_or_else(|| {
                let shown: String = raw.chars().take(40).collect();
                format!("{name} {shown:?} must be a UTC date and time like 2025-01-31T14:05 or 2025-01-31T14:05:00Z")
            }),
        }
    };
    let to = parse("to", params.to.as_deref(), now)?;
    let from = parse("from", params.from.as_deref(), to.saturating_sub(DEFAULT_RANGE_MS))?;
    if from >= to {
        return Err("from must be before to".into());
    }
    Ok((from, to))
}

/// A `datetime-local` value, or the same with seconds and a `Z`.
fn parse_moment(raw: &str) -> Option<i64> {
    parse_datetime(raw.strip_suffix('Z').unwrap_or(raw))
}

/// One record as the page shows it.
#[derive(Clone, Debug)]
pub(crate) struct RecordView {
    pub(crate) seq: i64,
    pub(crate) time: String,
    pub(crate) tenant: String,
    pub(crate) actor: String,
    pub(crate) source: String,
    pub(crate) action: String,
    pub(crate) object: String,
    pub(crate) failed: bool,
    pub(crate) outcome: String,
    pub(crate) details: String,
}

impl From<&AuditRecord> for RecordView {
    fn from(r: &AuditRecord) -> Self {
        Self {
            seq: r.seq,
            time: outpost_store::audit::rfc3339(r.at_ms),
            tenant: r
                .tenant_name
                .clone()
                .or_else(|| r.tenant_id.clone())
                .unwrap_or_else(|| "(MSP)".into()),
            actor: r.actor.clone(),
            source: r.source.clone().unwrap_or_default(),
            action: r.action.clone(),
            object: r.object.clone(),
            failed: r.outcome != "success",
            outcome: r.outcome.clone(),
            details: r.details.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
pub(crate) struct AuditPage {
    pub(crate) layout: Layout,
    pub(crate) from_input: String,
    pub(crate) to_input: String,
    pub(crate) csv_href: String,
    pub(crate) records: Vec<RecordView>,
    pub(crate) truncated: bool,
    pub(crate) all_tenants: bool,
}

/// `GET /audit`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Query(params): Query<RangeParams>,
) -> Response {
    // The audit log is for administrators: of every tenant, or of theirs.
    if !auth.session.principal.has_role_somewhere(Role::Admin) {
        return crate::access::forbidden_page();
    }
    let viewer = auth.session.principal.admin_viewer();
    let (from, to) = match range(&params, now_ms()) {
        Ok(r) => r,
        Err(why) => return status_page(StatusCode::BAD_REQUEST, "Bad request", &why),
    };
    let query = AuditQuery {
        from_ms: from,
        to_ms: to,
        tenant: None,
        after_seq: 0,
        limit: PAGE_LIMIT,
        newest_first: true,
    };
    let records = match state.store.audit_records(&viewer, &query).await {
        Ok(r) => r,
        Err(e) => return PageError::from(e).into_response(),
    };
    let (from_input, to_input) = (datetime_input(from), datetime_input(to));
    let page = AuditPage {
        layout: Layout::signed_in(&auth.session),
        csv_href: format!(
            "/audit.csv?from={}&to={}",
            outpost_store::audit::rfc3339(from),
            outpost_store::audit::rfc3339(to)
        ),
        from_input,
        to_input,
        truncated: records.len() >= PAGE_LIMIT as usize,
        records: records.iter().map(RecordView::from).collect(),
        all_tenants: matches!(viewer, outpost_store::scope::Viewer::Admin(_)),
    };
    render(StatusCode::OK, &page)
}

/// `GET /audit.csv`: oldest first, at most [`CSV_LIMIT`] records (a download
/// that stops there says so in a last line starting with `#`).
pub(crate) async fn csv(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Query(params): Query<RangeParams>,
) -> Response {
    // The audit log is for administrators: of every tenant, or of theirs.
    if !auth.session.principal.has_role_somewhere(Role::Admin) {
        return crate::access::forbidden_page();
    }
    let viewer = auth.session.principal.admin_viewer();
    let (from, to) = match range(&params, now_ms()) {
        Ok(r) => r,
        Err(why) => return status_page(StatusCode::BAD_REQUEST, "Bad request", &why),
    };
    let mut body = String::from(CSV_HEADER);
    let mut after = 0;
    let mut written = 0;
    while written < CSV_LIMIT {
        let query = AuditQuery {
            from_ms: from,
            to_ms: to,
            tenant: None,
            after_seq: after,
            limit: CSV_CHUNK.min(CSV_LIMIT - written),
            newest_first: false,
        };
        let chunk = match state.store.audit_records(&viewer, &query).await {
            Ok(r) => r,
            Err(e) => return PageError::from(e).into_response(),
        };
        let Some(last) = chunk.last() else { break };
        after = last.seq;
        written += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
        for r in &chunk {
            body.push_str(&csv_line(r));
        }
    }
    if written >= CSV_LIMIT {
        body.push_str(&format!(
            "# stopped after {CSV_LIMIT} records; download a later range for the rest\r\n"
        ));
    }
    tracing::info!(user = %auth.session.username, from, to, records = written, "console: audit log downloaded");
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"outpost-audit.csv\""),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_to_the_last_day_and_refuse_nonsense() {
        let now = 1_700_000_000_000;
        let none = RangeParams::default();
        assert_eq!(range(&none, now), Ok((now - DEFAULT_RANGE_MS, now)));
        let both = RangeParams {
            from: Some("2023-11-14T22:00".into()),
            to: Some("2023-11-14T22:13:20Z".into()),
        };
        assert_eq!(range(&both, now), Ok((1_699_999_200_000, now)));
        let backwards = RangeParams {
            from: both.to.clone(),
            to: both.from.clone(),
        };
        assert!(range(&backwards, now).is_err());
        let bad = RangeParams {
            from: Some("last week".into()),
            to: None,
        };
        assert!(range(&bad, now).is_err_and(|e| e.contains("from")));
    }
}
