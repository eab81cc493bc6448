//! Outpost site simulator.
//!
//! It will grow into a set of simulated RouterOS devices speaking the real API
//! protocol, built on the shared codec in `outpost-routeros`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub use outpost_routeros::frame;
