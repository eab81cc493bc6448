//! `AgentService`: agents, their revocation, and enrollment tokens.
use std::time::Duration;

use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, SiteId};
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::agent_service_server::AgentService;
use outpost_store::members::Role;
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::caller;
use crate::convert;
use crate::status::{denied, optional_id, required_id, store};
use crate::tenants::visible_tenant;

/// An enrollment token's lifetime unless asked otherwise (the collector's
/// `token create` default).
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest an enrollment token may live.
const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub(crate) struct Agents(pub(crate) ApiState);

#[tonic::async_trait]
impl AgentService for Agents {
    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let tenant = visible_tenant(&who.principal, "tenant_id", &req.tenant_id)?;
        let site: Option<SiteId> = optional_id("site_id", &req.site_id)?;
        let agents = self.0.store.list_agents(&who.principal.viewer()).await.map_err(store)?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents: agents
                .into_iter()
                .filter(|a| tenant.is_none_or(|t| t == a.tenant) && site.is_none_or(|s| s == a.site))
                .map(convert::agent)
                .collect(),
        }))
    }

    async fn revoke_agent(
        &self,
        request: Request<pb::RevokeAgentRequest>,
    ) -> Result<Response<pb::RevokeAgentResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let agent: AgentId = required_id("agent_id", &request.get_ref().agent_id)?;
        let found = self
            .0
            .store
            .list_agents(&who.principal.viewer())
            .await
            .map_err(store)?
            .into_iter()
            .find(|a| a.agent == agent)
            .ok_or_else(|| Status::not_found(format!("agent {agent} not found")))?;
        let scope = who
            .principal
            .authorize(found.tenant, Role::Admin)
            .map_err(|d| denied(d, "revoking an agent needs the tenant's admin role"))?;
        let revoked = self
            .0
            .store
            .revoke_agent_in(&scope, agent, &who.actor())
            .await
            .map_err(store)?;
        if revoked {
            tracing::info!(%agent, by = who.principal.username(), "API: agent revoked");
        }
        Ok(Response::new(pb::RevokeAgentResponse {}))
    }

    async fn create_enrollment_token(
        &self,
        request: Request<pb::CreateEnrollmentTokenRequest>,
    ) -> Result<Response<pb::CreateEnrollmentTokenResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let site: SiteId = required_id("site_id", &req.site_id)?;
        let ttl = match req.valid_for_secs {
            0 => DEFAULT_TOKEN_TTL,
            s if s < 0 || s as u64 > MAX_TOKEN_TTL.as_secs() => {
                return Err(Status::invalid_argument(format!(
                    "valid_for_secs must be between 1 and {}",
                    MAX_TOKEN_TTL.as_secs()
                )));
            }
            s => Duration::from_secs(s as u64),
        };
        let found = self
            .0
            .store
            .sites(&who.principal.viewer())
            .await
            .map_err(store)?
            .into_iter()
            .find(|s| s.site == site)
            .ok_or_else(|| Status::not_found(format!("site {site} not found")))?;
        let scope = who
            .principal
            .authorize(found.tenant, Role::Admin)
            .map_err(|d| denied(d, "creating an enrollment token needs the tenant's admin role"))?;
        let token = EnrollmentToken::generate(self.0.ca_fingerprint);
        let expires_at_ms = self
            .0
            .store
            .create_site_token(&scope, site, &token, ttl, &who.actor())
            .await
            .map_err(store)?;
        tracing::info!(%site, by = who.principal.username(), "API: enrollment token created");
        Ok(Response::new(pb::CreateEnrollmentTokenResponse {
            token: token.to_string(),
            expires_at_ms,
        }))
    }
}
