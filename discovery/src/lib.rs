//! Network discovery for the site agent.
//!
//! Each module is one way of learning about hosts; the agent's discovery job
//! combines their findings into host records for the outbox.

pub mod snmp;
