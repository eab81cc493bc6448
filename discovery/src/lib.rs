//! Network discovery for the site agent.
//!
//! Each module is one way of learning about hosts; the agent's discovery job
//! combines their findings into host records for the outbox.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

/// MikroTik Neighbor Discovery Protocol: announcements parsed, encoded and received.
pub mod mndp;
/// Import of nmap's XML output (`nmap -oX`), including scans stopped before the end.
pub mod nmap_xml;
/// MAC address vendors from the IEEE registry, generated at build time.
pub mod oui;
