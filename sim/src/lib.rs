//! Outpost site simulator.
//!
//! It will grow into a set of simulated RouterOS devices speaking the real API
//! protocol. It starts with the protocol's framing layer ([`frame`]): words and
//! sentences, byte-exact with the RouterOS API manual. The framing has no
//! dependency on the agent's runtime, so the agent's RouterOS client can share
//! it without the simulator depending on the agent.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod frame;
