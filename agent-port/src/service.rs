//! The `outpost.agent.v1.AgentService` implementation: dispatches each call
//! to its module, mirroring the agent's: [`super::enroll`], [`super::renew`],
//! [`super::session`]. Their shared state and checks live in [`super::shared`].
use std::pin::Pin;

use futures::Stream;
use outpost_proto::agent_v1::agent_service_server::AgentService;
use outpost_proto::agent_v1::{
    AgentMessage, CollectorMessage, EnrollRequest, EnrollResponse, RenewRequest, RenewResponse, TunnelFrame,
};
use tonic::{Request, Response, Status, Streaming};

pub use super::shared::AgentPortService;

#[tonic::async_trait]
impl AgentService for AgentPortService {
    async fn enroll(&self, request: Request<EnrollRequest>) -> Result<Response<EnrollResponse>, Status> {
        super::enroll::enroll(self, request).await
    }

    async fn renew(&self, request: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        super::renew::renew(self, request).await
    }

    type ConnectStream = Pin<Box<dyn Stream<Item = Result<CollectorMessage, Status>> + Send + 'static>>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        super::session::open(self, request).await
    }

    type TunnelStream = Pin<Box<dyn Stream<Item = Result<TunnelFrame, Status>> + Send + 'static>>;

    async fn tunnel(&self, request: Request<Streaming<TunnelFrame>>) -> Result<Response<Self::TunnelStream>, Status> {
        let agent = super::shared::authenticated(&request)?;
        let remote = super::shared::peer(&request)?.remote;
        let stream = self.tunnels.attach(&agent.scope, remote, request.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
