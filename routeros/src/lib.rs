//! RouterOS API: the codec and client shared by the agent and the simulator.
//!
//! Three layers, as in the protocol itself:
//! - [`frame`]: bytes ↔ one sentence (length-prefixed words ended by an empty
//!   word), byte-exact with the RouterOS API manual, incremental and panic-free;
//! - [`connection`]: reads and writes whole sentences on any byte stream, with
//!   a bounded buffer.
//!
//! Nothing here depends on the agent's runtime, so the simulator can use it
//! without depending on the agent.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod connection;
pub mod frame;
