//! Discovery jobs from the console: `POST /inventory/sites/{site}/jobs`
//! checks the form, seals the optional SNMP community with the tenant's
//! vault key and adds the job; `POST /inventory/jobs/{id}/delete` deletes
//! one. A refused form comes back on the site page naming the field, with
//! every value but the community.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::StoreError;
use outpost_store::inventory::JobId;
use outpost_store::inventory::addr::{PortList, Target, parse_targets};
use outpost_store::inventory::jobs::{NewJob, validate_job};

use super::site::{Forms, JobValues, show};
use super::snmp::{MAX_COMMUNITY_CHARS, ONE_COMMUNITY, seal_community};
use super::{job_not_found, page_error, site_not_found, site_of};
use crate::csrf::{CsrfForm, CsrfProtected};
use crate::devices::actions::ActionForm;
use crate::devices::add::FieldError;
use crate::error::PageError;
use crate::state::ConsoleState;

/// The form as posted. Every field is text so a bad number is reported
/// against its field rather than refused as a malformed request.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct JobForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    targets: String,
    #[serde(default)]
    ports: String,
    #[serde(default)]
    rate: String,
    #[serde(default)]
    interval: String,
    /// A secret: sealed, never shown again.
    #[serde(default)]
    community: String,
}

impl CsrfProtected for JobForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn refuse(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// The checked form.
struct Checked {
    targets: Vec<Target>,
    ports: PortList,
    rate: u32,
    interval: u32,
    community: Option<String>,
}

/// The field `validate_job`'s message is about.
fn field_of(message: &str) -> &'static str {
    if message.starts_with("rate") {
        "rate"
    } else if message.starts_with("interval") {
        "interval"
    } else {
        "targets"
    }
}

fn number(field: &'static str, label: &str, raw: &str) -> Result<u32, FieldError> {
    raw.trim()
        .parse::<u32>()
        .map_err(|_| refuse(field, format!("{label} must be a whole number")))
}

fn check(form: &JobForm) -> Result<Checked, FieldError> {
    let targets = parse_targets(form.targets.trim()).map_err(|m| refuse("targets", m))?;
    let ports: PortList = form.ports.trim().parse().map_err(|m: String| refuse("ports", m))?;
    let rate = number("rate", "rate", &form.rate)?;
    let interval = number("interval", "interval", &form.interval)?;
    validate_job(&targets, rate, interval).map_err(|m| refuse(field_of(&m), m))?;
    let community = match form.community.as_str() {
        "" => None,
        c if c.chars().count() > MAX_COMMUNITY_CHARS || c.chars().any(char::is_control) => {
            return Err(refuse(
                "community",
                format!("the SNMP community must be 1 to {MAX_COMMUNITY_CHARS} printable characters"),
            ));
        }
        c => Some(c.to_owned()),
    };
    Ok(Checked {
        targets,
        ports,
        rate,
        interval,
        community,
    })
}

/// `POST /inventory/sites/{site}/jobs`.
pub(crate) async fn add(
    State(state): State<ConsoleState>,
    Path(raw_site): Path<String>,
    CsrfForm { auth, form }: CsrfForm<JobForm>,
) -> Response {
    let session = &auth.session;
    let (site, scope) = match site_of(&state.store, &auth, &raw_site).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let refused = |error: FieldError| Forms {
        job_values: JobValues {
            targets: form.targets.clone(),
            ports: form.ports.clone(),
            rate: form.rate.clone(),
            interval: form.interval.clone(),
        },
        job_error: Some(error),
        ..Forms::default()
    };
    let checked = match check(&form) {
        Ok(c) => c,
        Err(error) => {
            let forms = refused(error);
            return show(
                &state,
                session,
                &site,
                &scope,
                forms,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let id = JobId::random();
    let snmp_sealed = match &checked.community {
        None => None,
        Some(c) => match seal_community(&state.vault.tenant(&site.tenant.to_string()), id, c) {
            Ok(s) => Some(s),
            Err(e) => return PageError::internal("sealing an SNMP community failed", &e).into_response(),
        },
    };
    let job = NewJob {
        id,
        site: site.site,
        targets: checked.targets,
        ports: checked.ports,
        rate_pps: checked.rate,
        interval_secs: checked.interval,
        snmp_summary: if snmp_sealed.is_some() {
            ONE_COMMUNITY.to_owned()
        } else {
            String::new()
        },
        snmp_sealed,
    };
    match state.store.add_discovery_job(&scope, &job).await {
        Ok(id) => {
            tracing::info!(job = %id, site = %site.site, user = %session.username, "console: discovery job added");
            Redirect::to(&format!("/inventory/sites/{}?done=job-added#jobs", site.site)).into_response()
        }
        Err(StoreError::Conflict(m)) => {
            let forms = refused(refuse(field_of(&m), m));
            show(
                &state,
                session,
                &site,
                &scope,
                forms,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => page_error(e, site_not_found),
    }
}

/// `POST /inventory/jobs/{id}/delete`: back to the job's site.
pub(crate) async fn delete(
    State(state): State<ConsoleState>,
    Path(raw_id): Path<String>,
    CsrfForm { auth, .. }: CsrfForm<ActionForm>,
) -> Response {
    let Ok(id) = raw_id.parse::<JobId>() else {
        return job_not_found();
    };
    let viewer = &auth.session.viewer;
    let job = match state.store.discovery_job(viewer, id).await {
        Ok(j) => j,
        Err(e) => return page_error(e, job_not_found),
    };
    let scope = match auth.scope_for(job.tenant) {
        Ok(scope) => scope,
        Err(d) => return crate::access::page_denied(d, job_not_found),
    };
    match state.store.delete_discovery_job(&scope, id).await {
        Ok(()) => {
            tracing::info!(job = %id, user = %auth.session.username, "console: discovery job deleted");
            Redirect::to(&format!("/inventory/sites/{}?done=job-deleted#jobs", job.site)).into_response()
        }
        Err(e) => page_error(e, job_not_found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(targets: &str, ports: &str, rate: &str, interval: &str, community: &str) -> JobForm {
        JobForm {
            csrf: String::new(),
            targets: targets.into(),
            ports: ports.into(),
            rate: rate.into(),
            interval: interval.into(),
            community: community.into(),
        }
    }

    fn field(f: &JobForm) -> &'static str {
        check(f).err().map_or("ok", |e| e.field)
    }

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(field(&form("192.0.2.0/24", "22,80", "500", "3600", "public")), "ok");
        assert_eq!(field(&form("192.0.2.0/24", "", "0", "0", "")), "ok");
        assert_eq!(field(&form("", "", "0", "0", "")), "targets");
        assert_eq!(field(&form("192.0.2.0/33", "", "0", "0", "")), "targets");
        assert_eq!(field(&form("10.0.0.0/8", "", "0", "0", "")), "targets");
        assert_eq!(field(&form("192.0.2.0/24", "22,x", "0", "0", "")), "ports");
        assert_eq!(field(&form("192.0.2.0/24", "", "fast", "0", "")), "rate");
        assert_eq!(field(&form("192.0.2.0/24", "", "1000000", "0", "")), "rate");
        assert_eq!(field(&form("192.0.2.0/24", "", "0", "5", "")), "interval");
        assert_eq!(field(&form("192.0.2.0/24", "", "0", "-1", "")), "interval");
        assert_eq!(field(&form("192.0.2.0/24", "", "0", "0", "a\nb")), "community");
        assert_eq!(
            field(&form("192.0.2.0/24", "", "0", "0", &"c".repeat(129))),
            "community"
        );
    }
}
