//! `outpost-agent enroll`: trade a token and a CSR for a certificate.
//!
//! The key pair is generated here and never leaves the machine. The collector is
//! pinned by the CA fingerprint inside the token: the TLS handshake fails unless
//! the collector presents that CA, so a token cannot be phished by another server.
//!
//! Enrolling a data directory that already holds an identity is a
//! re-enrollment. When the stored CA is the token's, the agent sends its
//! certificate (even an expired one) and signs the CSR with the same key: with
//! a token for the same tenant and site it keeps its id, and the collector stops
//! accepting the old certificate. The outbox is kept when the new identity is
//! for the same tenant and site, and moved aside (kept, never sent) otherwise.
use std::path::Path;
use std::sync::Arc;

use outpost_certs::Fingerprint;
use outpost_certs::token::{EnrollmentToken, ParseTokenError};
use outpost_proto::PROTOCOL_VERSION;
use outpost_proto::agent_v1::EnrollRequest;

use crate::config::AgentConfig;
use crate::credentials::{Credentials, CredentialsError};
use crate::dial::{self, CollectorAddr};
use crate::outbox::{OutboxOptions, OutboxOwner, OwnerMatch};

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The token text is malformed.
    #[error("invalid enrollment token: {0}")]
    Token(#[from] ParseTokenError),
    /// The collector could not be reached or its certificate did not match the pin.
    #[error("{0}")]
    Connect(String),
    /// The collector refused the enrollment.
    #[error("the collector refused the enrollment: {0}")]
    Refused(String),
    /// The collector answered with something inconsistent.
    #[error("the collector's answer is invalid: {0}")]
    BadResponse(String),
    /// Files could not be written.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Other I/O.
    #[error("{0}")]
    Io(String),
}

/// The result of a successful enrollment.
#[derive(Debug)]
pub struct Enrollment {
    /// Agent id.
    pub agent_id: String,
    /// Tenant name.
    pub tenant: String,
    /// Site name.
    pub site: String,
    /// Certificate expiry, Unix seconds.
    pub not_after: i64,
    /// The agent proved its previous identity and kept its id.
    pub kept_id: bool,
    /// Where an outbox of another tenant, site or collector (or of unknown
    /// owner) was moved; never sent.
    pub outbox_set_aside: Option<std::path::PathBuf>,
}

/// Enrolls into `data_dir`, writing `ca.crt`, `identity.pem` and `agent.toml`.
pub async fn enroll(collector: &CollectorAddr, token: &str, data_dir: &Path) -> Result<Enrollment, EnrollError> {
    let token: EnrollmentToken = token.parse()?;
    outpost_certs::files::create_private_dir(data_dir)
        .map_err(|e| EnrollError::Io(format!("creating {}: {e}", data_dir.display())))?;
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let previous = previous_credentials(data_dir, &token);
    // Read the outbox's owner now: this also refuses to go on while a running
    // agent holds the outbox, before anything is changed.
    let existing = existing_outbox(data_dir, previous.as_ref())?;
    let request = match &previous {
        Some(p) => p.csr_with_same_key(&hostname)?,
        None => pending_key(data_dir, &token, &hostname)?,
    };
    let enroll_request = EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        token: token.to_string(),
        csr_der: request.csr_der.clone(),
        hostname,
        agent_version: crate::VERSION.to_owned(),
        previous_certificate_der: previous.as_ref().map(|p| p.chain[0].to_vec()).unwrap_or_default(),
    };
    let tls = Arc::new(
        outpost_certs::tls::enrollment_client_config(token.ca_fingerprint())
            .map_err(|e| EnrollError::Io(e.to_string()))?,
    );
    // The same request again after a lost answer: the collector hands back the
    // certificate it already issued for this token and key.
    let mut attempt = 1;
    let response = loop {
        match send_enroll(collector, tls.clone(), enroll_request.clone()).await {
            Err(EnrollError::Connect(reason)) if attempt < SEND_ATTEMPTS => {
                tracing::warn!(%reason, attempt, "enrollment did not complete; retrying with the same key");
                tokio::time::sleep(RETRY_PAUSE * attempt).await;
                attempt += 1;
            }
            Err(refused @ EnrollError::Refused(_)) => {
                // The key cannot help a refused token; start afresh next time.
                remove_pending_key(data_dir);
                return Err(refused);
            }
            other => break other?,
        }
    };

    if Fingerprint::of_der(&response.ca_certificate_der) != token.ca_fingerprint() {
        return Err(EnrollError::BadResponse(
            "the returned CA does not match the token's fingerprint".into(),
        ));
    }
    if response.certificate_chain_der.is_empty() {
        return Err(EnrollError::BadResponse("no certificate returned".into()));
    }
    let expected_agent = response.agent_id.clone();
    let creds = Credentials::store(
        data_dir,
        &request.key_pem,
        &response.certificate_chain_der,
        Some(&response.ca_certificate_der),
        |identity| {
            (identity.agent.to_string() == expected_agent)
                .then_some(())
                .ok_or_else(|| "the certificate names a different agent than the response".to_owned())
        },
    )?;
    remove_pending_key(data_dir);
    let config = match AgentConfig::load(data_dir) {
        Ok(mut existing) => {
            existing.collector = collector.to_string();
            existing
        }
        Err(_) => AgentConfig::new(collector),
    };
    config
        .save(data_dir)
        .map_err(|e| EnrollError::Io(format!("writing agent.toml: {e}")))?;
    let outbox_set_aside = match existing {
        None => None,
        Some(stored) => settle_outbox(data_dir, stored, &crate::outbox_owner(&creds), &config)?,
    };
    Ok(Enrollment {
        agent_id: response.agent_id,
        tenant: response.tenant,
        site: response.site,
        not_after: creds.not_after,
        kept_id: previous.is_some_and(|p| p.identity == creds.identity),
        outbox_set_aside,
    })
}

