//! Outpost site simulator: a fleet of simulated MikroTik devices speaking the
//! real RouterOS API wire protocol (plain on 8728, TLS on 8729), built on the
//! shared codec in `outpost-routeros`, and SSH for configuration exports, so
//! tests and benchmarks have routers.
//!
//! # Running it
//!
//! ```text
//! outpost-sim --devices N [--first-ip 127.0.1.1] [--ros 6|7|mixed] [--seed S]
//!             [--user NAME --password PASS] [--api-port 8728] [--api-ssl-port 8729]
//!             [--ssh-port 2222]
//!             [--control 127.0.0.1:PORT] [--neighbors-per-device K]
//!             [--mndp-to 127.0.0.1:PORT [--mndp-interval SECONDS]]
//! ```
//!
//! Each device listens on its own loopback address, counting up from
//! `--first-ip` (host bytes .0 and .255 are skipped; only 127.0.0.0/8 is
//! accepted). Port 0 picks a free port per device. At start the simulator
//! prints one line per device, then `ready <N> devices`:
//!
//! ```text
//! device 127.0.1.1 api=8728 api-ssl=8729 ssh=2222 ros=7.16.2 identity=edge-0001
//! ready 1 devices
//! ```
//!
//! and serves until SIGINT or SIGTERM. The open-file limit is raised as far as
//! the hard limit allows; start-up fails with an explanation when it cannot
//! cover three listening sockets per device plus connections.
//!
//! # What a device answers
//!
//! `/login` (plaintext since 6.43, or challenge/response when switched to
//! legacy), then the poll set: `/system/resource`, `/system/identity`,
//! `/system/routerboard` (a `!trap` on CHR), `/system/health`, `/interface`,
//! `/ip/address`, `/ip/neighbor` (the neighbours are other simulated devices),
//! `/interface/wireless/registration-table` (v6) or
//! `/interface/wifi/registration-table` (v7), `/ip/dhcp-server/lease`,
//! `/system/package/update`, `/log` — each as `…/print` (or `…/getall`), with
//! `.tag`, `.proplist`, `=count-only=` and query words. Streams:
//! `/interface/monitor-traffic =interface=ether1,ether2 [=once=]`,
//! `/log/listen`, `/interface/listen`, stopped with `/cancel =tag=N` (the
//! stream ends with `!trap =category=2 =message=interrupted` and `!done`).
//! `/quit` answers `!fatal` `session terminated on request`. Commands before
//! login get `!fatal` `not logged in` and the connection closes. 7.18 and
//! later answer empty results with `!empty` before `!done`.
//!
//! Data is seeded: the same `--seed` gives the same boards, versions,
//! identities, MACs, neighbours and leases. Counters, uptime and the log grow
//! with wall-clock time; cpu-load and temperatures wander.
//!
//! # SSH
//!
//! Password login with the API user and password, an ed25519 host key per
//! device (new at every start, replaced by `rotate-host-key`), and exec of
//! `/export [terse] [show-sensitive|hide-sensitive]`: v7 hides secrets unless
//! `show-sensitive` is given, v6 includes them and refuses `show-sensitive`
//! with `expected end of command (line 1 column 9)`. The export starts with
//! the timestamp comment in the version's format (the current time), then
//! `# software id`, `# model` and `# serial number`, then the configuration
//! lines, with CRLF line endings. See `ssh.rs` and `export.rs`.
//!
//! # MNDP
//!
//! With `--mndp-to ADDR:PORT` (a loopback address; [`Fleet::announce_mndp`]
//! in-process) every device sends its MikroTik Neighbor Discovery
//! announcement there, at start and every `--mndp-interval` seconds (default
//! 30), from a UDP socket bound to the device's own address: identity,
//! ether1's MAC, version, platform `MikroTik`, board, uptime, software ID,
//! interface `ether1` and the device's address as IPv4. A device taken
//! `down` stops announcing. Devices answer nothing over MNDP, not even
//! refresh requests. Off by default.
//!
//! # Faults
//!
//! The control port (`--control 127.0.0.1:PORT`) takes one command per line;
//! see [`control`] for the list. The same operations are [`Op`]s applied with
//! [`Fleet::apply`] (or [`Fleet::control`] with the text form) in-process.
//!
//! # Configuration model
//!
//! Each device keeps its configuration as lines ([`Fleet::config_lines`]) and
//! the time of the last change ([`Fleet::last_config_change`]); `/export`
//! over SSH serves them.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

mod api;
pub mod catalog;
mod commands;
mod config;
pub mod control;
mod data;
mod device;
mod export;
mod fleet;
mod format;
mod generate;
mod host_key;
mod login;
mod mndp;
pub mod ops;
mod request;
mod shell;
mod ssh;
mod tls;

pub use fleet::{DeviceInfo, Fleet, FleetConfig, MAX_DEVICES, OpError, RosMix, StartError, ensure_file_limit};
pub use generate::{LayoutError, addresses};
pub use host_key::HostKeyError;
pub use login::legacy_response;
pub use mndp::AnnounceError;
pub use ops::{CounterOp, Op};
pub use outpost_routeros::frame;
pub use tls::TlsError;
