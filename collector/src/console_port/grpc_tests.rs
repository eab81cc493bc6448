//! A gRPC service mounted beside web routes on one console port: a tonic
//! client over TLS with ALPN `h2` reaches it (status and trailers intact), and
//! the web route answers on the same listener.
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use futures::Stream;
use outpost_proto::agent_v1::agent_service_client::AgentServiceClient;
use outpost_proto::agent_v1::agent_service_server::{AgentService, AgentServiceServer};
use outpost_proto::agent_v1::{
    AgentMessage, CollectorMessage, EnrollRequest, EnrollResponse, RenewRequest, RenewResponse, TunnelFrame,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{Limits, Transport, TrustedProxies, serve, tls};

/// Answers `Enroll` with an empty response and `Renew` with an error naming
/// the client address the port handed it.
struct Stub;

#[tonic::async_trait]
impl AgentService for Stub {
    async fn enroll(&self, _: Request<EnrollRequest>) -> Result<Response<EnrollResponse>, Status> {
        Ok(Response::new(EnrollResponse::default()))
    }

    async fn renew(&self, request: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Err(Status::failed_precondition(format!("renew from {client:?}")))
    }

    type ConnectStream = Pin<Box<dyn Stream<Item = Result<CollectorMessage, Status>> + Send + 'static>>;

    async fn connect(&self, _: Request<Streaming<AgentMessage>>) -> Result<Response<Self::ConnectStream>, Status> {
        Err(Status::unimplemented("not here"))
    }

    type TunnelStream = Pin<Box<dyn Stream<Item = Result<TunnelFrame, Status>> + Send + 'static>>;

    async fn tunnel(&self, _: Request<Streaming<TunnelFrame>>) -> Result<Response<Self::TunnelStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

#[tokio::test]
async fn grpc_and_web_routes_share_the_https_port() {
    let ca = outpost_certs::ca::CertificateAuthority::generate("test CA").expect("CA");
    let server = ca.issue_server(&["127.0.0.1".to_owned()]).expect("server certificate");
    let chain = outpost_certs::pem::certificates("chain", server.chain_pem.as_bytes()).expect("chain");
    let key = outpost_certs::pem::private_key("key", server.key_pem.as_bytes()).expect("key");
    let cert = Arc::new(outpost_certs::tls::ServerCertificate::new(ca.cert_der(), chain, key).expect("certificate"));
    let config = tls::server_config(cert).expect("TLS config");

    let grpc = tonic::service::Routes::new(AgentServiceServer::new(Stub)).into_axum_router();
    let app = Router::new().route("/page", get(|| async { "a page" })).merge(grpc);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        Transport::Tls(Arc::new(config)),
        TrustedProxies::default(),
        Limits::for_open_files(None),
        app,
        shutdown.clone(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("root");
    let mut client = rustls::ClientConfig::builder_with_provider(outpost_certs::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let dial = tower::service_fn(move |_: tonic::transport::Uri| {
        let connector = connector.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let tls = connector.connect(name, tcp).await?;
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN chose h2");
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("URI")
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(dial)
        .await
        .expect("a gRPC channel over the console port");
    let mut grpc = AgentServiceClient::new(channel);
    grpc.enroll(EnrollRequest::default()).await.expect("a unary call");
    let status = grpc.renew(RenewRequest::default()).await.expect_err("an error status");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status.message(), "renew from Some(\"127.0.0.1\")");

    // The web route, on the same listener.
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("root");
    let mut web = rustls::ClientConfig::builder_with_provider(outpost_certs::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    web.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(web))
        .connect(name, tcp)
        .await
        .expect("TLS");
    tls.write_all(b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("a page"),
        "{answer}"
    );
    shutdown.cancel();
}
