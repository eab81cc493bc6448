//! The `outpost.agent.v1.AgentService` implementation: dispatches each call
//! to its module, mirroring the agent's: [`super::enroll`], [`super::renew`],
//! [`super::session`]. Their shared state and checks live in [`super::shared`].
use std::pin::Pin;

use futures::Stream;
use outpost_proto::agent_v1::agent_service_server::AgentService;
use outpost_proto::agent_v1::{
    AgentMessage, CollectorMessage, EnrollRequest, EnrollResponse, RenewRequest, RenewResponse, TunnelFrame,
};
use outpost_proto::tunnel_wire::{self, Handler, StreamRoute};
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

    /// Never reached: [`tunnel_route`] answers this method's path in front
    /// of the generated service.
    async fn tunnel(&self, _: Request<Streaming<TunnelFrame>>) -> Result<Response<Self::TunnelStream>, Status> {
        Err(Status::internal("tunnel streams are answered by the tunnel route"))
    }
}

/// The path of `AgentService.Tunnel`.
const TUNNEL_PATH: &str = "/outpost.agent.v1.AgentService/Tunnel";

/// `service` with its `Tunnel` streams read and written without copying
/// their bytes ([`outpost_proto::tunnel_wire`]).
pub(crate) fn tunnel_route<S>(inner: S, service: AgentPortService) -> StreamRoute<S> {
    let handler: Handler = std::sync::Arc::new(move |request| {
        let service = service.clone();
        Box::pin(async move { tunnel_wire::server_response(tunnel(&service, request).await) })
    });
    StreamRoute::new(inner, TUNNEL_PATH, handler)
}

async fn tunnel(
    service: &AgentPortService,
    request: http::Request<tonic::body::Body>,
) -> Result<impl Stream<Item = Result<TunnelFrame, Status>> + Send + 'static, Status> {
    let (request, inbound) = tunnel_wire::server_request(request);
    let agent = super::shared::authenticated(&request)?;
    let remote = super::shared::peer(&request)?.remote;
    service.tunnels.attach(&agent.scope, remote, inbound).await
}
