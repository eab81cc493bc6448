//! `ApiTokenService`: tokens for programs. Creating one needs the tenant's
//! admin role (an MSP-wide token: an MSP administrator's own session or
//! admin token), and no token may carry more than its creator holds.
use outpost_certs::TenantId;
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::api_token_service_server::ApiTokenService;
use outpost_store::api_tokens::{DEFAULT_TTL_MS, NewApiToken, TokenBinding, TokenScope};
use outpost_store::members::{Principal, Role};
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::caller;
use crate::convert;
use crate::status::{denied, required_id, store};
use crate::tenants::visible_tenant;

pub(crate) struct Tokens(pub(crate) ApiState);

#[tonic::async_trait]
impl ApiTokenService for Tokens {
    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let scope: TokenScope = req.scope.parse().map_err(Status::invalid_argument)?;
        let ttl_ms = match req.valid_for_secs {
            0 => DEFAULT_TTL_MS,
            s if s < 0 => return Err(Status::invalid_argument("valid_for_secs must be positive")),
            s => s.saturating_mul(1_000),
        };
        let binding = if req.tenant_id.is_empty() {
            let admin = who.principal.admin_scope().ok_or_else(|| {
                Status::permission_denied("permission denied: MSP-wide tokens are made by MSP administrators")
            })?;
            TokenBinding::MspWide(*admin)
        } else {
            let tenant: TenantId = required_id("tenant_id", &req.tenant_id)?;
            let tenant_scope = who
                .principal
                .authorize(tenant, Role::Admin)
                .map_err(|d| denied(d, "creating an API token needs the tenant's admin role"))?;
            TokenBinding::Tenant(tenant_scope)
        };
        let (row, secret) = self
            .0
            .store
            .create_api_token(
                &NewApiToken {
                    name: &req.name,
                    scope,
                    binding,
                    created_by: who.principal.user_id(),
                    ttl_ms,
                },
                &who.actor(),
            )
            .await
            .map_err(store)?;
        tracing::info!(token = %row.id, by = who.principal.username(), scope = %scope, "API: API token created");
        Ok(Response::new(pb::CreateApiTokenResponse {
            token: Some(convert::api_token(row)),
            secret,
        }))
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let tenant = visible_tenant(&who.principal, "tenant_id", &request.get_ref().tenant_id)?;
        let rows = match (tenant, who.principal.admin_scope()) {
            (None, Some(admin)) => self.0.store.all_api_tokens(admin).await.map_err(store)?,
            (Some(t), _) => {
                let scope = who
                    .principal
                    .authorize(t, Role::Admin)
                    .map_err(|d| denied(d, "listing API tokens needs the tenant's admin role"))?;
                self.0.store.tenant_api_tokens(&scope).await.map_err(store)?
            }
            (None, None) => {
                let mut rows = Vec::new();
                for (t, role) in who.principal.memberships() {
                    if *role == Role::Admin {
                        let scope = who
                            .principal
                            .authorize(*t, Role::Admin)
                            .map_err(|d| denied(d, "tenant"))?;
                        rows.extend(self.0.store.tenant_api_tokens(&scope).await.map_err(store)?);
                    }
                }
                rows
            }
        };
        Ok(Response::new(pb::ListApiTokensResponse {
            tokens: rows.into_iter().map(convert::api_token).collect(),
        }))
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let id = request.get_ref().token_id.as_str();
        if let Some(admin) = who.principal.admin_scope() {
            self.0
                .store
                .revoke_api_token(TokenBinding::MspWide(*admin), id, &who.actor())
                .await
                .map_err(store)?;
        } else {
            // The token's tenant decides: a token of no tenant the caller is
            // a member of does not exist for them; one of their tenant where
            // they are not admin is denied.
            let tenant = token_tenant(&self.0, &who.principal, id)
                .await?
                .ok_or_else(|| Status::not_found(format!("API token {id} not found")))?;
            let scope = who
                .principal
                .authorize(tenant, Role::Admin)
                .map_err(|d| denied(d, "revoking an API token needs the tenant's admin role"))?;
            self.0
                .store
                .revoke_api_token(TokenBinding::Tenant(scope), id, &who.actor())
                .await
                .map_err(store)?;
        }
        tracing::info!(token = id, by = who.principal.username(), "API: API token revoked");
        Ok(Response::new(pb::RevokeApiTokenResponse {}))
    }
}

/// The tenant of the API token `id` among the tenants `principal` is a
/// member of (any role), if it is one of theirs.
async fn token_tenant(state: &ApiState, principal: &Principal, id: &str) -> Result<Option<TenantId>, Status> {
    for (tenant, _) in principal.memberships() {
        let scope = principal
            .authorize(*tenant, Role::Viewer)
            .map_err(|d| denied(d, "tenant"))?;
        if state
            .store
            .tenant_api_tokens(&scope)
            .await
            .map_err(store)?
            .iter()
            .any(|t| t.id == id)
        {
            return Ok(Some(*tenant));
        }
    }
    Ok(None)
}
