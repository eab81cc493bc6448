//! Discovery in the agent: the `discover` command an installer runs to check
//! what the agent sees, and the conversion of scan findings into the host
//! records the agent streams to the collector.
pub mod command;
pub mod import;
pub mod records;
pub mod service;
