//! `SessionService`: who the caller is. (Signing in with a password is the
//! console's sign-in, shared with the command line.)
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::{Credential, caller};
use crate::convert;
use crate::status::store;

pub(crate) struct Sessions(pub(crate) ApiState);

#[tonic::async_trait]
impl SessionService for Sessions {
    async fn login(&self, _request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        Err(Status::unimplemented(
            "signing in with a password through the API is not available on this collector; use an API token",
        ))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        if let Credential::Session(token) = &who.credential {
            self.0.store.logout(token, &who.actor()).await.map_err(store)?;
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn who_am_i(&self, request: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let who = caller(&self.0, &request).await?;
        let tenants = self.0.store.list_tenants(&who.principal).await.map_err(store)?;
        let memberships = tenants
            .into_iter()
            .filter_map(|t| {
                let role = who.principal.role_in(t.id)?;
                Some(pb::Membership {
                    tenant_id: t.id.to_string(),
                    tenant_name: t.name,
                    role: convert::role(role),
                })
            })
            .collect();
        let (credential, token_scope, token_expires_at_ms) = match &who.credential {
            Credential::Session(_) => ("session", String::new(), 0),
            Credential::Token(t) => ("api_token", t.scope.as_str().to_owned(), t.expires_at_ms),
        };
        Ok(Response::new(pb::WhoAmIResponse {
            username: who.principal.username().to_owned(),
            msp_admin: who.principal.is_msp_admin(),
            memberships,
            credential: credential.to_owned(),
            token_scope,
            token_expires_at_ms,
        }))
    }
}
