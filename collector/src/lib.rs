//! The Outpost collector: the commands and `serve` that wire the agent port
//! (`outpost-agent-port`) to the store (`outpost-store`), the web console
//! (`outpost-console`) and the API (`outpost-api`).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod api_token_commands;
pub mod audit_commands;
pub mod cli;
pub mod commands;
pub mod console_port;
pub mod data_dir;
pub mod device_commands;
pub mod device_import;
pub mod discovery_commands;
pub mod logging;
#[cfg(feature = "quickstart")]
pub mod quickstart;
pub mod serve;
pub mod user_commands;

#[cfg(test)]
mod discovery_tests;
