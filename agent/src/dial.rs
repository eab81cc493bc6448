//! Dialling the collector's agent port (the connection itself is
//! `outpost_proto::dial`, shared with the command line).
use std::sync::Arc;

use tonic::transport::Channel;

use outpost_proto::MAX_MESSAGE_BYTES;
use outpost_proto::agent_v1::agent_service_client::AgentServiceClient;
pub use outpost_proto::dial::{CollectorAddr, DialError, chain, channel};

/// A gRPC client over a fresh TLS connection.
pub async fn client(
    addr: &CollectorAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Result<AgentServiceClient<Channel>, DialError> {
    Ok(client_on(channel(addr, tls).await?))
}

/// A gRPC client on `channel`.
pub fn client_on(channel: Channel) -> AgentServiceClient<Channel> {
    AgentServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}
