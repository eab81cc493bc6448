//! Adding a device: `GET /devices/new` shows the form, `POST /devices` checks
//! it, seals the password with the tenant's vault key and stores the device.
//! A refused form comes back with the message naming the field and every
//! value but the password.
use crate::rate_limit::ClientIp;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use outpost_store::audit::Actor;
use serde::Deserialize;

use outpost_certs::SiteId;
use outpost_store::devices::{DeviceId, NewDevice, validate_new};
use outpost_store::members::Denied;
use outpost_store::tenants::SiteRow;
use outpost_store::users::Session;
use outpost_store::{Store, StoreError};

use crate::csrf::{CsrfForm, CsrfProtected};
use crate::error::PageError;
use crate::layout::{Layout, render};
use crate::session::PageSession;
use crate::state::ConsoleState;

/// The form as posted. Every field is text so a bad number is reported
/// against its field rather than refused as a malformed request.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    api_port: String,
    /// Present (`on`) when the box is ticked.
    #[serde(default)]
    api_tls: Option<String>,
    #[serde(default)]
    ssh_port: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    interval: String,
}

impl CsrfProtected for AddForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// What the form shows again; never the password.
#[derive(Clone, Debug)]
pub(crate) struct Values {
    pub(crate) site: String,
    pub(crate) address: String,
    pub(crate) api_port: String,
    pub(crate) api_tls: bool,
    pub(crate) ssh_port: String,
    pub(crate) username: String,
    pub(crate) interval: String,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            site: String::new(),
            address: String::new(),
            api_port: "8729".into(),
            api_tls: true,
            ssh_port: "22".into(),
            username: String::new(),
            interval: "60".into(),
        }
    }
}

/// A refusal: which field, and why.
#[derive(Clone, Debug)]
pub(crate) struct FieldError {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

/// A site the viewer may add a device to.
#[derive(Clone, Debug)]
pub(crate) struct SiteOption {
    pub(crate) value: String,
    pub(crate) label: String,
}

#[derive(Template)]
#[template(path = "devices/add.html")]
pub(crate) struct AddPage {
    pub(crate) layout: Layout,
    pub(crate) csrf: String,
    pub(crate) sites: Vec<SiteOption>,
    pub(crate) values: Values,
    pub(crate) error: Option<FieldError>,
}

impl AddPage {
    /// Whether the error is about `field` (marks the input).
    pub(crate) fn invalid(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }
}

async fn sites(store: &Store, session: &Session) -> Result<Vec<SiteRow>, StoreError> {
    store.sites(&session.viewer).await
}

fn options(sites: &[SiteRow]) -> Vec<SiteOption> {
    sites
        .iter()
        .map(|s| SiteOption {
            value: s.site.to_string(),
            label: format!("{} / {}", s.tenant_name, s.site_name),
        })
        .collect()
}

fn form_page(session: &Session, sites: &[SiteRow], values: Values, error: Option<FieldError>) -> Response {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        status,
        &AddPage {
            layout: Layout::signed_in(session),
            csrf: session.csrf_token.clone(),
            sites: options(sites),
            values,
            error,
        },
    )
}

