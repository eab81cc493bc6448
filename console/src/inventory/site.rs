//! `/inventory/sites/{site}`: discovery at one site: "scan now", its recent
//! scans, its discovery jobs with the form to add one, and the RouterOS
//! credential profile routers of the site are adopted with. The forms post to
//! `jobs` and `profile`; a refused form comes back here, on this page, naming
//! the field.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use outpost_store::inventory::jobs::JobRow;
use outpost_store::inventory::scans::{ScanRow, ScanState};
use outpost_store::tenants::SiteRow;
use outpost_store::users::Session;
use outpost_store::{StoreError, TenantScope};

use super::{or_dash, site_of};
use crate::agent_control::ScanProgress;
use crate::devices::add::FieldError;
use crate::devices::format;
use crate::error::PageError;
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;

/// Scans the page lists.
const RECENT_SCANS: u32 = 20;

/// A scan as the site page and the scan page show it.
#[derive(Clone, Debug)]
pub(crate) struct ScanItem {
    pub(crate) id: String,
    pub(crate) state: &'static str,
    pub(crate) state_class: &'static str,
    /// Its job's targets, or "default scan".
    pub(crate) job: String,
    pub(crate) source: String,
    pub(crate) requested: String,
    pub(crate) started: String,
    pub(crate) finished: String,
    pub(crate) hosts_found: i64,
    pub(crate) warnings: Vec<String>,
    /// `tcp 10/254, 3 hosts`, while it runs and its agent reports.
    pub(crate) progress: String,
}

/// The colour of a scan state's badge.
pub(crate) fn state_class(state: ScanState) -> &'static str {
    match state {
        ScanState::Finished => "ok",
        ScanState::Partial => "warn",
        ScanState::Requested | ScanState::Running => "muted",
    }
}

/// Whether a scan may still report.
pub(crate) fn running(state: ScanState) -> bool {
    matches!(state, ScanState::Requested | ScanState::Running)
}

/// `tcp 10/254, 3 hosts found`.
pub(crate) fn progress_words(p: &ScanProgress) -> String {
    format!("{} {}/{}, {} hosts found", p.phase, p.done, p.total, p.hosts_found)
}

/// The targets of the job `job_id` names, or what the scan was without one.
pub(crate) fn job_words(job_id: &str, jobs: &[JobRow]) -> String {
    if job_id.is_empty() {
        return "default scan (the agent's networks)".into();
    }
    jobs.iter()
        .find(|j| j.id.to_string() == job_id)
        .map(|j| j.targets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| format!("job {job_id} (deleted)"))
}

impl ScanItem {
    pub(crate) fn new(s: &ScanRow, jobs: &[JobRow], progress: Option<&ScanProgress>) -> Self {
        Self {
            id: s.id.to_string(),
            state: s.state.as_str(),
            state_class: state_class(s.state),
            job: job_words(&s.job_id, jobs),
            source: or_dash(&s.source),
            requested: s
                .requested_at_ms
                .map_or_else(|| "by the agent's schedule".into(), |ms| format::utc(Some(ms))),
            started: s.started_ms.map_or_else(|| "—".into(), |ms| format::utc(Some(ms))),
            finished: s.finished_ms.map_or_else(|| "—".into(), |ms| format::utc(Some(ms))),
            hosts_found: s.hosts_found,
            warnings: s.warnings.clone(),
            progress: progress
                .filter(|_| running(s.state))
                .map(progress_words)
                .unwrap_or_default(),
        }
    }
}

/// A job in words.
#[derive(Clone, Debug)]
pub(crate) struct JobItem {
    pub(crate) id: String,
    pub(crate) targets: String,
    pub(crate) ports: String,
    pub(crate) rate: String,
    pub(crate) interval: String,
    pub(crate) snmp: String,
    pub(crate) created: String,
}

impl From<&JobRow> for JobItem {
    fn from(j: &JobRow) -> Self {
        Self {
            id: j.id.to_string(),
            targets: j.targets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            ports: if j.ports.is_empty() {
                "the agent's default list".into()
            } else {
                j.ports.to_string()
            },
            rate: if j.rate_pps == 0 {
                "the agent's default".into()
            } else {
                format!("{} probes/s", j.rate_pps)
            },
            interval: if j.interval_secs == 0 {
                "on demand only".into()
            } else {
                format!("every {}", format::uptime(i64::from(j.interval_secs)))
            },
            snmp: or_dash(&j.snmp_summary),
            created: format::utc(Some(j.created_at_ms)),
        }
    }
}

/// What the add-job form shows again; never the community or a password.
#[derive(Clone, Debug)]
pub(crate) struct JobValues {
    pub(crate) targets: String,
    pub(crate) ports: String,
    pub(crate) rate: String,
    pub(crate) interval: String,
    pub(crate) v3_user: String,
    pub(crate) v3_auth: String,
    pub(crate) v3_priv: String,
}

