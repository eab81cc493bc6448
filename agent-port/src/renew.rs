//! `Renew`: a fresh certificate, authenticated by the current one.
//!
//! Only the agent's current certificate, or the one before it until the
//! current one is first used, may renew: a certificate that was replaced
//! (renewed, or re-enrolled under the same id) cannot renew forever.
use outpost_certs::ca::Validity;
use outpost_proto::agent_v1::{RenewRequest, RenewResponse};
use tonic::{Request, Response, Status};

use super::shared::{AgentPortService, authenticated, check_version, store_status};

const REFUSED: &str = "this agent is revoked, or this certificate has been replaced by a newer one";

/// `Renew`: a fresh certificate for the agent the current one names.
pub(super) async fn renew(
    svc: &AgentPortService,
    request: Request<RenewRequest>,
) -> Result<Response<RenewResponse>, Status> {
    let agent = authenticated(&request)?;
    let scope = agent.scope;
    let req = request.into_inner();
    let version = check_version(req.protocol_version)?;
    if !svc
        .store
        .agent_may_renew(&scope, &agent.serial)
        .await
        .map_err(|e| store_status(&e))?
    {
        tracing::warn!(agent = %scope.agent(), serial = %agent.serial, "renewal refused: revoked or replaced certificate");
        return Err(Status::permission_denied(REFUSED));
    }
    let cert = svc
        .ca
        .sign_agent_csr(
            &req.csr_der,
            scope.identity(),
            Validity::starting_now(svc.cert_lifetime),
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    if !svc
        .store
        .agent_renewed(&scope, &agent.serial, &cert)
        .await
        .map_err(|e| store_status(&e))?
    {
        return Err(Status::permission_denied(REFUSED));
    }
    tracing::info!(agent = %scope.agent(), not_after = cert.not_after, "agent certificate renewed");
    Ok(Response::new(RenewResponse {
        protocol_version: version,
        certificate_chain_der: vec![cert.der, svc.ca.cert_der().to_vec()],
    }))
}
