//! `Renew`: a fresh certificate, authenticated by the current one.
use outpost_certs::ca::Validity;
use outpost_proto::agent_v1::{RenewRequest, RenewResponse};
use tonic::{Request, Response, Status};

use super::service::{AgentPortService, authenticated, check_version, store_status};

/// `Renew`: a fresh certificate for the agent the current one names.
pub(super) async fn renew(
    svc: &AgentPortService,
    request: Request<RenewRequest>,
) -> Result<Response<RenewResponse>, Status> {
    let scope = authenticated(&request)?.scope;
    let req = request.into_inner();
    let version = check_version(req.protocol_version)?;
    if svc.store.agent_is_revoked(&scope).await.map_err(|e| store_status(&e))? {
        return Err(Status::permission_denied("this agent has been revoked"));
    }
    let cert = svc
        .ca
        .sign_agent_csr(
            &req.csr_der,
            scope.identity(),
            Validity::starting_now(svc.cert_lifetime),
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    svc.store
        .agent_renewed(&scope, &cert)
        .await
        .map_err(|e| store_status(&e))?;
    tracing::info!(agent = %scope.agent(), not_after = cert.not_after, "agent certificate renewed");
    Ok(Response::new(RenewResponse {
        protocol_version: version,
        certificate_chain_der: vec![cert.der, svc.ca.cert_der().to_vec()],
    }))
}