/// `GET /devices/new`: the sites of the tenants where the user may add
/// devices; "permission denied" for a user who may add none.
pub(crate) async fn form(State(state): State<ConsoleState>, PageSession(auth): PageSession) -> Response {
    if !auth.session.principal.has_role_somewhere(auth.need) {
        return crate::access::forbidden_page();
    }
    match sites(&state.store, &auth.session).await {
        Ok(sites) => {
            let sites: Vec<SiteRow> = sites.into_iter().filter(|s| auth.scope_for(s.tenant).is_ok()).collect();
            form_page(&auth.session, &sites, Values::default(), None)
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

fn refuse(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

fn port(field: &'static str, label: &str, raw: &str) -> Result<u16, FieldError> {
    match raw.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(refuse(field, format!("{label} must be a number from 1 to 65535"))),
    }
}

/// The field `validate_new`'s message is about (it starts with its name).
fn field_of(message: &str) -> &'static str {
    if message.starts_with("user name") {
        "username"
    } else if message.starts_with("poll interval") {
        "interval"
    } else {
        "address"
    }
}

/// The checked form, password still in clear.
struct Checked {
    site: SiteRow,
    address: String,
    api_port: u16,
    api_tls: bool,
    ssh_port: u16,
    username: String,
    interval: u32,
}

fn check(form: &AddForm, sites: &[SiteRow]) -> Result<Checked, FieldError> {
    let site = sites
        .iter()
        .find(|s| s.site.to_string() == form.site)
        .ok_or_else(|| refuse("site", "site: choose one of the listed sites"))?;
    let address = form.address.trim().to_owned();
    let api_port = port("api_port", "API port", &form.api_port)?;
    let ssh_port = port("ssh_port", "SSH port", &form.ssh_port)?;
    let interval = form
        .interval
        .trim()
        .parse::<u32>()
        .map_err(|_| refuse("interval", "poll interval must be a whole number of seconds"))?;
    validate_new(&address, &form.username, interval).map_err(|m| refuse(field_of(&m), m))?;
    if form.password.is_empty() {
        return Err(refuse("password", "password must not be empty"));
    }
    Ok(Checked {
        site: site.clone(),
        address,
        api_port,
        api_tls: form.api_tls.is_some(),
        ssh_port,
        username: form.username.clone(),
        interval,
    })
}

/// `POST /devices`.
pub(crate) async fn add(
    State(state): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    CsrfForm { auth, form }: CsrfForm<AddForm>,
) -> Response {
    let session = &auth.session;
    let sites = match sites(&state.store, session).await {
        Ok(s) => s,
        Err(e) => return PageError::from(e).into_response(),
    };
    // A site id that is none of the user's sites is another tenant's (or
    // none at all): "not found", as every other tenant's object is.
    if let Ok(site) = form.site.trim().parse::<SiteId>()
        && !sites.iter().any(|s| s.site == site)
    {
        return crate::access::denied(Denied::NotFound, false);
    }
    let values = Values {
        site: form.site.clone(),
        address: form.address.clone(),
        api_port: form.api_port.clone(),
        api_tls: form.api_tls.is_some(),
        ssh_port: form.ssh_port.clone(),
        username: form.username.clone(),
        interval: form.interval.clone(),
    };
    let checked = match check(&form, &sites) {
        Ok(c) => c,
        Err(error) => return form_page(session, &sites, values, Some(error)),
    };
    let scope = match auth.scope_for(checked.site.tenant) {
        Ok(scope) => scope,
        Err(d) => return crate::access::denied(d, false),
    };
    let id = DeviceId::random();
    let sealed = match state
        .vault
        .tenant(&checked.site.tenant.to_string())
        .seal_device_password(&id.to_string(), &form.password)
    {
        Ok(s) => s,
        Err(e) => return PageError::internal("sealing a device password failed", &e).into_response(),
    };
    let device = NewDevice {
        id,
        site: checked.site.site,
        address: checked.address,
        api_port: checked.api_port,
        api_tls: checked.api_tls,
        ssh_port: checked.ssh_port,
        username: checked.username,
        password_sealed: sealed,
        poll_interval_secs: checked.interval,
    };
    match state
        .store
        .add_device(&scope, &device, &Actor::user(&session.username, ip))
        .await
    {
        Ok(id) => {
            tracing::info!(device = %id, address = %device.address, user = %session.username, "console: device added");
            Redirect::to(&format!("/devices/{id}")).into_response()
        }
        Err(StoreError::Conflict(m)) => form_page(
            session,
            &sites,
            values,
            Some(refuse("address", format!("address: {m}"))),
        ),
        Err(StoreError::NotFound(_)) => form_page(
            session,
            &sites,
            values,
            Some(refuse("site", "site: the site no longer exists")),
        ),
        Err(e) => PageError::from(e).into_response(),
    }
}
