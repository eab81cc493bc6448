//! `AuditService`: the audit log, for the administrators the console shows it
//! to (MSP administrators: every record; tenant admins: their tenants').
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::audit_service_server::AuditService;
use outpost_store::audit::AuditQuery;
use outpost_store::members::Role;
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::caller;
use crate::status::store;

/// Records per page unless asked otherwise, and at most.
const DEFAULT_RECORDS: u32 = 1_000;
const MAX_RECORDS: u32 = 10_000;

pub(crate) struct Audit(pub(crate) ApiState);

#[tonic::async_trait]
impl AuditService for Audit {
    async fn list_audit_records(
        &self,
        request: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        if !who.principal.has_role_somewhere(Role::Admin) {
            return Err(Status::permission_denied(
                "permission denied: the audit log is for administrators",
            ));
        }
        let req = request.get_ref();
        if req.to_ms < req.from_ms {
            return Err(Status::invalid_argument("to_ms is before from_ms"));
        }
        let limit = match req.limit {
            0 => DEFAULT_RECORDS,
            n => n.min(MAX_RECORDS),
        };
        let query = AuditQuery {
            from_ms: req.from_ms,
            to_ms: if req.to_ms == 0 { i64::MAX } else { req.to_ms },
            tenant: None,
            after_seq: req.after_seq.max(0),
            limit: i64::from(limit),
            newest_first: false,
        };
        let records = self
            .0
            .store
            .audit_records(&who.principal.admin_viewer(), &query)
            .await
            .map_err(store)?;
        Ok(Response::new(pb::ListAuditRecordsResponse {
            records: records
                .into_iter()
                .map(|r| pb::AuditRecord {
                    seq: r.seq,
                    at_ms: r.at_ms,
                    tenant_id: r.tenant_id.unwrap_or_default(),
                    tenant_name: r.tenant_name.unwrap_or_default(),
                    actor: r.actor,
                    source_address: r.source.unwrap_or_default(),
                    action: r.action,
                    object: r.object,
                    outcome: r.outcome,
                    details: r.details,
                    hash: r.hash,
                })
                .collect(),
        }))
    }
}
