//! Discovery jobs from the console: `POST /inventory/sites/{site}/jobs`
//! checks the form, seals the optional SNMP credentials (a v2c community, an
//! SNMPv3 authPriv user) with the tenant's vault key and adds the job;
//! `POST /inventory/jobs/{id}/delete` deletes one. A refused form comes back
//! on the site page naming the field, with every value but the secrets.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use outpost_store::StoreError;
use outpost_store::inventory::JobId;
use outpost_store::inventory::addr::{PortList, Target, parse_targets};
use outpost_store::inventory::jobs::{NewJob, validate_job};

use super::site::{Forms, JobValues, show};
use super::snmp::{self, V3Entry};
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
    /// SNMPv3 user; empty: none.
    #[serde(default)]
    v3_user: String,
    #[serde(default)]
    v3_auth: String,
    /// A secret: sealed, never shown again.
    #[serde(default)]
    v3_auth_password: String,
    #[serde(default)]
    v3_priv: String,
    /// A secret: sealed, never shown again.
    #[serde(default)]
    v3_priv_password: String,
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
    snmp: Vec<outpost_proto::agent_v1::SnmpCredential>,
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
    let mut snmp = Vec::new();
    if !form.community.is_empty() {
        snmp.push(snmp::community(&form.community).map_err(|r| refuse(r.field, r.message))?);
    }
    if !form.v3_user.trim().is_empty() {
        let entry = V3Entry {
            user: &form.v3_user,
            auth: &form.v3_auth,
            auth_password: &form.v3_auth_password,
            privacy: &form.v3_priv,
            priv_password: &form.v3_priv_password,
        };
        snmp.push(snmp::v3_user(&entry).map_err(|r| refuse(r.field, r.message))?);
    } else if !form.v3_auth_password.is_empty() || !form.v3_priv_password.is_empty() {
        return Err(refuse("v3_user", "SNMPv3 passwords were given without a user name"));
    }
    Ok(Checked {
        targets,
        ports,
        rate,
        interval,
        snmp,
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
            v3_user: form.v3_user.clone(),
            v3_auth: form.v3_auth.clone(),
            v3_priv: form.v3_priv.clone(),
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
    let snmp_sealed = if checked.snmp.is_empty() {
        None
    } else {
        match snmp::seal(&state.vault.tenant(&site.tenant.to_string()), id, &checked.snmp) {
            Ok(s) => Some(s),
            Err(e) => return PageError::internal("sealing SNMP credentials failed", &e).into_response(),
        }
    };
    let job = NewJob {
        id,
        site: site.site,
        targets: checked.targets,
        ports: checked.ports,
        rate_pps: checked.rate,
        interval_secs: checked.interval,
        snmp_summary: snmp::summary(&checked.snmp),
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
            ..JobForm::default()
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
        let v3 = |user: &str, auth: &str, auth_password: &str, privacy: &str, priv_password: &str| JobForm {
            v3_user: user.into(),
            v3_auth: auth.into(),
            v3_auth_password: auth_password.into(),
            v3_priv: privacy.into(),
            v3_priv_password: priv_password.into(),
            ..form("192.0.2.0/24", "", "0", "0", "")
        };
        assert_eq!(field(&v3("outpost", "sha1", "authpass1", "aes128", "privpass1")), "ok");
        assert_eq!(
            field(&v3("outpost", "sha1", "authpass1", "rc4", "privpass1")),
            "v3_priv"
        );
        assert_eq!(
            field(&v3("outpost", "sha1", "", "aes128", "privpass1")),
            "v3_auth_password"
        );
        assert_eq!(field(&v3("", "sha1", "authpass1", "aes128", "privpass1")), "v3_user");
        assert_eq!(field(&v3("", "sha1", "", "aes128", "")), "ok", "no user, no v3");
        let both = JobForm {
            community: "public".into(),
            ..v3("outpost", "sha256", "authpass1", "aes256", "privpass1")
        };
        assert_eq!(check(&both).map(|c| c.snmp.len()).ok(), Some(2));
    }
}