impl Default for JobValues {
    fn default() -> Self {
        Self {
            targets: String::new(),
            ports: String::new(),
            rate: "0".into(),
            interval: "3600".into(),
            v3_user: String::new(),
            v3_auth: "sha1".into(),
            v3_priv: "aes128".into(),
        }
    }
}

/// The profile as set (never its password).
#[derive(Clone, Debug)]
pub(crate) struct ProfileView {
    pub(crate) username: String,
    pub(crate) updated: String,
}

/// What a form posted to this page left to show.
#[derive(Clone, Debug, Default)]
pub(crate) struct Forms {
    pub(crate) job_values: JobValues,
    pub(crate) job_error: Option<FieldError>,
    /// The user name typed into the profile form.
    pub(crate) profile_username: Option<String>,
    pub(crate) profile_error: Option<FieldError>,
}

#[derive(Template)]
#[template(path = "inventory/site.html")]
pub(crate) struct SitePage {
    pub(crate) layout: Layout,
    pub(crate) csrf: String,
    pub(crate) site_id: String,
    pub(crate) tenant_name: String,
    pub(crate) site_name: String,
    pub(crate) notice: Option<&'static str>,
    pub(crate) scans: Vec<ScanItem>,
    pub(crate) jobs: Vec<JobItem>,
    pub(crate) profile: Option<ProfileView>,
    pub(crate) forms: Forms,
}

impl SitePage {
    /// Whether the add-job form's error is about `field`.
    pub(crate) fn job_invalid(&self, field: &str) -> bool {
        self.forms.job_error.as_ref().is_some_and(|e| e.field == field)
    }

    /// The SNMPv3 authentication protocols the form offers.
    pub(crate) fn auth_protocols(&self) -> &'static [(&'static str, &'static str)] {
        super::snmp::AUTH_PROTOCOLS
    }

    /// The SNMPv3 privacy protocols the form offers.
    pub(crate) fn priv_protocols(&self) -> &'static [(&'static str, &'static str)] {
        super::snmp::PRIV_PROTOCOLS
    }

    /// Whether the profile form's error is about `field`.
    pub(crate) fn profile_invalid(&self, field: &str) -> bool {
        self.forms.profile_error.as_ref().is_some_and(|e| e.field == field)
    }

    /// The user name the profile form shows.
    pub(crate) fn profile_username(&self) -> &str {
        match (&self.forms.profile_username, &self.profile) {
            (Some(typed), _) => typed,
            (None, Some(p)) => &p.username,
            (None, None) => "",
        }
    }
}

/// The page with `forms` as a POST left them (or fresh), and `status`.
pub(crate) async fn show(
    state: &ConsoleState,
    session: &Session,
    site: &SiteRow,
    scope: &TenantScope,
    forms: Forms,
    notice: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let loaded: Result<_, StoreError> = async {
        let jobs = state
            .store
            .list_discovery_jobs(&session.viewer, Some(site.site))
            .await?;
        let scans = state
            .store
            .list_scans(&session.viewer, Some(site.site), RECENT_SCANS)
            .await?;
        let profile = state.store.site_credential(scope, site.site).await?;
        Ok((jobs, scans, profile))
    }
    .await;
    let (jobs, scans, profile) = match loaded {
        Ok(l) => l,
        Err(e) => return PageError::from(e).into_response(),
    };
    let scans = scans
        .iter()
        .map(|s| ScanItem::new(s, &jobs, state.agents.scan_progress(scope, &s.id).as_ref()))
        .collect();
    render(
        status,
        &SitePage {
            layout: Layout::signed_in(session),
            csrf: session.csrf_token.clone(),
            site_id: site.site.to_string(),
            tenant_name: site.tenant_name.clone(),
            site_name: site.site_name.clone(),
            notice,
            scans,
            jobs: jobs.iter().map(JobItem::from).collect(),
            profile: profile.map(|p| ProfileView {
                username: p.username,
                updated: format::utc(Some(p.updated_at_ms)),
            }),
            forms,
        },
    )
}

/// The query of the site page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SiteQuery {
    /// What a form just did: `job-added`, `job-deleted`, `profile-saved`.
    #[serde(default)]
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "job-added" => Some("Discovery job added; the site's agents get it within seconds."),
        "job-deleted" => Some("Discovery job deleted; the site's agents stop running it."),
        "profile-saved" => Some("Credential profile saved; routers of this site are adopted with it from now on."),
        _ => None,
    }
}

/// `GET /inventory/sites/{site}`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
    Path(raw_site): Path<String>,
    Query(query): Query<SiteQuery>,
) -> Response {
    let (site, scope) = match site_of(&state.store, &auth, &raw_site).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    show(
        &state,
        &auth.session,
        &site,
        &scope,
        Forms::default(),
        notice(query.done.as_deref()),
        StatusCode::OK,
    )
    .await
}
