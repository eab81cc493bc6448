//! Network discovery for the site agent.
//!
//! Each module is one way of learning about hosts; the agent's discovery job
//! combines their findings into host records for the outbox.

pub mod banner;
pub mod host;
pub mod icmp;
pub mod neighbours;
pub mod ports;
pub mod rate;
pub mod rdns;
pub mod scan;
pub mod snmp;
pub mod targets;
pub mod tcp;
pub mod timing;
