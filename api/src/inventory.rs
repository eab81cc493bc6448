//! `InventoryService`: discovered hosts and what changed about them.
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::inventory_service_server::InventoryService;
use outpost_store::inventory::views::{DEFAULT_HOST_LIMIT, HostQuery};
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::caller;
use crate::convert;
use crate::status::{optional_id, store};
use crate::tenants::visible_tenant;

/// Changes per page unless asked otherwise, and at most.
const DEFAULT_CHANGES: u32 = 1_000;
const MAX_CHANGES: u32 = 10_000;

pub(crate) struct Inventory(pub(crate) ApiState);

#[tonic::async_trait]
impl InventoryService for Inventory {
    async fn list_hosts(
        &self,
        request: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let tenant = visible_tenant(&who.principal, "tenant_id", &req.tenant_id)?;
        let query = HostQuery {
            site: optional_id("site_id", &req.site_id)?,
            include_gone: req.include_gone,
            limit: Some(match req.limit {
                0 => DEFAULT_HOST_LIMIT,
                n => n.min(DEFAULT_HOST_LIMIT),
            }),
            ..HostQuery::default()
        };
        let hosts = self
            .0
            .store
            .list_hosts(&who.principal.viewer(), &query)
            .await
            .map_err(store)?;
        Ok(Response::new(pb::ListHostsResponse {
            hosts: hosts
                .into_iter()
                .filter(|h| tenant.is_none_or(|t| t == h.tenant))
                .map(convert::host)
                .collect(),
        }))
    }

    async fn list_host_changes(
        &self,
        request: Request<pb::ListHostChangesRequest>,
    ) -> Result<Response<pb::ListHostChangesResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let limit = match req.limit {
            0 => DEFAULT_CHANGES,
            n => n.min(MAX_CHANGES),
        };
        let changes = self
            .0
            .store
            .host_changes_after(&who.principal.viewer(), req.after_id.max(0), limit)
            .await
            .map_err(store)?;
        Ok(Response::new(pb::ListHostChangesResponse {
            changes: changes.into_iter().map(convert::host_change).collect(),
        }))
    }
}
