//! `SessionService`: signing in with a password (the console's sign-in,
//! with its limits), signing out, and who the caller is.
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use crate::ApiState;
use outpost_console::sign_in::SignInError;
use outpost_store::users::SESSION_TTL_MS;

use crate::auth::{Credential, caller, source};
use crate::convert;
use crate::status::store;

pub(crate) struct Sessions(pub(crate) ApiState);

#[tonic::async_trait]
impl SessionService for Sessions {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let ip = source(&request);
        let req = request.into_inner();
        match self
            .0
            .sign_in
            .sign_in(ip, &req.username, req.password, &req.second_factor)
            .await
        {
            Ok(session_token) => Ok(Response::new(pb::LoginResponse {
                session_token,
                expires_at_ms: outpost_store::now_ms() + SESSION_TTL_MS,
            })),
            Err(e @ SignInError::TooMany(_)) => Err(Status::resource_exhausted(e.to_string())),
            Err(e @ SignInError::Busy) => Err(Status::unavailable(e.to_string())),
            Err(e @ SignInError::Invalid) => Err(Status::unauthenticated(e.to_string())),
            Err(e @ (SignInError::SecondFactorRequired | SignInError::EnrolFirst)) => {
                Err(Status::failed_precondition(e.to_string()))
            }
            Err(e @ SignInError::Internal(_)) => Err(Status::unavailable(e.to_string())),
        }
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
