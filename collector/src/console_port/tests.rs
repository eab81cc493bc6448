//! The idle watchdog on real sockets, with short limits: a response that
//! streams for longer than the idle timeout keeps its connection, a
//! connection without a request does not, and handlers see the client address.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{Limits, Transport, TrustedProxies, serve};

const IDLE: Duration = Duration::from_millis(600);
const TICKS: usize = 8;
const TICK: Duration = Duration::from_millis(250);

/// How long the test router gives a request body.
const BODY_DEADLINE: Duration = Duration::from_millis(500);

fn app() -> Router {
    Router::new()
        .route(
            "/echo",
            axum::routing::post(|body: String| async move { body }).layer(super::body_deadline::layer(BODY_DEADLINE)),
        )
        .route(
            "/stream",
            get(|| async {
                let ticks = futures::stream::unfold(0, |n| async move {
                    if n == TICKS {
                        return None;
                    }
                    tokio::time::sleep(TICK).await;
                    Some((Ok::<_, std::io::Error>(format!("tick {n}\n")), n + 1))
                });
                Body::from_stream(ticks)
            }),
        )
        .route(
            "/client",
            get(|ConnectInfo(client): ConnectInfo<SocketAddr>| async move { client.ip().to_string() }),
        )
}

async fn start(proxies: TrustedProxies) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let limits = Limits {
        idle: IDLE,
        ..Limits::for_open_files(None)
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        Transport::PlainHttp,
        proxies,
        limits,
        app(),
        shutdown.clone(),
    ));
    (addr, shutdown)
}

/// Reads until the server closes the connection or `within` passes; what arrived.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(within, s.read_to_end(&mut got)).await.is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test]
async fn a_streaming_response_outlives_the_idle_timeout_and_idleness_closes() {
    let (addr, shutdown) = start(TrustedProxies::default()).await;

    // Nothing sent at all: closed after the idle timeout.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let (_, closed) = read_until_closed(&mut silent, IDLE * 5).await;
    assert!(closed, "a connection that never sent a request was left open");

    // Half a request head: closed the same way.
    let mut half = TcpStream::connect(addr).await.expect("connect");
    half.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nX-A: ")
        .await
        .expect("write");
    let (_, closed) = read_until_closed(&mut half, IDLE * 5).await;
    assert!(closed, "an unfinished request head was left open");

    // A response streaming for about three idle timeouts arrives whole, then
    // the keep-alive connection is closed once idle.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let (body, closed) = read_until_closed(&mut s, TICK * TICKS as u32 + IDLE * 5).await;
    assert!(started.elapsed() > IDLE * 2, "the stream took its time");
    for n in 0..TICKS {
        assert!(body.contains(&format!("tick {n}\n")), "tick {n} missing from {body:?}");
    }
    assert!(closed, "the connection stayed open after its response");
    shutdown.cancel();
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_the_routers_deadline() {
    let (addr, shutdown) = start(TrustedProxies::default()).await;
    let mut whole = TcpStream::connect(addr).await.expect("connect");
    whole
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut whole, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        "{answer:?}"
    );

    // A body announced at 100 bytes of which 10 arrive: a request is in
    // progress, so only the deadline ends it, with an error answer and the
    // connection closed (well before the idle watchdog would matter again).
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .expect("write");
    let (answer, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "an error status: {answer:?}");
    assert!(closed, "the connection was closed");
    shutdown.cancel();
}

#[tokio::test]
async fn handlers_see_the_forwarded_client_only_from_trusted_proxies() {
    let ask = |addr: SocketAddr, xff: &'static str| async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET /client HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {xff}\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        read_until_closed(&mut s, Duration::from_secs(10)).await.0
    };
    let (trusting, stop) = start(TrustedProxies::new(&["127.0.0.1".parse().expect("ip")])).await;
    let body = ask(trusting, "198.51.100.1, 203.0.113.9").await;
    assert!(body.ends_with("\r\n\r\n203.0.113.9"), "{body:?}");
    stop.cancel();

    let (untrusting, stop) = start(TrustedProxies::default()).await;
    let body = ask(untrusting, "203.0.113.9").await;
    assert!(body.ends_with("\r\n\r\n127.0.0.1"), "{body:?}");
    stop.cancel();
}
