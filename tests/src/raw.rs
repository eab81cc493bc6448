//! Talking to the agent port directly, as a well-behaved or a hostile client.
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use outpost_agent::dial::{self, CollectorAddr};
use outpost_proto::agent_v1::agent_service_client::AgentServiceClient;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// A protocol-correct `Hello`, as a test client's first message.
pub fn hello() -> outpost_proto::agent_v1::AgentMessage {
    hello_as("raw-test-client")
}

/// A `Hello` from the outbox instance `instance`.
pub fn hello_as(instance: &str) -> outpost_proto::agent_v1::AgentMessage {
    use outpost_proto::agent_v1::{AgentMessage, Hello, agent_message};
    AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            protocol_version: outpost_proto::PROTOCOL_VERSION,
            agent_version: "test".into(),
            capabilities: vec![],
            first_unacked_seq: 1,
            outbox_depth: 0,
            instance_id: instance.into(),
        })),
    }
}

/// TLS configuration of an enrolled agent (its data directory).
pub fn agent_tls(agent_dir: &Path) -> Arc<rustls::ClientConfig> {
    outpost_agent::credentials::Credentials::load(agent_dir)
        .expect("agent credentials")
        .client_config()
        .expect("tls config")
}

/// TLS configuration that trusts the collector CA and presents no certificate.
pub fn anonymous_tls(collector_dir: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(collector_dir.join("ca.crt")).expect("ca.crt");
    let ca = outpost_certs::pem::certificates("ca.crt", &pem)
        .expect("CA PEM")
        .remove(0);
    Arc::new(outpost_certs::tls::anonymous_client_config(&ca).expect("config"))
}

/// A gRPC client with `tls`.
pub async fn client(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<AgentServiceClient<Channel>, dial::DialError> {
    let addr: CollectorAddr = addr.parse().expect("address");
    dial::client(&addr, tls).await
}

/// A raw HTTP/2 channel with `tls`.
pub async fn channel(addr: &str, tls: Arc<rustls::ClientConfig>) -> Result<Channel, dial::DialError> {
    let addr: CollectorAddr = addr.parse().expect("address");
    dial::channel(&addr, tls).await
}

/// A TCP connection to `addr` from the local address `source`: on loopback,
/// 127.0.0.2, 127.0.0.3, … are distinct sources to the collector's
/// per-source limits.
pub async fn tcp_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// A TLS connection with `tls` to `addr` from `source`, with no HTTP/2 on it.
pub async fn tls_from(
    source: IpAddr,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tcp_from(source, addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await
}

/// A gRPC client over a fresh TLS connection with `tls` to `addr` from `source`.
pub async fn client_from(
    source: IpAddr,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Result<AgentServiceClient<Channel>, tonic::transport::Error> {
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let tls = tls.clone();
        async move { Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls_from(source, addr, tls).await?)) }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a loopback URI")
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(connector)
        .await?;
    Ok(AgentServiceClient::new(channel))
}

/// A codec that sends and receives message bytes as they are, so tests can put
/// arbitrary (malformed, oversized) payloads on the wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
