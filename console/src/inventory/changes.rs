//! `/inventory/changes?since=…`: what changed in the inventory since a
//! moment (the last hour, day or week, or a date and time), newest first,
//! each change linking to its host.
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use outpost_store::now_ms;

use super::host::ChangeView;
use super::site_not_found;
use crate::devices::format;
use crate::error::{PageError, status_page};
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;

/// Most changes one page lists.
pub(crate) const CHANGE_LIMIT: u32 = 1_000;

/// The presets: (query value, label, milliseconds back).
const PRESETS: [(&str, &str, i64); 3] = [
    ("1h", "1 h", 3_600_000),
    ("24h", "24 h", 86_400_000),
    ("7d", "7 d", 7 * 86_400_000),
];

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChangesParams {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    site: Option<String>,
}

/// A preset link.
#[derive(Clone, Debug)]
pub(crate) struct Preset {
    pub(crate) href: String,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

/// A change with the site it happened at.
#[derive(Clone, Debug)]
pub(crate) struct SiteChange {
    pub(crate) site: String,
    pub(crate) change: ChangeView,
}

#[derive(Template)]
#[template(path = "inventory/changes.html")]
pub(crate) struct ChangesPage {
    pub(crate) layout: Layout,
    pub(crate) presets: Vec<Preset>,
    /// The `datetime-local` value of the moment shown (UTC).
    pub(crate) since_input: String,
    pub(crate) since_words: String,
    pub(crate) site: Option<String>,
    pub(crate) site_label: Option<String>,
    pub(crate) changes: Vec<SiteChange>,
    pub(crate) truncated: bool,
}

/// `2025-01-31T14:05` (a `datetime-local` value) or with seconds, as UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let (date, clock) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut c = clock.splitn(3, ':');
    let (h, mi) = (c.next()?.parse::<u8>().ok()?, c.next()?.parse::<u8>().ok()?);
    let sec = match c.next() {
        Some(s) => s.parse::<u8>().ok()?,
        None => 0,
    };
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(da).ok()?).ok()?;
    let at = time::PrimitiveDateTime::new(date, time::Time::from_hms(h, mi, sec).ok()?).assume_utc();
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The `datetime-local` value of `ms` (UTC, to the minute).
pub(crate) fn datetime_input(ms: i64) -> String {
    crate::overview_data::utc_strings(ms)
        .map(|(iso, _)| iso.chars().take(16).collect())
        .unwrap_or_default()
}

/// The moment `since` names (milliseconds), and which preset it is.
pub(crate) fn since_ms(since: Option<&str>, now: i64) -> Result<(i64, Option<&'static str>), String> {
    let raw = since.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("24h");
    if let Some((name, _, back)) = PRESETS.iter().find(|(name, _, _)| *name == raw) {
        return Ok((now - back, Some(name)));
    }
    parse_datetime(raw).map(|ms| (ms, None)).ok_or_else(|| {
        let shown: String = raw.chars().take(40).collect();
        format!("since {shown:?} must be 1h, 24h, 7d or a date and time like 2025-01-31T14:05 (UTC)")
    })
}

/// `GET /inventory/changes`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Query(params): Query<ChangesParams>,
) -> Response {
    let viewer = &auth.session.viewer;
    let (since, preset) = match since_ms(params.since.as_deref(), now_ms()) {
        Ok(s) => s,
        Err(why) => return status_page(StatusCode::BAD_REQUEST, "Bad request", &why),
    };
    let sites = match state.store.sites(viewer).await {
        Ok(s) => s,
        Err(e) => return PageError::from(e).into_response(),
    };
    let site = match params.site.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match sites.iter().find(|s| s.site.to_string() == raw) {
            Some(s) => Some(s),
            None => return site_not_found(),
        },
    };
    let changes = match state
        .store
        .host_changes_since(viewer, site.map(|s| s.site), since, CHANGE_LIMIT)
        .await
    {
        Ok(c) => c,
        Err(e) => return PageError::from(e).into_response(),
    };
    let site_query = site.map(|s| format!("&site={}", s.site)).unwrap_or_default();
    let page = ChangesPage {
        layout: Layout::signed_in(&auth.session),
        presets: PRESETS
            .iter()
            .map(|(name, label, _)| Preset {
                href: format!("/inventory/changes?since={name}{site_query}"),
                label,
                current: preset == Some(*name),
            })
            .collect(),
        since_input: datetime_input(since),
        since_words: format::utc(Some(since)),
        site: site.map(|s| s.site.to_string()),
        site_label: site.map(|s| format!("{} / {}", s.tenant_name, s.site_name)),
        truncated: changes.len() >= CHANGE_LIMIT as usize,
        changes: changes
            .iter()
            .map(|c| SiteChange {
                site: sites
                    .iter()
                    .find(|s| s.site == c.site)
                    .map(|s| format!("{} / {}", s.tenant_name, s.site_name))
                    .unwrap_or_default(),
                change: ChangeView::from(c),
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_presets_and_utc_date_times() {
        let now = 1_700_000_000_000;
        assert_eq!(since_ms(None, now), Ok((now - 86_400_000, Some("24h"))));
        assert_eq!(since_ms(Some("1h"), now), Ok((now - 3_600_000, Some("1h"))));
        assert_eq!(since_ms(Some("7d"), now), Ok((now - 604_800_000, Some("7d"))));
        assert_eq!(since_ms(Some("2023-11-14T22:13"), now), Ok((1_699_999_980_000, None)));
        assert_eq!(since_ms(Some("2023-11-14T22:13:20"), now), Ok((now, None)));
        for bad in ["yesterday", "2023-13-01T00:00", "2023-11-14", "2023-11-14T25:00", "1y"] {
            assert!(since_ms(Some(bad), now).is_err(), "{bad}");
        }
        assert_eq!(datetime_input(now), "2023-11-14T22:13");
    }
}
