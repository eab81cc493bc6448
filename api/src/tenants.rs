//! `TenantService`: the tenants and sites the caller may see.
use outpost_certs::TenantId;
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::tenant_service_server::TenantService;
use outpost_store::members::Principal;
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::caller;
use crate::convert;
use crate::status::{optional_id, store};

pub(crate) struct Tenants(pub(crate) ApiState);

/// A tenant named in a request, which the caller must be able to see (else
/// it does not exist for them).
pub(crate) fn visible_tenant(principal: &Principal, field: &str, value: &str) -> Result<Option<TenantId>, Status> {
    let tenant: Option<TenantId> = optional_id(field, value)?;
    match tenant {
        Some(t) if principal.role_in(t).is_none() => Err(Status::not_found(format!("tenant {t} not found"))),
        other => Ok(other),
    }
}

#[tonic::async_trait]
impl TenantService for Tenants {
    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let tenants = self.0.store.list_tenants(&who.principal).await.map_err(store)?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants
                .into_iter()
                .map(|t| pb::Tenant {
                    id: t.id.to_string(),
                    name: t.name,
                })
                .collect(),
        }))
    }

    async fn list_sites(
        &self,
        request: Request<pb::ListSitesRequest>,
    ) -> Result<Response<pb::ListSitesResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let tenant = visible_tenant(&who.principal, "tenant_id", &request.get_ref().tenant_id)?;
        let sites = self.0.store.sites(&who.principal.viewer()).await.map_err(store)?;
        Ok(Response::new(pb::ListSitesResponse {
            sites: sites
                .into_iter()
                .filter(|s| tenant.is_none_or(|t| t == s.tenant))
                .map(convert::site)
                .collect(),
        }))
    }
}
