//! An anonymous flood against a collector's agent port on loopback, for
//! `bench/flood.sh`: from each "idle" source, workers that keep a bare TCP
//! connection open (never starting TLS) or a TLS connection without a client
//! certificate, reconnecting after a pause whenever the collector closes it;
//! from each "enroll" source, one worker calling `Enroll` with unknown tokens.
//! Runs for `--seconds` or until SIGINT/SIGTERM, then prints what it did on
//! one line.
//!
//! ```text
//! flood --collector-dir DIR --agent-addr 127.0.0.1:PORT [--seconds 60]
//!       [--idle-sources 2-9] [--enroll-sources 10-13]
//!       [--tcp-per-source 300] [--tls-per-source 24]
//!       [--reconnect-ms 1000] [--enroll-pause-ms 20]
//! ```
//!
//! Source `n` is 127.0.0.n; the target must be a loopback address.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use outpost_certs::Fingerprint;
use outpost_certs::token::EnrollmentToken;
use outpost_proto::PROTOCOL_VERSION;
use outpost_proto::agent_v1::EnrollRequest;
use outpost_tests::raw::{anonymous_tls, client_from, tcp_from, tls_from};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::time::Instant;

struct Options {
    collector_dir: PathBuf,
    agent_addr: SocketAddr,
    seconds: u64,
    idle_sources: Vec<u8>,
    enroll_sources: Vec<u8>,
    tcp_per_source: usize,
    tls_per_source: usize,
    reconnect: Duration,
    enroll_pause: Duration,
}

fn range(text: &str) -> Result<Vec<u8>> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b): (u8, u8) = (a.parse()?, b.parse()?);
    if a < 2 || b < a {
        bail!("source range {text:?}: expected A-B with 2 <= A <= B <= 255 (127.0.0.1 is left to the agents)");
    }
    Ok((a..=b).collect())
}

fn options() -> Result<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut map = HashMap::new();
    for pair in args.chunks(2) {
        let [key, value] = pair else {
            bail!("expected --name value pairs, got {args:?}")
        };
        let key = key
            .strip_prefix("--")
            .with_context(|| format!("{key:?} is not an option"))?;
        map.insert(key.to_owned(), value.clone());
    }
    let mut take = |k: &str, default: Option<&str>| -> Result<String> {
        map.remove(k)
            .or(default.map(str::to_owned))
            .with_context(|| format!("--{k} is required"))
    };
    let opts = Options {
        collector_dir: take("collector-dir", None)?.into(),
        agent_addr: take("agent-addr", None)?.parse().context("--agent-addr")?,
        seconds: take("seconds", Some("60"))?.parse().context("--seconds")?,
        idle_sources: range(&take("idle-sources", Some("2-9"))?)?,
        enroll_sources: range(&take("enroll-sources", Some("10-13"))?)?,
        tcp_per_source: take("tcp-per-source", Some("300"))?
            .parse()
            .context("--tcp-per-source")?,
        tls_per_source: take("tls-per-source", Some("24"))?
            .parse()
            .context("--tls-per-source")?,
        reconnect: Duration::from_millis(take("reconnect-ms", Some("1000"))?.parse().context("--reconnect-ms")?),
        enroll_pause: Duration::from_millis(
            take("enroll-pause-ms", Some("20"))?
                .parse()
                .context("--enroll-pause-ms")?,
        ),
    };
    if let Some(k) = map.keys().next() {
        bail!("unknown option --{k}");
    }
    if !opts.agent_addr.ip().is_loopback() {
        bail!("--agent-addr must be a loopback address; this tool floods only 127.0.0.0/8");
    }
    Ok(opts)
}

#[derive(Default)]
struct Stats {
    tcp_opened: AtomicU64,
    tcp_closed_by_collector: AtomicU64,
    tls_opened: AtomicU64,
    /// TLS connections that got HTTP/2 settings, i.e. reached gRPC.
    tls_served: AtomicU64,
    tls_closed_by_collector: AtomicU64,
    connect_failed: AtomicU64,
    enroll_refused: AtomicU64,
    enroll_rate_limited: AtomicU64,
    enroll_other: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads until the collector closes the connection or `stop`; counts
/// `on_bytes` when the first bytes arrive (the flood may be stopped while the
/// connection is still open). Returns whether the collector closed it.
async fn hold(mut stream: impl AsyncRead + Unpin, stop: Instant, on_bytes: Option<&AtomicU64>) -> bool {
    let mut buf = [0u8; 512];
    let mut counted = false;
    tokio::time::timeout_at(stop, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if !counted && let Some(c) = on_bytes {
                add(c);
                counted = true;
            }
        }
    })
    .await
    .is_ok()
}

