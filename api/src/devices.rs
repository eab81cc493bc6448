//! `DeviceService`: managed devices, their metrics and configuration history.
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::device_service_server::DeviceService;
use outpost_routeros::export_mask::mask_text;
use outpost_store::audit::{AuditEvent, Details};
use outpost_store::devices::DeviceId;
use outpost_store::members::Role;
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::caller;
use crate::convert;
use crate::status::{denied, optional_id, required_id, store};
use crate::tenants::visible_tenant;

/// Points per series unless asked otherwise, and at most.
const DEFAULT_POINTS: u32 = 500;
const MAX_POINTS: u32 = 10_000;

pub(crate) struct Devices(pub(crate) ApiState);

#[tonic::async_trait]
impl DeviceService for Devices {
    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let tenant = visible_tenant(&who.principal, "tenant_id", &req.tenant_id)?;
        let site: Option<outpost_certs::SiteId> = optional_id("site_id", &req.site_id)?;
        let rows = self
            .0
            .store
            .list_devices(&who.principal.viewer())
            .await
            .map_err(store)?;
        Ok(Response::new(pb::ListDevicesResponse {
            devices: rows
                .into_iter()
                .filter(|d| tenant.is_none_or(|t| t == d.tenant) && site.is_none_or(|s| s == d.site))
                .map(convert::device)
                .collect(),
        }))
    }

    async fn get_device(&self, request: Request<pb::GetDeviceRequest>) -> Result<Response<pb::Device>, Status> {
        let who = caller(&self.0, &request).await?;
        let id: DeviceId = required_id("device_id", &request.get_ref().device_id)?;
        let row = self.0.store.device(&who.principal.viewer(), id).await.map_err(store)?;
        Ok(Response::new(convert::device(row)))
    }

    async fn query_metrics(
        &self,
        request: Request<pb::QueryMetricsRequest>,
    ) -> Result<Response<pb::QueryMetricsResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let id: DeviceId = required_id("device_id", &req.device_id)?;
        if req.metric.is_empty() {
            return Err(Status::invalid_argument("metric is required"));
        }
        if req.to_ms < req.from_ms {
            return Err(Status::invalid_argument("to_ms is before from_ms"));
        }
        let max_points = match req.max_points {
            0 => DEFAULT_POINTS,
            n => n.min(MAX_POINTS),
        };
        let row = self.0.store.device(&who.principal.viewer(), id).await.map_err(store)?;
        let scope = who
            .principal
            .authorize(row.tenant, Role::Viewer)
            .map_err(|d| denied(d, "device"))?;
        let subject = (!req.subject.is_empty()).then_some(req.subject.as_str());
        let series = self
            .0
            .store
            .metric_points(
                &scope,
                &id.to_string(),
                &req.metric,
                subject,
                req.from_ms,
                req.to_ms,
                max_points as usize,
            )
            .await
            .map_err(store)?;
        Ok(Response::new(pb::QueryMetricsResponse {
            series: series.into_iter().map(convert::series).collect(),
        }))
    }

    async fn list_config_versions(
        &self,
        request: Request<pb::ListConfigVersionsRequest>,
    ) -> Result<Response<pb::ListConfigVersionsResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let id: DeviceId = required_id("device_id", &request.get_ref().device_id)?;
        let viewer = who.principal.viewer();
        // An empty history and another tenant's device must not look alike.
        self.0.store.device(&viewer, id).await.map_err(store)?;
        let versions = self.0.store.config_versions(&viewer, id).await.map_err(store)?;
        Ok(Response::new(pb::ListConfigVersionsResponse {
            versions: versions.into_iter().map(convert::config_version).collect(),
        }))
    }

    async fn get_config_version(
        &self,
        request: Request<pb::GetConfigVersionRequest>,
    ) -> Result<Response<pb::ConfigVersionText>, Status> {
        let who = caller(&self.0, &request).await?;
        let req = request.get_ref();
        let id: DeviceId = required_id("device_id", &req.device_id)?;
        let viewer = who.principal.viewer();
        let sealed = self
            .0
            .store
            .config_version(&viewer, id, req.taken_at_ms)
            .await
            .map_err(store)?;
        let (export, diff) = outpost_vault::open_config_version(
            &self.0.vault,
            &sealed.tenant.to_string(),
            &id.to_string(),
            &sealed.sealed_export,
            sealed.sealed_diff.as_deref(),
        )
        .map_err(|e| crate::status::internal("opening a configuration backup", &e))?;
        let (export, diff) = if req.reveal_secrets {
            let scope = who
                .principal
                .authorize(sealed.tenant, Role::Admin)
                .map_err(|d| denied(d, "revealing configuration secrets needs the tenant's admin role"))?;
            let detail = format!(
                "{} revealed the secrets of the configuration taken at {} (through the API)",
                who.principal.username(),
                req.taken_at_ms
            );
            self.0
                .store
                .record_device_event(
                    &scope,
                    id,
                    "config_revealed",
                    &detail,
                    (
                        &who.actor(),
                        AuditEvent::success(Some(scope.tenant()), "device.config_reveal", format!("device {id}"))
                            .with(Details::new().number("taken_at_ms", req.taken_at_ms).text("via", "api")),
                    ),
                )
                .await
                .map_err(store)?;
            tracing::info!(device = %id, taken_at_ms = req.taken_at_ms, user = who.principal.username(), "API: configuration secrets revealed");
            (export, diff)
        } else {
            (mask_text(&export).0, diff.map(|d| mask_text(&d).0))
        };
        Ok(Response::new(pb::ConfigVersionText {
            version: Some(convert::config_version(sealed.version)),
            export,
            diff: diff.unwrap_or_default(),
        }))
    }
}
