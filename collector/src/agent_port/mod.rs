//! The agent port: mutual-TLS gRPC for enrollment, renewal and the uplink stream.
//!
//! TLS is terminated here (not by tonic) so the verified client certificate can
//! be turned into an [`AgentScope`](crate::store::AgentScope) once, per
//! connection, and handed to every request as [`listener::PeerInfo`].
pub mod connections;
mod enroll;
pub mod listener;
pub mod live;
mod renew;
pub mod service;
mod session;
pub mod tenancy;
pub mod validate;

use std::sync::Arc;

use outpost_proto::MAX_MESSAGE_BYTES;
use outpost_proto::agent_v1::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

pub use service::AgentPortService;

/// Serves the agent port on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: AgentPortService,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let incoming = ReceiverStream::new(listener::accept_loop(
        listener,
        tls,
        service.connections.clone(),
        shutdown.clone(),
    ));
    let svc = AgentServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}
