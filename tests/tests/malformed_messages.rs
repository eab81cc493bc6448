//! Malformed and oversized messages get a clear gRPC status; the collector
//! keeps serving everyone else.
use bytes::Bytes;
use http::uri::PathAndQuery;

use outpost_proto::agent_v1::AgentMessage;
use outpost_tests::collector_with_agent;
use outpost_tests::raw::{RawCodec, agent_tls, channel, client, hello};
use prost::Message as _;

fn hello_bytes() -> Bytes {
    hello().encode_to_vec().into()
}

async fn raw_connect(addr: &str, tls: std::sync::Arc<rustls::ClientConfig>, messages: Vec<Bytes>) -> tonic::Status {
    let ch = channel(addr, tls).await.expect("channel");
    let mut grpc = tonic::client::Grpc::new(ch).max_encoding_message_size(64 << 20);
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/outpost.agent.v1.AgentService/Connect");
    let resp = grpc
        .streaming(tonic::Request::new(tokio_stream::iter(messages)), path, RawCodec)
        .await;
    let mut inbound = match resp {
        Err(status) => return status,
        Ok(r) => r.into_inner(),
    };
    loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without an error status"),
            Err(status) => return status,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_messages_get_clear_statuses() {
    let (c, mut a) = tokio::task::spawn_blocking(|| collector_with_agent("acme", "hq"))
        .await
        .expect("setup");
    let addr = c.agent_endpoint();
    let tls = agent_tls(a.data_dir());

    // Bytes that are not a protobuf AgentMessage.
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
    let status = raw_connect(&addr, tls.clone(), vec![garbage]).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("malformed"), "{status:?}");

    // A valid Hello, then a 5 MiB message: over the 4 MiB limit.
    let huge = Bytes::from(vec![0x12u8; 5 << 20]);
    let status = raw_connect(&addr, tls.clone(), vec![hello_bytes(), huge]).await;
    assert!(
        matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted),
        "oversized: {status:?}"
    );
    assert!(
        status.message().contains("too large") || status.message().contains("length"),
        "{status:?}"
    );

    // A first message that is valid protobuf but not a Hello.
    let status = raw_connect(
        &addr,
        tls.clone(),
        vec![AgentMessage { kind: None }.encode_to_vec().into()],
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("Hello"), "{status:?}");

    // Garbage to the unary Enroll.
    let ch = channel(&addr, tls.clone()).await.expect("channel");
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/outpost.agent.v1.AgentService/Enroll");
    let status = grpc
        .unary(
            tonic::Request::new(Bytes::from_static(&[0x0a, 0xff, 0xff])),
            path,
            RawCodec,
        )
        .await
        .expect_err("garbage Enroll refused");
    assert_ne!(status.code(), tonic::Code::Ok);

    // The collector still serves a real agent.
    a.start();
    let id = a.id();
    let c2 = tokio::task::spawn_blocking(move || {
        outpost_tests::wait_for("the agent to connect after the abuse", || {
            c.agents()
                .into_iter()
                .find(|r| r["id"] == id.as_str() && r["online"] == true && r["hostname"] != "")
                .map(|_| ())
        });
        c
    })
    .await
    .expect("agent online");
    let mut cl = client(&c2.agent_endpoint(), tls)
        .await
        .expect("still accepting connections");
    let _ = &mut cl;
}
