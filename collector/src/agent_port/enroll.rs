//! `Enroll`: a single-use token and a CSR become an agent certificate.
use outpost_certs::ca::Validity;
use outpost_certs::token::EnrollmentToken;
use outpost_proto::agent_v1::{EnrollRequest, EnrollResponse};
use tonic::{Request, Response, Status};

use super::service::{AgentPortService, check_version, peer, store_status, truncate};
use crate::store::tokens::EnrollError;

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
    // A read first: a wrong, used or expired token is refused without taking
    // the database's write lock, which `Store::enroll` takes up front.
    if let Err(e) = svc.store.check_enrollment_token(&token).await {
        tracing::warn!(%remote, token = token.id(), error = %e, "enrollment refused");
        return Err(match e {
            EnrollError::Store(ref s) => store_status(s),
            other => Status::permission_denied(other.to_string()),
        });
    }
    let validity = Validity::starting_now(svc.cert_lifetime);
    let enrolled = svc
        .store
        .enroll(
            &token,
            truncate(&req.hostname, 255),
            truncate(&req.agent_version, 64),
            |identity| {
                svc.ca
                    .sign_agent_csr(&req.csr_der, identity, validity)
                    .map_err(|e| e.to_string())
            },
        )
        .await
        .map_err(|e| {
            tracing::warn!(%remote, token = token.id(), error = %e, "enrollment refused");
            match e {
                EnrollError::Store(ref s) => store_status(s),
                EnrollError::Certificate(m) => Status::invalid_argument(m),
                other => Status::permission_denied(other.to_string()),
            }
        })?;
    tracing::info!(
        %remote,
        agent = %enrolled.identity.agent,
        tenant = %enrolled.tenant_name,
        site = %enrolled.site_name,
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
