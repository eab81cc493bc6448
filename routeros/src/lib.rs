//! RouterOS API: the codec and client shared by the agent and the simulator.
//!
//! Three layers, as in the protocol itself:
//! - [`frame`]: bytes ↔ one sentence (length-prefixed words ended by an empty
//!   word), byte-exact with the RouterOS API manual, incremental and panic-free;
//! - [`connection`]: reads and writes whole sentences on any byte stream, with
//!   a bounded buffer;
//! - [`sentence`]: commands ([`Command`]) and replies ([`Reply`]) with meaning,
//!   and above them the [`Client`] — one logged-in session multiplexing
//!   commands by `.tag` — and [`command`], one module per polled command,
//!   turning rows into typed structs with [`values`] parsing RouterOS formats.
//!
//! Invariants:
//! - nothing read from the network panics: framing is capped (16 MiB per word,
//!   32 MiB per sentence), text is decoded lossily, values parse to `None`
//!   when malformed, and a missing or malformed field never fails a whole poll;
//! - memory per command is bounded: at most
//!   a fixed number of rows wait in a command's queue, and a stream whose
//!   consumer falls behind is cancelled rather than buffered;
//! - a command never waits forever: [`Client::run`] has a timeout, after which
//!   the command is cancelled on the router; a broken session fails every
//!   command in flight at once;
//! - TLS trusts a router by its certificate's SHA-256 fingerprint (first use,
//!   then pinned), never by a certificate chain (see [`tls`]).
//!
//! ```no_run
//! use outpost_routeros::{Client, ClientConfig, command};
//!
//! # async fn poll() -> Result<(), outpost_routeros::Error> {
//! let cfg = ClientConfig::tls("192.0.2.1", "monitor", "secret", None);
//! let (client, info) = Client::connect(cfg).await?;
//! // First use: store `info.tls_fingerprint` and pass it as the pin next time.
//! let resource = command::resource::fetch(&client).await?;
//! let interfaces = command::interfaces::fetch(&client).await?;
//! # let _ = (info, resource, interfaces);
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here depends on the agent's runtime, so the simulator can use it
//! without depending on the agent.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod client;
pub mod command;
pub mod connection;
pub mod error;
pub mod export_mask;
pub mod fingerprint;
pub mod frame;
mod login;
pub mod sentence;
pub mod tls;
pub mod values;

pub use client::{Client, ClientConfig, ReplyStream, SessionInfo, Transport};
pub use error::{Error, ErrorKind};
pub use fingerprint::Fingerprint;
pub use login::LoginKind;
pub use sentence::{Attrs, Command, Reply, Tagged};
