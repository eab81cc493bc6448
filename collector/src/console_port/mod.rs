//! The console port: HTTPS (HTTP/1.1 and HTTP/2, ALPN `h2` and `http/1.1`)
//! serving any axum [`Router`], bounded so that no client can hold it open
//! or take the descriptors the agent port needs.
//!
//! The accept loop only accepts: a connection is counted against the total
//! ([`Limits::total`], a semaphore: beyond it accepting waits and new
//! connections queue in the kernel) and its source ([`Limits::per_source`]:
//! beyond it the connection is closed at once), then gets its own task
//! ([`connection`]) for the TLS handshake and HTTP. Every phase has a
//! deadline; see [`limits`].
//!
//! Plain HTTP is served only when asked for ([`Transport::PlainHttp`]), for a
//! TLS-terminating reverse proxy on the same host; [`client_addr`] then
//! reads the client's address from `X-Forwarded-For` of trusted proxies.
//! Request limits (body sizes, [`body_deadline`]) belong to each router, so
//! services mounted side by side keep their own.
mod admission;
pub mod body_deadline;
pub mod client_addr;
mod connection;
pub mod limits;
pub mod split;
pub mod tls;

#[cfg(test)]
mod grpc_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use client_addr::TrustedProxies;
pub use limits::Limits;
use outpost_agent_port::anonymous::Lifetimes;

/// How the console port speaks.
#[derive(Clone, Debug)]
pub enum Transport {
    /// HTTPS with this configuration (ALPN set by [`tls::server_config`]).
    Tls(Arc<rustls::ServerConfig>),
    /// Plain HTTP, for a reverse proxy on the same host.
    PlainHttp,
}

/// How often refusals and closed connections are summarized in the log.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// HTTP/2 streams the server may reset for a client's protocol errors before
/// the connection is closed.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;

/// What every connection task shares.
struct Shared {
    tls: Option<TlsAcceptor>,
    /// Serves connections without ALPN (and plain HTTP).
    auto: auto::Builder<TokioExecutor>,
    /// Serves connections that agreed on `http/1.1`.
    http1: auto::Builder<TokioExecutor>,
    /// Serves connections that agreed on `h2`.
    http2: auto::Builder<TokioExecutor>,
    router: Router,
    proxies: Arc<TrustedProxies>,
    limits: Limits,
    lifetimes: Lifetimes,
    stats: Stats,
}

/// What the console port refused or cut, since the last summary.
#[derive(Debug, Default)]
struct Stats {
    too_many_from_source: AtomicU64,
    /// Times accepting had to wait for a connection to close.
    total_full: AtomicU64,
    handshake_timed_out: AtomicU64,
    handshake_failed: AtomicU64,
    idle_closed: AtomicU64,
}

impl Stats {
    /// Logs one line with what was counted since the last call, if anything.
    fn summarize(&self) {
        let take = |n: &AtomicU64| n.swap(0, Ordering::Relaxed);
        let full = take(&self.total_full);
        if full > 0 {
            tracing::warn!(
                total_full = full,
                "console port: every connection slot was in use {full} times in the last minute; \
                 new connections waited for one to close"
            );
        }
        let (refused, timed_out, failed, idle) = (
            take(&self.too_many_from_source),
            take(&self.handshake_timed_out),
            take(&self.handshake_failed),
            take(&self.idle_closed),
        );
        if refused + timed_out > 0 {
            tracing::warn!(
                too_many_from_source = refused,
                handshake_timed_out = timed_out,
                handshake_failed = failed,
                closed_without_request = idle,
                "console port: {refused} connections refused (too many from one source) and \
                 {timed_out} TLS handshakes timed out in the last minute"
            );
        } else if failed + idle > 0 {
            // Browsers leave idle keep-alive connections behind all the time.
            tracing::debug!(
                handshake_failed = failed,
                closed_without_request = idle,
                "console port: {failed} TLS handshakes failed and {idle} idle connections closed in the last minute"
            );
        }
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_headers(limits.h1_max_headers)
        // The head has to fit the read buffer; hyper's minimum is 8 KiB.
        .max_buf_size((limits.max_header_bytes as usize).max(8192))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.h2_keepalive_interval)
        .keep_alive_timeout(limits.h2_keepalive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .max_pending_accept_reset_streams(limits.max_pending_reset_streams)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        // Tunnels stream bulk bytes (see the constants).
        .initial_stream_window_size(outpost_proto::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(outpost_proto::CONNECTION_WINDOW_BYTES)
        .max_frame_size(outpost_proto::MAX_FRAME_BYTES);
    b
}

/// Serves `router` on `listener` until `shutdown`. Connections still open then
/// are asked to close and cut shortly after, each by its own task.
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    proxies: TrustedProxies,
    limits: Limits,
    router: Router,
    shutdown: CancellationToken,
) {
    let trusted: Vec<_> = proxies.ips().collect();
    let admission = admission::Admission::new(limits.per_source, &trusted);
    let auto = builder(&limits);
    let shared = Arc::new(Shared {
        tls: match transport {
            Transport::Tls(config) => Some(TlsAcceptor::from(config)),
            Transport::PlainHttp => None,
        },
        http1: auto.clone().http1_only(),
        http2: auto.clone().http2_only(),
        auto,
        router,
        proxies: Arc::new(proxies),
        limits,
        lifetimes: Lifetimes {
            idle: limits.idle,
            // Requests are never enrollments here; only `idle` and `max` apply.
            after_enroll: limits.idle,
            max: limits.max_lifetime,
            label: "idle console connection",
        },
        stats: Stats::default(),
    });
    let total = Arc::new(tokio::sync::Semaphore::new(limits.total));
    tokio::spawn(summarize(shared.clone(), shutdown.clone()));
    let mut accept_errors = 0u64;
    let mut last_logged = None;
    loop {
        if total.available_permits() == 0 {
            shared.stats.total_full.fetch_add(1, Ordering::Relaxed);
        }
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = total.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning, and
                    // log once a minute, not once per failure.
                    accept_errors += 1;
                    if last_logged.is_none_or(|t: tokio::time::Instant| t.elapsed() >= SUMMARY_EVERY) {
                        tracing::warn!(%error, failures = accept_errors, "accepting a console connection failed");
                        last_logged = Some(tokio::time::Instant::now());
                        accept_errors = 0;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Closing at once (dropping `tcp`) costs us nothing; holding it would
        // cost a descriptor.
        let Some(slot) = admission.admit(peer.ip()) else {
            shared.stats.too_many_from_source.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        tokio::spawn(connection::run(
            tcp,
            peer,
            shared.clone(),
            permit,
            slot,
            shutdown.clone(),
        ));
    }
}

/// Logs what was refused or cut once a minute (not once per connection: a
/// flood would bury everything else), until `shutdown`.
async fn summarize(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SUMMARY_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => shared.stats.summarize(),
        }
    }
}
