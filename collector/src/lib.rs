//! The Outpost collector: agent port (mTLS gRPC), store, console.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod store;
