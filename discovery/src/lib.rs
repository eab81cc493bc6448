//! Network discovery for the site agent.
//!
//! Each module is one way of learning about hosts; the agent's discovery job
//! combines their findings into host records for the outbox.
// Only the Windows IP Helper calls need `unsafe`, in one module that allows it.
#![deny(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

/// A light look at open ports: SSH and other greetings, HTTP Server, RouterOS API.
pub mod banner;
/// A host as a scan reports it.
pub mod host;
/// ICMP echo sweep, raw or unprivileged.
pub mod icmp;
/// MikroTik Neighbor Discovery Protocol: announcements parsed, encoded and received.
pub mod mndp;
/// Neighbour tables (ARP, NDP) and this host's connected networks.
pub mod neighbours;
/// Import of nmap's XML output (`nmap -oX`), including scans stopped before the end.
pub mod nmap_xml;
/// MAC address vendors from the IEEE registry, generated at build time.
pub mod oui;
/// Port lists: nmap's top 100 plus MikroTik's.
pub mod ports;
/// The scan-wide probe rate limit.
pub mod rate;
/// Reverse DNS.
pub mod rdns;
/// One discovery scan, phase by phase.
pub mod scan;
/// SNMP v2c/v3 queries: system group, interfaces, LLDP neighbours.
pub mod snmp;
/// Scan targets: CIDRs expanded within a cap, connected networks by default.
pub mod targets;
/// TCP connect scan.
pub mod tcp;
/// Adaptive probe timeouts.
pub mod timing;