/// What an outbox already in the data directory holds, as far as enrollment
/// cares: whose records they are (the recorded owner, else the identity still
/// in the directory), and whether there are any.
struct ExistingOutbox {
    owner: Option<OutboxOwner>,
    /// `owner` is recorded in the outbox (not inferred from the identity).
    recorded: bool,
    depth: u64,
}

fn existing_outbox(data_dir: &Path, previous: Option<&Credentials>) -> Result<Option<ExistingOutbox>, EnrollError> {
    if !data_dir.join(crate::OUTBOX_FILE).exists() {
        return Ok(None);
    }
    let options = AgentConfig::load(data_dir)
        .map(|c| c.outbox_options())
        .unwrap_or_else(|_| OutboxOptions::new(1));
    let outbox = crate::open_outbox(data_dir, &options).map_err(|e| {
        EnrollError::Io(format!(
            "{e:#} (is the agent running? stop it before enrolling this data directory again)"
        ))
    })?;
    let read = |e: crate::outbox::OutboxError| EnrollError::Io(format!("reading the outbox: {e}"));
    let recorded = outbox.owner().map_err(read)?;
    let depth = outbox.depth().map_err(read)?;
    Ok(Some(ExistingOutbox {
        recorded: recorded.is_some(),
        owner: recorded.or_else(|| previous.map(crate::outbox_owner)),
        depth,
    }))
}

/// Keeps the outbox for the same tenant, site and collector (recording the new
/// owner), and otherwise moves it aside, never to be sent. Records whose owner
/// cannot be known are set aside too.
fn settle_outbox(
    data_dir: &Path,
    stored: ExistingOutbox,
    wanted: &OutboxOwner,
    config: &AgentConfig,
) -> Result<Option<std::path::PathBuf>, EnrollError> {
    let why = match OwnerMatch::of(stored.owner.as_ref(), wanted) {
        OwnerMatch::Foreign { previous } => Some(format!(
            "its records belong to {previous}, but this data directory is now enrolled as {wanted}"
        )),
        OwnerMatch::Unowned if stored.depth > 0 => Some(format!(
            "its {} records have no known owner, and this data directory is now enrolled as {wanted}",
            stored.depth
        )),
        _ => None,
    };
    let open = || crate::open_outbox(data_dir, &config.outbox_options()).map_err(|e| EnrollError::Io(format!("{e:#}")));
    let record = |outbox: &crate::outbox::Outbox, owner: &OutboxOwner| {
        outbox
            .set_owner(owner)
            .map_err(|e| EnrollError::Io(format!("recording the outbox owner: {e}")))
    };
    if let Some(why) = why {
        // The set-aside file is named after its owner: record the one the
        // identity told us about, if the outbox had none.
        if let (false, Some(owner)) = (stored.recorded, stored.owner.as_ref()) {
            record(&open()?, owner)?;
        }
        return crate::outbox::set_aside(data_dir, &why)
            .map_err(|e| EnrollError::Io(format!("setting the old outbox aside: {e}")));
    }
    let outbox =
        crate::open_outbox(data_dir, &config.outbox_options()).map_err(|e| EnrollError::Io(format!("{e:#}")))?;
    outbox
        .set_owner(wanted)
        .map_err(|e| EnrollError::Io(format!("recording the outbox owner: {e}")))?;
    Ok(None)
}

