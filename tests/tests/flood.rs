//! The agent port under an anonymous flood, real processes on loopback.
//!
//! While an enrolled agent streams host facts every second, eight loopback
//! sources (127.0.0.2–9) open TLS connections without a client certificate
//! and then thousands of bare TCP connections that never start TLS, and four
//! more (127.0.0.10–13) hammer `Enroll` with well-formed tokens that do not
//! exist. Meanwhile: the agent's rows keep arriving, a verified connection
//! from a flooded source is still served, a fresh enrollment from 127.0.0.1
//! succeeds, every idle anonymous connection is closed, and the collector
//! logs each kind of refusal once per source, not once per attempt.
//!
//! Everything is bounded: fixed numbers of connections and attempts, and a
//! deadline on every wait. All traffic goes to the collector on 127.0.0.1.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outpost_certs::Fingerprint;
use outpost_certs::token::EnrollmentToken;
use outpost_proto::PROTOCOL_VERSION;
use outpost_proto::agent_v1::EnrollRequest;
use outpost_tests::raw::{agent_tls, anonymous_tls, client_from, tcp_from, tls_from};
use outpost_tests::{Agent, Collector, OutputExt, collector_with_agent};
use tokio::io::AsyncReadExt as _;

/// Sources that open idle connections.
const IDLE_SOURCES: std::ops::RangeInclusive<u8> = 2..=9;
/// Sources that flood `Enroll`.
const ENROLL_SOURCES: std::ops::RangeInclusive<u8> = 10..=13;
/// TLS connections without a client certificate per idle source.
const TLS_PER_SOURCE: usize = 24;
/// Bare TCP connections per idle source.
const TCP_PER_SOURCE: usize = 300;
/// `Enroll` attempts per enroll source, and the pause between them.
const ENROLLS_PER_SOURCE: usize = 60;
const ENROLL_PAUSE: Duration = Duration::from_millis(100);

// The collector's limits this test expects (agent_port/admission.rs,
// anonymous.rs, rate_limit.rs).
const ANONYMOUS_PER_SOURCE: usize = 8;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const ENROLL_BURST: usize = 10;
const ENROLL_EVERY: Duration = Duration::from_secs(6);

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Connections that the collector has closed, counted as they close.
#[derive(Default)]
struct Idle {
    opened: AtomicUsize,
    closed: AtomicUsize,
    /// Connections that got bytes (HTTP/2 settings) before closing: the
    /// collector handed them to gRPC.
    served: AtomicUsize,
    failed_to_open: AtomicUsize,
}

impl Idle {
    fn open(&self) -> usize {
        self.opened.load(Ordering::SeqCst) - self.closed.load(Ordering::SeqCst)
    }

    /// Reads `stream` until the collector closes it (bounded by `give_up`).
    fn watch(self: &Arc<Self>, mut stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, give_up: Duration) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let mut got_bytes = false;
            let _ = tokio::time::timeout(give_up, async {
                // Each read returns data or the end; the loop ends with the connection.
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got_bytes = true;
                }
            })
            .await;
            if got_bytes {
                me.served.fetch_add(1, Ordering::SeqCst);
            }
            me.closed.fetch_add(1, Ordering::SeqCst);
        });
    }
}

