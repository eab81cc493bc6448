//! `Enroll`: a single-use token and a CSR become an agent certificate.
//!
//! A data directory that already holds an identity sends its certificate
//! along (`previous_certificate_der`) and signs the CSR with that
//! certificate's key. When the certificate was issued by this CA (expired or
//! not) and names the token's own tenant and site, the agent keeps its id and
//! its earlier certificates stop working; otherwise it gets a new id.
use outpost_certs::AgentCertificate;
use outpost_certs::ca::{Validity, certificate_public_key, csr_public_key};
use outpost_certs::token::EnrollmentToken;
use outpost_proto::agent_v1::{EnrollRequest, EnrollResponse};
use outpost_store::audit::{Actor, AuditEvent, Details};
use outpost_store::tokens::{EnrollAsk, EnrollError};
use sha2::{Digest as _, Sha256};
use tonic::{Request, Response, Status};

use super::shared::{AgentPortService, check_version, peer, store_status, truncate};

/// `Enroll`: the only call allowed without a client certificate.
pub(super) async fn enroll(
    svc: &AgentPortService,
    request: Request<EnrollRequest>,
) -> Result<Response<EnrollResponse>, Status> {
    let remote = peer(&request)?.remote;
    let req = request.into_inner();
    let version = check_version(req.protocol_version)?;
    let token: EnrollmentToken = req
        .token
        .parse()
        .map_err(|e| Status::invalid_argument(format!("malformed enrollment token: {e}")))?;
    if token.ca_fingerprint() != svc.ca.fingerprint() {
        return Err(Status::failed_precondition(
            "the enrollment token was issued by a different collector",
        ));
    }
    // The token is judged first, whatever the CSR holds: a flood of bad tokens
    // costs one read each. The key (when the CSR is valid) lets a retry through.
    let csr_key = csr_public_key(&req.csr_der).map_err(|e| Status::invalid_argument(e.to_string()));
    let csr_key_sha256 = csr_key
        .as_ref()
        .map(|k| hex::encode(Sha256::digest(k)))
        .unwrap_or_default();
    // A read first: a wrong, used or expired token is refused without taking
    // the database's write lock, which `Store::enroll` takes up front.
    if let Err(e) = svc.store.check_enrollment_token(&token, &csr_key_sha256).await {
        tracing::warn!(%remote, token = token.id(), error = %e, "enrollment refused");
        audit_refusal(svc, &token, remote, &e).await;
        return Err(match e {
            EnrollError::Store(ref s) => store_status(s),
            other => Status::permission_denied(other.to_string()),
        });
    }
    let csr_key = csr_key?;
    let previous = previous_identity(svc, &req.previous_certificate_der, &csr_key, remote);
    let ask = EnrollAsk {
        hostname: truncate(&req.hostname, 255),
        version: truncate(&req.agent_version, 64),
        csr_key_sha256,
        previous,
    };
    let validity = Validity::starting_now(svc.cert_lifetime);
    let enrolled = svc
        .store
        .enroll(&token, &ask, Some(remote), |identity| {
            svc.ca
                .sign_agent_csr(&req.csr_der, identity, validity)
                .map_err(|e| e.to_string())
        })
        .await;
    let enrolled = match enrolled {
        Ok(enrolled) => enrolled,
        Err(e) => {
            tracing::warn!(%remote, token = token.id(), error = %e, "enrollment refused");
            audit_refusal(svc, &token, remote, &e).await;
            return Err(match e {
                EnrollError::Store(ref s) => store_status(s),
                EnrollError::Certificate(m) => Status::invalid_argument(m),
                other => Status::permission_denied(other.to_string()),
            });
        }
    };
    tracing::info!(
        %remote,
        agent = %enrolled.identity.agent,
        tenant = %enrolled.tenant_name,
        site = %enrolled.site_name,
        kept_id = enrolled.kept_id,
        retried = enrolled.retried,
        "agent enrolled"
    );
    Ok(Response::new(EnrollResponse {
        protocol_version: version,
        agent_id: enrolled.identity.agent.to_string(),
        tenant: enrolled.tenant_name,
        site: enrolled.site_name,
        certificate_chain_der: vec![enrolled.certificate.der, svc.ca.cert_der().to_vec()],
        ca_certificate_der: svc.ca.cert_der().to_vec(),
    }))
}

/// Records a refused token (`enroll.refused`) in the audit log, after the
/// refusal: nothing else changed, so there is no transaction to share. Calls
/// are bounded by the `Enroll` rate limit per source. A database failure is
/// not a refusal of the token and is not recorded.
async fn audit_refusal(svc: &AgentPortService, token: &EnrollmentToken, remote: std::net::SocketAddr, e: &EnrollError) {
    if matches!(e, EnrollError::Store(_)) {
        return;
    }
    let actor = Actor::agent(UNENROLLED, Some(remote));
    let event = AuditEvent::failure(None, "enroll.refused", format!("token {}", token.id()))
        .with(Details::new().text("reason", e.to_string()));
    if let Err(error) = svc.store.record_audit(&actor, event).await {
        tracing::error!(%remote, token = token.id(), %error, "recording a refused enrollment in the audit log failed");
    }
}

/// The actor of a refused enrollment: no agent identity exists yet.
const UNENROLLED: &str = "agent (not enrolled)";

/// The identity the agent proves it held: a certificate this CA issued, whose
/// key signed the CSR. Anything short of that is logged and ignored (the agent
/// then enrolls under a new id), never trusted.
fn previous_identity(
    svc: &AgentPortService,
    der: &[u8],
    csr_key: &[u8],
    remote: std::net::SocketAddr,
) -> Option<outpost_certs::AgentIdentity> {
    if der.is_empty() {
        return None;
    }
    let checked = (|| {
        outpost_certs::tls::verify_agent_certificate_issued(svc.ca.cert_der(), der).map_err(|e| e.to_string())?;
        let key = certificate_public_key(der).map_err(|e| e.to_string())?;
        if key != csr_key {
            return Err("the CSR is not signed by the previous certificate's key".to_owned());
        }
        AgentCertificate::parse(der).map_err(|e| e.to_string())
    })();
    match checked {
        Ok(cert) => Some(cert.identity),
        Err(reason) => {
            tracing::warn!(%remote, %reason, "previous certificate not accepted; enrolling under a new agent id");
            None
        }
    }
}
