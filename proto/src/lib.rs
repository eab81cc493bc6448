//! The Outpost agent <-> collector protocol, generated from
//! `proto/outpost/agent/v1/agent.proto`, and the public API, from
//! `proto/outpost/api/v1/api.proto`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

/// Package `outpost.agent.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod agent_v1 {
    tonic::include_proto!("outpost.agent.v1");
}

#[cfg(feature = "dial")]
pub mod dial;

pub mod tunnel_wire;

/// Package `outpost.api.v1`: the public API (`proto/outpost/api/v1/api.proto`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod api_v1 {
    tonic::include_proto!("outpost.api.v1");
}

/// The encoded `FileDescriptorSet` (`prost-types`) of both packages: every
/// service and method as the `.proto` files declare them.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("outpost_descriptor");

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The oldest protocol version the collector still accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 1;
/// Largest gRPC message either side accepts.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest HTTP/2 frame each end accepts: a tunnel's data chunk (64 KiB)
/// with its gRPC and protobuf framing fits one frame, so each chunk is one
/// TLS write and one system call instead of five at the 16 KiB default.
pub const MAX_FRAME_BYTES: u32 = 64 * 1024 + 1024;
/// HTTP/2 flow-control window of each stream, both ports and the dialler.
/// Hyper's adaptive windows start at 64 KiB and, on a short round trip,
/// never grow: a tunnel then had one 64 KiB chunk in flight per hop and ran
/// at 0.7 of `ssh -L`; at 2 MiB (OpenSSH's channel window) it keeps pace
/// with it (bench/results.md). It is also the most a stream can hold in the
/// receiver's memory unread; [`CONNECTION_WINDOW_BYTES`] bounds a connection.
pub const STREAM_WINDOW_BYTES: u32 = 2 << 20;
/// HTTP/2 flow-control window of a whole connection: four busy streams.
pub const CONNECTION_WINDOW_BYTES: u32 = 8 << 20;
/// Bytes read from a TLS connection's socket at once. rustls on its own asks
/// the socket for 4 KiB to 16 KiB at a time; a buffer underneath it makes bulk
/// transfers (tunnels) cost a fraction of the reads.
pub const SOCKET_READ_BYTES: usize = 64 * 1024;
/// Most observations in one `Batch`.
pub const MAX_BATCH_OBSERVATIONS: usize = 10_000;
/// Largest encoded observation (host facts, metric samples, device states).
pub const MAX_OBSERVATION_BYTES: usize = 64 * 1024;
/// Largest encoded device poll or log: a router with thousands of DHCP leases
/// or neighbours reports that much in one poll.
pub const MAX_DEVICE_REPORT_BYTES: usize = 2 * 1024 * 1024;
/// Largest encoded `DiscoveredHosts` observation: a chunk of a scan's hosts
/// with their ports, SNMP interfaces and LLDP neighbours. Agents cut a scan's
/// hosts into chunks below this.
pub const MAX_DISCOVERY_REPORT_BYTES: usize = 2 * 1024 * 1024;
/// Largest encoded configuration backup, within one gRPC message.
pub const MAX_BACKUP_BYTES: usize = 3 * 1024 * 1024;
/// Largest configuration export the agent sends (sealed, it grows by 29 bytes).
pub const MAX_EXPORT_BYTES: usize = MAX_BACKUP_BYTES - 64 * 1024;
