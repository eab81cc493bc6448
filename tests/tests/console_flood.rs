//! The console port under a flood of half-open requests, real processes on
//! loopback.
//!
//! While an enrolled agent streams host facts every second, fifty loopback
//! sources (127.0.1.1–50) each hold HTTPS connections that never finish a
//! request: HTTP/1.1 with headers cut off mid-line, HTTP/2 (ALPN h2) with the
//! preface and SETTINGS but a HEADERS frame cut off, and HTTP/2 with nothing
//! after the preface. Meanwhile the console answers a normal request and the
//! agent's rows keep arriving; then the collector closes every flood
//! connection within its idle timeout. One more source checks the per-source
//! cap itself.
//!
//! Everything is bounded: fixed numbers of connections, and a deadline on
//! every wait. All traffic goes to the collector on 127.0.0.1.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outpost_tests::http::{client_config, request};
use outpost_tests::raw::{tcp_from, tls_from};
use outpost_tests::{Collector, collector_with_agent};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sources holding flood connections: 127.0.1.1 ..= 127.0.1.50.
const SOURCES: std::ops::RangeInclusive<u8> = 1..=50;
/// Per source: HTTP/1.1 requests with unfinished headers.
const H1_PER_SOURCE: usize = 24;
/// Per source: HTTP/2 connections with a HEADERS frame cut off.
const H2_HEADERS_PER_SOURCE: usize = 8;
/// Per source: HTTP/2 connections with nothing after the preface and SETTINGS.
const H2_SILENT_PER_SOURCE: usize = 8;

// The collector's limits this test expects (collector/src/console_port/limits.rs).
/// Connections from one source.
const PER_SOURCE: usize = 64;
/// A connection with no request in progress is closed after this long.
const IDLE: Duration = Duration::from_secs(20);

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn source(network: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, network, host))
}

/// An HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id.
fn frame_header(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
    let mut h = len.to_be_bytes()[1..].to_vec();
    h.extend([kind, flags]);
    h.extend(stream.to_be_bytes());
    h
}

/// What one kind of flood connection opened and saw closed.
#[derive(Default)]
struct Held {
    opened: AtomicUsize,
    closed: AtomicUsize,
    failed_to_open: AtomicUsize,
}

impl Held {
    fn open(&self) -> usize {
        self.opened.load(Ordering::SeqCst) - self.closed.load(Ordering::SeqCst)
    }

