//! The Outpost collector: agent port (mTLS gRPC), store, console.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod agent_port;
pub mod cli;
pub mod commands;
pub mod console;
pub mod data_dir;
pub mod logging;
#[cfg(feature = "quickstart")]
pub mod quickstart;
pub mod serve;
pub mod store;
