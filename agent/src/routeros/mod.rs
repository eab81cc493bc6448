//! RouterOS devices: the agent polls the devices the collector assigned to it,
//! each over one persistent API session.
pub mod export;
pub mod rates;
pub mod schedule;