    /// Reads (and discards) what the server sends until it closes the
    /// connection, or until `give_up`.
    fn watch(self: &Arc<Self>, mut stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, give_up: Duration) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let closed = tokio::time::timeout(give_up, async {
                // Each read returns data or the end; the loop ends with the connection.
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            if closed.is_ok() {
                me.closed.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

#[derive(Clone, Copy, Debug)]
enum HalfOpen {
    /// HTTP/1.1: a request line and half a header.
    Http1,
    /// HTTP/2: preface, SETTINGS, and a HEADERS frame announcing more bytes than follow.
    Http2Headers,
    /// HTTP/2: preface and SETTINGS, then nothing.
    Http2Silent,
}

/// Opens `n` half-open requests of `kind` from `from`, each watched until the server closes it.
async fn flood(
    from: IpAddr,
    addr: SocketAddr,
    kind: HalfOpen,
    n: usize,
    tls: Arc<rustls::ClientConfig>,
    held: Arc<Held>,
) {
    let open = (0..n).map(|_| {
        let tls = tls.clone();
        tokio::time::timeout(Duration::from_secs(20), async move {
            let mut s = tls_from(from, addr, tls).await?;
            match kind {
                HalfOpen::Http1 => {
                    s.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaa")
                        .await?;
                }
                HalfOpen::Http2Headers | HalfOpen::Http2Silent => {
                    let mut bytes = PREFACE.to_vec();
                    bytes.extend(frame_header(0, 0x4, 0, 0)); // empty SETTINGS
                    if let HalfOpen::Http2Headers = kind {
                        // HEADERS on stream 1, END_HEADERS, 64 bytes announced, 3 sent.
                        bytes.extend(frame_header(64, 0x1, 0x4, 1));
                        bytes.extend([0x82, 0x87, 0x84]);
                    }
                    s.write_all(&bytes).await?;
                }
            }
            s.flush().await?;
            Ok::<_, std::io::Error>(s)
        })
    });
    for result in futures::future::join_all(open).await {
        match result {
            Ok(Ok(stream)) => held.watch(stream, IDLE + Duration::from_secs(30)),
            _ => {
                held.failed_to_open.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn host_facts(c: &Collector) -> i64 {
    c.count("SELECT COUNT(*) FROM host_facts")
}

/// Waits until `n` more host-facts rows are stored (the agent reports every
/// second), or fails after the harness's patience.
async fn rows_arrive(c: &Arc<Collector>, n: i64) {
    let c = c.clone();
    tokio::task::spawn_blocking(move || {
        let before = host_facts(&c);
        outpost_tests::wait_for(&format!("{n} more rows from the agent"), || {
            (host_facts(&c) >= before + n).then_some(())
        })
    })
    .await
    .expect("rows arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_survives_a_flood_of_half_open_requests() {
    let per_source = H1_PER_SOURCE + H2_HEADERS_PER_SOURCE + H2_SILENT_PER_SOURCE;
    assert!(
        per_source < PER_SOURCE,
        "the per-source cap alone must not stop the flood"
    );
    let flood_size = SOURCES.count() * per_source;
    let wanted = (flood_size + PER_SOURCE + 1_000) as u64;
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open file limit");
    assert!(
        limit >= wanted,
        "this test holds up to {wanted} sockets; the open file limit is {limit} (raise `ulimit -Hn`)"
    );

    let (c, mut a) = tokio::task::spawn_blocking(|| collector_with_agent("acme", "hq"))
        .await
        .expect("setup");
    a.set_config("host_facts_interval_secs", "1");
    a.start();
    let c = Arc::new(c);
    rows_arrive(&c, 1).await;

    let console = c.console();
    let addr = console.addr;
    let ca = outpost_certs::pem::certificates("ca.crt", &std::fs::read(c.ca_file()).expect("ca.crt")).expect("CA");
    let h1 = Arc::new(client_config(&ca, &[b"http/1.1"]));
    let h2 = Arc::new(client_config(&ca, &[b"h2"]));

    // The flood, all sources at once.
    let held = [
        Arc::new(Held::default()),
        Arc::new(Held::default()),
        Arc::new(Held::default()),
    ];
    let kinds = [
        (HalfOpen::Http1, H1_PER_SOURCE, h1.clone()),
        (HalfOpen::Http2Headers, H2_HEADERS_PER_SOURCE, h2.clone()),
        (HalfOpen::Http2Silent, H2_SILENT_PER_SOURCE, h2.clone()),
    ];
    let started = Instant::now();
    futures::future::join_all(SOURCES.flat_map(|s| {
        kinds
            .iter()
            .zip(&held)
            .map(move |((kind, n, tls), held)| flood(source(1, s), addr, *kind, *n, tls.clone(), held.clone()))
    }))
    .await;
    let flooded_at = Instant::now();
    for (h, (kind, n, _)) in held.iter().zip(&kinds) {
        assert_eq!(
            h.failed_to_open.load(Ordering::SeqCst),
            0,
            "every {kind:?} connection of the flood was accepted"
        );
        assert_eq!(h.opened.load(Ordering::SeqCst), SOURCES.count() * n);
    }
    let open_now: usize = held.iter().map(|h| h.open()).sum();
    eprintln!(
        "{open_now} of {flood_size} flood connections open after {:?}",
        flooded_at - started
    );
    // The server holds them until a deadline rather than refusing them: the
    // HTTP/2 ones, which only the idle timeout closes, are all still open.
    let h2_open = held[1].open() + held[2].open();
    assert_eq!(
        h2_open,
        SOURCES.count() * (H2_HEADERS_PER_SOURCE + H2_SILENT_PER_SOURCE),
        "HTTP/2 flood connections closed before the idle timeout (opening took {:?})",
        flooded_at - started
    );

    // And one that never starts TLS: the handshake timeout closes it.
    let bare = Arc::new(Held::default());
    bare.watch(
        tcp_from(source(2, 3), addr).await.expect("connect"),
        IDLE + Duration::from_secs(30),
    );

    // (b) The console still answers, over both protocols.
    let page = {
        let console = console.clone();
        tokio::task::spawn_blocking(move || request(&console, "GET", "/login", &[], ""))
            .await
            .expect("a request during the flood")
    };
    assert_eq!(page.status, 200, "{page:?}");
    let curl = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--http2",
            "--output",
            "/dev/null",
        ])
        .args(["--write-out", "%{http_version} %{response_code}", "--cacert"])
        .arg(c.ca_file())
        .arg(format!("{}/login", console.url()))
        .output()
        .await
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "2 200", "{curl:?}");

    // (c) The agent keeps streaming: its rows keep arriving.
    rows_arrive(&c, 3).await;

    // The per-source cap: one source holds its limit in completed handshakes;
    // its next connection is closed without a TLS handshake, while another
    // source is served.
    let capped = source(2, 1);
    let mut at_cap = Vec::new();
    for _ in 0..PER_SOURCE {
        at_cap.push(
            tls_from(capped, addr, h1.clone())
                .await
                .expect("within the per-source cap"),
        );
    }
    let over = tokio::time::timeout(Duration::from_secs(20), tls_from(capped, addr, h1.clone()))
        .await
        .expect("refused promptly, not left hanging");
    assert!(over.is_err(), "a connection over the per-source cap got a TLS session");
    tls_from(source(2, 2), addr, h1.clone())
        .await
        .expect("another source is served");
    // A slot given back is usable again.
    drop(at_cap.pop());
    let again = async {
        for _ in 0..50 {
            if tls_from(capped, addr, h1.clone()).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(again.await, "a closed connection gives its slot back");
    drop(at_cap);

    // (a) Every flood connection is closed by the collector within the idle
    // timeout (plus room for a loaded machine).
    let deadline = flooded_at + IDLE + Duration::from_secs(15);
    while (held.iter().any(|h| h.open() > 0) || bare.open() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (h, (kind, _, _)) in held.iter().zip(&kinds) {
        assert_eq!(h.open(), 0, "{kind:?} connections still open after the idle timeout");
    }
    assert_eq!(bare.open(), 0, "a TCP connection that never started TLS is still open");

    // The agent's stream never broke.
    assert!(
        !a.running().logged("uplink down"),
        "the agent's connection broke: {:?}",
        a.running().log()
    );
    rows_arrive(&c, 1).await;
}