async fn idle_worker(
    source: IpAddr,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    opts: Arc<Options>,
    stats: Arc<Stats>,
    stop: Instant,
) {
    while Instant::now() < stop {
        let opened = match &tls {
            None => tokio::time::timeout(Duration::from_secs(5), tcp_from(source, addr))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
            Some(tls) => tokio::time::timeout(Duration::from_secs(10), tls_from(source, addr, tls.clone()))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
        };
        match opened {
            Some(stream) => {
                add(if tls.is_some() {
                    &stats.tls_opened
                } else {
                    &stats.tcp_opened
                });
                let served = tls.is_some().then_some(&stats.tls_served);
                if hold(stream, stop, served).await {
                    add(if tls.is_some() {
                        &stats.tls_closed_by_collector
                    } else {
                        &stats.tcp_closed_by_collector
                    });
                }
            }
            None => add(&stats.connect_failed),
        }
        tokio::time::sleep_until(stop.min(Instant::now() + opts.reconnect)).await;
    }
}

async fn enroll_worker(
    source: IpAddr,
    tls: Arc<rustls::ClientConfig>,
    ca: Fingerprint,
    opts: Arc<Options>,
    stats: Arc<Stats>,
    stop: Instant,
) {
    while Instant::now() < stop {
        let result = match client_from(source, opts.agent_addr, tls.clone()).await {
            Ok(mut client) => client
                .enroll(EnrollRequest {
                    protocol_version: PROTOCOL_VERSION,
                    token: EnrollmentToken::generate(ca).to_string(),
                    csr_der: b"never looked at".to_vec(),
                    hostname: "flood".into(),
                    agent_version: "flood".into(),
                    previous_certificate_der: vec![],
                })
                .await
                .map(|_| ()),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        };
        match result {
            Err(s) if s.code() == tonic::Code::PermissionDenied => add(&stats.enroll_refused),
            Err(s) if s.code() == tonic::Code::ResourceExhausted => add(&stats.enroll_rate_limited),
            _ => add(&stats.enroll_other),
        }
        tokio::time::sleep_until(stop.min(Instant::now() + opts.enroll_pause)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = Arc::new(options()?);
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open file limit")?;
    let needed = (opts.idle_sources.len() * (opts.tcp_per_source + opts.tls_per_source) + 256) as u64;
    if limit < needed {
        bail!("the open file limit is {limit}, this flood needs about {needed}");
    }
    let tls = anonymous_tls(&opts.collector_dir);
    let ca_pem = std::fs::read(opts.collector_dir.join("ca.crt")).context("reading the collector's ca.crt")?;
    let ca_der = outpost_certs::pem::certificates("ca.crt", &ca_pem)?
        .into_iter()
        .next()
        .context("ca.crt holds no certificate")?;
    let ca = Fingerprint::of_der(&ca_der);

    let start = Instant::now();
    let stop = start + Duration::from_secs(opts.seconds);
    let stats = Arc::new(Stats::default());
    let mut workers = tokio::task::JoinSet::new();
    let loopback = |n: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
    for &s in &opts.idle_sources {
        for _ in 0..opts.tls_per_source {
            let (o, st) = (opts.clone(), stats.clone());
            workers.spawn(idle_worker(
                loopback(s),
                opts.agent_addr,
                Some(tls.clone()),
                o,
                st,
                stop,
            ));
        }
        for _ in 0..opts.tcp_per_source {
            let (o, st) = (opts.clone(), stats.clone());
            workers.spawn(idle_worker(loopback(s), opts.agent_addr, None, o, st, stop));
        }
    }
    for &s in &opts.enroll_sources {
        let (o, st) = (opts.clone(), stats.clone());
        workers.spawn(enroll_worker(loopback(s), tls.clone(), ca, o, st, stop));
    }
    eprintln!(
        "flood: {} workers against {} for at most {} s",
        workers.len(),
        opts.agent_addr,
        opts.seconds
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = async { while workers.join_next().await.is_some() {} } => {}
        _ = tokio::signal::ctrl_c() => workers.abort_all(),
        _ = term.recv() => workers.abort_all(),
    }
    let secs = start.elapsed().as_secs_f64();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let s = &stats;
    println!(
        "flood: seconds={secs:.1} tcp_opened={} tcp_closed_by_collector={} tls_opened={} tls_served={} \
         tls_closed_by_collector={} connect_failed={} enroll_refused={} enroll_rate_limited={} enroll_other={}",
        get(&s.tcp_opened),
        get(&s.tcp_closed_by_collector),
        get(&s.tls_opened),
        get(&s.tls_served),
        get(&s.tls_closed_by_collector),
        get(&s.connect_failed),
        get(&s.enroll_refused),
        get(&s.enroll_rate_limited),
        get(&s.enroll_other),
    );
    Ok(())
}