/// Opens the TLS connections without a client certificate from one source.
async fn tls_flood(source: IpAddr, addr: SocketAddr, tls: Arc<rustls::ClientConfig>, idle: Arc<Idle>) {
    let attempts =
        (0..TLS_PER_SOURCE).map(|_| tokio::time::timeout(Duration::from_secs(10), tls_from(source, addr, tls.clone())));
    for result in futures::future::join_all(attempts).await {
        match result {
            Ok(Ok(stream)) => idle.watch(stream, Duration::from_secs(60)),
            _ => {
                idle.failed_to_open.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Opens the bare TCP connections from one source, 50 at a time.
async fn tcp_flood(source: IpAddr, addr: SocketAddr, idle: Arc<Idle>) {
    for _ in 0..TCP_PER_SOURCE / 50 {
        let batch = (0..50).map(|_| tokio::time::timeout(Duration::from_secs(5), tcp_from(source, addr)));
        for result in futures::future::join_all(batch).await {
            match result {
                Ok(Ok(stream)) => idle.watch(stream, Duration::from_secs(60)),
                _ => {
                    idle.failed_to_open.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// What one source's `Enroll` flood got back.
#[derive(Debug, Default)]
struct EnrollOutcome {
    refused_token: usize,
    rate_limited: usize,
    retry_message: Option<String>,
    other: Vec<String>,
    elapsed: Duration,
}

async fn enroll_flood(
    source: IpAddr,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    ca: Fingerprint,
) -> EnrollOutcome {
    let mut out = EnrollOutcome::default();
    let start = Instant::now();
    for _ in 0..ENROLLS_PER_SOURCE {
        // Well-formed and pinned to this collector, but unknown: the most the
        // collector has to do for a bad token.
        let token = EnrollmentToken::generate(ca).to_string();
        let result = match client_from(source, addr, tls.clone()).await {
            Ok(mut client) => client
                .enroll(EnrollRequest {
                    protocol_version: PROTOCOL_VERSION,
                    token,
                    csr_der: b"never looked at".to_vec(),
                    hostname: "flood".into(),
                    agent_version: "flood".into(),
                    previous_certificate_der: vec![],
                })
                .await
                .map(|_| ()),
            Err(e) => Err(tonic::Status::unavailable(format!("connect: {e}"))),
        };
        match result {
            Err(s) if s.code() == tonic::Code::PermissionDenied => out.refused_token += 1,
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                out.rate_limited += 1;
                out.retry_message = Some(s.message().to_owned());
            }
            other => out.other.push(format!("{other:?}")),
        }
        tokio::time::sleep(ENROLL_PAUSE).await;
    }
    out.elapsed = start.elapsed();
    out
}

/// Lines of `log` carrying the structured field `name=value` exactly.
fn with_field<'a>(log: &'a [String], name: &str, value: &str) -> Vec<&'a String> {
    let field = format!("{name}={value}");
    log.iter()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w == field || w.starts_with(&format!("{field}:")))
        })
        .collect()
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
async fn agents_keep_working_through_an_anonymous_flood() {
    let wanted = (IDLE_SOURCES.count() * (TLS_PER_SOURCE + TCP_PER_SOURCE) + 1_000) as u64;
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

    let addr: SocketAddr = c.agent_endpoint().parse().expect("agent port address");
    let anonymous = anonymous_tls(c.data_dir());
    let ca = Fingerprint::of_der(
        &outpost_certs::pem::certificates("ca.crt", &std::fs::read(c.data_dir().join("ca.crt")).expect("ca.crt"))
            .expect("CA PEM")[0],
    );

    // 1. TLS without a client certificate, held open and idle.
    let tls_idle = Arc::new(Idle::default());
    futures::future::join_all(IDLE_SOURCES.map(|s| tls_flood(loopback(s), addr, anonymous.clone(), tls_idle.clone())))
        .await;
    let tls_opened_at = Instant::now();

    // A flooded source is out of anonymous slots, yet a verified connection
    // from it is served: agents are not counted against those bounds.
    let flooded = loopback(*IDLE_SOURCES.start());
    let mut verified = client_from(flooded, addr, agent_tls(a.data_dir()))
        .await
        .expect("a verified connection from a flooded source");
    let status = verified
        .enroll(EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("a malformed token");
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "served by gRPC: {status:?}"
    );
    drop(verified);
    // An anonymous one from the same source is cut right after its handshake.
    let anonymous_refused = match client_from(flooded, addr, anonymous.clone()).await {
        Err(_) => true,
        Ok(mut client) => client
            .enroll(EnrollRequest {
                protocol_version: PROTOCOL_VERSION,
                token: "garbage".into(),
                ..Default::default()
            })
            .await
            .is_err_and(|s| s.code() != tonic::Code::InvalidArgument),
    };
    assert!(
        anonymous_refused,
        "a ninth anonymous connection from one source was served"
    );

    // 2. Bare TCP that never starts TLS, and 3. the Enroll flood, together.
    let tcp_idle = Arc::new(Idle::default());
    let tcp = futures::future::join_all(IDLE_SOURCES.map(|s| tcp_flood(loopback(s), addr, tcp_idle.clone())));
    let enrolls = tokio::spawn(futures::future::join_all(
        ENROLL_SOURCES.map(|s| enroll_flood(loopback(s), addr, anonymous.clone(), ca)),
    ));
    tcp.await;
    // Rows keep arriving while the bare TCP connections hold their handshake
    // slots and the Enroll flood runs.
    rows_arrive(&c, 3).await;

    // 4. While all of that is going on, a new agent enrolls from a fresh source.
    let enrolled = {
        let c = c.clone();
        tokio::task::spawn_blocking(move || {
            let fresh = Agent::new();
            fresh.enroll(&c.agent_endpoint(), &c.token("acme", "branch")).ok();
            fresh.id()
        })
    };
    let new_agent = enrolled.await.expect("a fresh enrollment during the flood");
    let outcomes = enrolls.await.expect("enroll flood");

    // The agent's stream never broke.
    assert!(
        !a.running().logged("uplink down"),
        "the agent's connection broke: {:?}",
        a.running().log()
    );
    assert!(c.agents().iter().any(|r| r["id"] == new_agent.as_str()));

    // Every idle anonymous connection is closed once the idle timeout has
    // passed (the bare TCP ones after the shorter handshake timeout).
    let deadline = tls_opened_at + IDLE_TIMEOUT + Duration::from_secs(10);
    while (tls_idle.open() > 0 || tcp_idle.open() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(tls_idle.open(), 0, "TLS connections still open after the idle timeout");
    assert_eq!(
        tcp_idle.open(),
        0,
        "bare TCP connections still open after the handshake timeout"
    );
    let sources = IDLE_SOURCES.count();
    assert_eq!(
        tls_idle.opened.load(Ordering::SeqCst),
        sources * TLS_PER_SOURCE,
        "every TLS handshake completed"
    );
    assert_eq!(
        tls_idle.served.load(Ordering::SeqCst),
        sources * ANONYMOUS_PER_SOURCE,
        "gRPC got exactly the per-source bound of anonymous connections"
    );
    let tcp_opened = tcp_idle.opened.load(Ordering::SeqCst);
    assert!(
        tcp_opened >= sources * TCP_PER_SOURCE * 9 / 10,
        "only {tcp_opened} bare TCP connections opened ({} failed)",
        tcp_idle.failed_to_open.load(Ordering::SeqCst)
    );

    // Enroll: a burst per source, then refused with when to retry.
    for (source, o) in ENROLL_SOURCES.zip(&outcomes) {
        let allowed = ENROLL_BURST + (o.elapsed.as_secs_f64() / ENROLL_EVERY.as_secs_f64()).ceil() as usize;
        assert!(o.other.is_empty(), "127.0.0.{source}: unexpected answers {:?}", o.other);
        assert!(
            o.refused_token >= ENROLL_BURST && o.refused_token <= allowed,
            "127.0.0.{source}: {} attempts reached the token check in {:?}",
            o.refused_token,
            o.elapsed
        );
        assert_eq!(o.refused_token + o.rate_limited, ENROLLS_PER_SOURCE);
        let message = o.retry_message.as_deref().unwrap_or_default();
        assert!(message.contains("retry in"), "{message:?}");
    }

    // The log names each kind of refusal once per source.
    let log = c.server().log();
    for s in IDLE_SOURCES {
        let ip = loopback(s).to_string();
        let lines = with_field(&log, "source", &ip);
        for kind in [
            "too many connections without a client certificate from one source",
            "too many TLS handshakes in progress from one source",
            "agent TLS handshake timed out",
        ] {
            let n = lines.iter().filter(|l| l.contains(kind)).count();
            assert_eq!(n, 1, "{ip}: {n} lines for {kind:?}:\n{lines:#?}");
        }
        assert!(
            lines.len() <= 4,
            "{ip}: {} lines for {} connections:\n{lines:#?}",
            lines.len(),
            TLS_PER_SOURCE + TCP_PER_SOURCE
        );
    }
    for (s, o) in ENROLL_SOURCES.zip(&outcomes) {
        let ip = loopback(s).to_string();
        let limited = with_field(&log, "source", &ip);
        assert_eq!(limited.len(), 1, "{ip}: {limited:#?}");
        assert!(limited[0].contains("over its rate limit"), "{}", limited[0]);
        // Only calls that got past the rate limit reach the token check, which
        // logs each refusal with the token id.
        let refused = with_field(&log, "remote", &ip)
            .into_iter()
            .filter(|l| l.contains("enrollment refused"))
            .count();
        assert_eq!(refused, o.refused_token, "{ip}");
    }
}
