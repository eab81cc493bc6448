//! The agent port: mutual-TLS gRPC for enrollment, renewal and the uplink stream.
//!
//! TLS is terminated here (not by tonic) so the verified client certificate can
//! be turned into an [`AgentScope`](outpost_store::AgentScope) once, per
//! connection, and handed to every request as [`listener::PeerInfo`].
mod admission;
pub mod anonymous;
mod backups;
pub mod connections;
pub mod control;
pub mod device_reports;
mod devices;
pub mod discovery;
pub mod discovery_reports;
mod enroll;
mod flood_log;
mod gate;
pub mod listener;
pub mod live;
mod rate_limit;
mod recording;
mod renew;
pub mod scan_progress;
pub mod service;
mod session;
mod shared;
pub mod source;
pub mod ssh_shell;
pub mod tenancy;
mod terminal;
pub mod traffic;
pub mod tunnels;
pub mod validate;

use std::sync::Arc;

use outpost_proto::MAX_MESSAGE_BYTES;
use outpost_proto::agent_v1::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

pub use service::AgentPortService;

/// HTTP/2 streams one connection may have open at once: an agent uses one
/// (`Connect`) plus the odd `Renew`; the rest is room for per-tunnel streams.
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Largest header block accepted: gRPC requests carry a handful of short
/// headers, so 16 KiB (hyper's default, stated here on purpose) is generous.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Streams a client may open and reset before the collector has accepted them
/// (the "rapid reset" attack) before the connection is closed with GOAWAY.
const MAX_PENDING_RESET_STREAMS: usize = 20;
/// Streams the collector may reset for a client's protocol errors before the
/// connection is closed.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;
/// How often refusal summaries are logged and idle rate-limit buckets dropped.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the agent port on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: AgentPortService,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let flood = Arc::new(flood_log::FloodLog::default());
    let enroll_limit = Arc::new(rate_limit::RateLimiter::new(rate_limit::ENROLL_RATE));
    let defences = listener::Defences {
        admission: admission::Admission::new(admission::LIMITS),
        lifetimes: anonymous::LIFETIMES,
        flood: flood.clone(),
    };
    let incoming = ReceiverStream::new(listener::accept_loop(
        listener,
        tls,
        service.connections.clone(),
        defences,
        shutdown.clone(),
    ));
    tokio::spawn(housekeeping(flood.clone(), enroll_limit.clone(), shutdown.clone()));
    let generated = AgentServiceServer::new(service.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let svc = service::tunnel_route(generated, service);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESET_STREAMS))
        .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
        // Tunnels stream bulk bytes from the agents (see the constants).
        .initial_stream_window_size(outpost_proto::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(outpost_proto::CONNECTION_WINDOW_BYTES)
        .max_frame_size(outpost_proto::MAX_FRAME_BYTES)
        .layer(gate::GateLayer::new(enroll_limit, flood))
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Logs refusal summaries once a minute per source and forgets refilled
/// rate-limit buckets, until `shutdown`.
async fn housekeeping(
    flood: Arc<flood_log::FloodLog>,
    enroll_limit: Arc<rate_limit::RateLimiter>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let now = std::time::Instant::now();
                flood.summarize(now);
                enroll_limit.evict(now);
            }
        }
    }
}

/// Below this many descriptors the agent port's own bounds (512 handshakes,
/// 256 anonymous connections, every agent's connection) cannot all be met.
const WANTED_OPEN_FILES: u64 = 4096;

/// Raises the process's open-file soft limit to its hard limit, logs it, and
/// returns the limit now in force (`None` when it cannot be read): every
/// connection is a descriptor, and the usual soft default of 1024 would run
/// out during a flood long before the agent port's own bounds apply.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < WANTED_OPEN_FILES => {
            tracing::warn!(
                limit,
                wanted = WANTED_OPEN_FILES,
                "the open file limit is low; raise the hard limit (e.g. LimitNOFILE= in the systemd unit)"
            );
            Some(limit)
        }
        Ok(limit) => {
            tracing::info!(limit, "open file limit");
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open file limit");
            None
        }
    }
}