/// Attempts at one `Enroll` within one `enroll` command.
const SEND_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; it grows with each.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
/// The key of an enrollment in progress, written before the CSR is sent.
pub const PENDING_KEY_FILE: &str = "enroll-pending.pem";

/// Dials the collector and sends one `Enroll`.
async fn send_enroll(
    collector: &CollectorAddr,
    tls: Arc<rustls::ClientConfig>,
    request: EnrollRequest,
) -> Result<outpost_proto::agent_v1::EnrollResponse, EnrollError> {
    let mut client = dial::client(collector, tls)
        .await
        .map_err(|e| EnrollError::Connect(dial::chain(&e)))?;
    let response = client.enroll(request).await.map_err(|status| match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => EnrollError::Connect(format!(
            "cannot enroll with the collector at {collector}: {}{}",
            status.message(),
            std::error::Error::source(&status)
                .map(|s| format!(": {}", dial::chain(s)))
                .unwrap_or_default()
        )),
        _ => EnrollError::Refused(status.message().to_owned()),
    })?;
    Ok(response.into_inner())
}

/// The key for a first enrollment with `token`: the one an earlier, unfinished
/// attempt with the same token wrote (so the collector recognises the retry
/// and returns the certificate it already signed), or a new one, written
/// (0600) before anything is sent.
fn pending_key(
    data_dir: &Path,
    token: &EnrollmentToken,
    hostname: &str,
) -> Result<outpost_certs::keys::KeyAndCsr, EnrollError> {
    let path = data_dir.join(PENDING_KEY_FILE);
    let header = format!("# outpost enrollment in progress, token {}\n", token.id());
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(pem) = text.strip_prefix(&header)
        && let Ok(key) = outpost_certs::pem::private_key(PENDING_KEY_FILE, pem.as_bytes())
    {
        tracing::info!("resuming an unfinished enrollment with the same token and key");
        return outpost_certs::keys::csr_for_key(&key, hostname)
            .map_err(|e| EnrollError::Io(format!("reading {PENDING_KEY_FILE}: {e}")));
    }
    let fresh = outpost_certs::keys::generate_key_and_csr(hostname)
        .map_err(|e| EnrollError::Io(format!("generating the key pair: {e}")))?;
    outpost_certs::files::write_private(&path, format!("{header}{}", fresh.key_pem).as_bytes())
        .map_err(|source| CredentialsError::Write { path, source })?;
    Ok(fresh)
}

fn remove_pending_key(data_dir: &Path) {
    match std::fs::remove_file(data_dir.join(PENDING_KEY_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(%error, "could not remove {PENDING_KEY_FILE}"),
    }
}

/// The identity this data directory already holds, when it is worth proving
/// to the collector the token pins (same CA); expired certificates included.
fn previous_credentials(data_dir: &Path, token: &EnrollmentToken) -> Option<Credentials> {
    if !Credentials::exist(data_dir) {
        return None;
    }
    match Credentials::load(data_dir) {
        Ok(c) if c.ca_fingerprint() == token.ca_fingerprint() => Some(c),
        Ok(c) => {
            tracing::info!(
                agent = %c.identity.agent,
                "the existing identity belongs to another collector; enrolling under a new agent id"
            );
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the existing identity cannot be read; enrolling under a new agent id");
            None
        }
    }
}
