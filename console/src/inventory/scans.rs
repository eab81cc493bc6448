//! Scans from the console: `POST /inventory/sites/{site}/scan` asks a
//! connected agent of the site to scan now and leads to the scan's page,
//! `/inventory/scans/{id}`, whose progress `console.js` keeps current from
//! `/api/scans/{id}` (the agent's latest progress while it runs, then the
//! summary the scans table keeps).
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use outpost_store::inventory::scans::ScanRow;
use outpost_store::inventory::{JobId, ScanId};
use outpost_store::{StoreError, TenantScope};

use super::site::{ScanItem, running};
use super::{api_error, job_not_found, page_error, scan_not_found, site_of};
use crate::agent_control::ScanProgress;
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::error::{PageError, json_error, status_page};
use crate::layout::{Layout, render};
use crate::session::Authenticated;
use crate::session::{ApiSession, PageSession};
use crate::state::ConsoleState;

/// The "scan now" form.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ScanForm {
    #[serde(default)]
    csrf: String,
    /// A job of the site; empty: the agent's default scan.
    #[serde(default)]
    job: String,
}

impl CsrfProtected for ScanForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /inventory/sites/{site}/scan`.
pub(crate) async fn scan_now(
    State(state): State<ConsoleState>,
    Path(raw_site): Path<String>,
    CsrfForm { auth, form }: CsrfForm<ScanForm>,
) -> Response {
    let viewer = &auth.session.viewer;
    let (site, scope) = match site_of(&state.store, &auth, &raw_site).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let job = match form.job.trim() {
        "" => None,
        raw => {
            let Ok(id) = raw.parse::<JobId>() else {
                return job_not_found();
            };
            match state.store.list_discovery_jobs(viewer, Some(site.site)).await {
                Ok(jobs) if jobs.iter().any(|j| j.id == id) => Some(id),
                Ok(_) => return job_not_found(),
                Err(e) => return PageError::from(e).into_response(),
            }
        }
    };
    match state.agents.scan_now(scope, site.site, job).await {
        Ok(scan) => {
            tracing::info!(site = %site.site, %scan, user = %auth.session.username, "console: scan requested");
            Redirect::to(&format!("/inventory/scans/{scan}")).into_response()
        }
        Err(reason) => status_page(StatusCode::SERVICE_UNAVAILABLE, "Scan not started", &reason),
    }
}

/// A scan id from a URL; anything else names no scan.
fn parse_scan(raw: &str) -> Option<ScanId> {
    raw.parse().ok()
}

/// The scan, and the scope of its tenant, read as the signed-in user.
async fn load(state: &ConsoleState, auth: &Authenticated, raw: &str) -> Result<(ScanRow, TenantScope), StoreError> {
    let missing = || StoreError::NotFound("scan".into());
    let id = parse_scan(raw).ok_or_else(missing)?;
    let scan = state.store.scan(&auth.session.viewer, &id).await?;
    // Reading needs only membership, which seeing the scan proves.
    let scope = auth.scope_for(scan.tenant).map_err(|_| missing())?;
    Ok((scan, scope))
}

/// What `/api/scans/{id}` answers.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ScanStatus {
    pub(crate) id: String,
    pub(crate) site_id: String,
    /// `requested`, `running`, `finished` or `partial`.
    pub(crate) state: &'static str,
    /// It may still report: keep asking.
    pub(crate) running: bool,
    /// The agent's latest progress, while it runs.
    pub(crate) progress: Option<ScanProgress>,
    /// Hosts found, as the agent counted (known when it finished).
    pub(crate) hosts_found: i64,
    /// Host records received so far.
    pub(crate) hosts_reported: i64,
    pub(crate) addresses: i64,
    pub(crate) probes_sent: i64,
    pub(crate) warnings: Vec<String>,
    pub(crate) started_ms: Option<i64>,
    pub(crate) finished_ms: Option<i64>,
}

fn status_of(state: &ConsoleState, scan: &ScanRow, scope: &TenantScope) -> ScanStatus {
    let is_running = running(scan.state);
    ScanStatus {
        id: scan.id.to_string(),
        site_id: scan.site.to_string(),
        state: scan.state.as_str(),
        running: is_running,
        progress: is_running
            .then(|| state.agents.scan_progress(scope, &scan.id))
            .flatten(),
        hosts_found: scan.hosts_found,
        hosts_reported: scan.hosts_reported,
        addresses: scan.addresses,
        probes_sent: scan.probes_sent,
        warnings: scan.warnings.clone(),
        started_ms: scan.started_ms,
        finished_ms: scan.finished_ms,
    }
}

#[derive(Template)]
#[template(path = "inventory/scan.html")]
pub(crate) struct ScanPage {
    pub(crate) layout: Layout,
    pub(crate) item: ScanItem,
    pub(crate) status: ScanStatus,
    pub(crate) site_label: String,
    pub(crate) targets: String,
    pub(crate) icmp: String,
}

/// `GET /inventory/scans/{id}`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_id): Path<String>,
) -> Response {
    let viewer = &auth.session.viewer;
    let (scan, scope) = match load(&state, &auth, &raw_id).await {
        Ok(s) => s,
        Err(e) => return page_error(e, scan_not_found),
    };
    let (site, _) = match site_of(&state.store, &auth, &scan.site.to_string()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let jobs = match state.store.list_discovery_jobs(viewer, Some(scan.site)).await {
        Ok(j) => j,
        Err(e) => return PageError::from(e).into_response(),
    };
    let status = status_of(&state, &scan, &scope);
    let item = ScanItem::new(&scan, &jobs, status.progress.as_ref());
    render(
        StatusCode::OK,
        &ScanPage {
            layout: Layout::signed_in(&auth.session),
            item,
            status,
            site_label: format!("{} / {}", site.tenant_name, site.site_name),
            targets: if scan.targets.is_empty() {
                "—".into()
            } else {
                scan.targets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            icmp: match scan.icmp.as_str() {
                "" => "—".into(),
                "none" => "none (no permission to send echo requests)".into(),
                other => other.to_owned(),
            },
        },
    )
}

/// `GET /api/scans/{id}`.
pub(crate) async fn api(
    State(state): State<ConsoleState>,
    ApiSession(auth): ApiSession,
    Path(raw_id): Path<String>,
) -> Response {
    match load(&state, &auth, &raw_id).await {
        Ok((scan, scope)) => Json(status_of(&state, &scan, &scope)).into_response(),
        Err(StoreError::NotFound(_)) => json_error(StatusCode::NOT_FOUND, "scan not found"),
        Err(e) => api_error(e, "scan"),
    }
}
