//! Discovery reports as the store takes them: the agent port checks each
//! `DiscoveredHosts` and `ScanFinished` observation and turns it into one of
//! these (addresses parsed, MACs normalised, text bounded), and
//! [`crate::Store::ingest`] reconciles them inside the batch's transaction.
//!
//! The SNMP interface, LLDP and MNDP structs are also what the views give
//! back: the store keeps them as JSON text columns.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ScanId;
use super::addr::{MacAddr, Target};

/// One discovery report of a batch.
#[derive(Clone, Debug)]
pub struct DiscoveryReport {
    /// The agent's sequence number.
    pub seq: i64,
    /// When the agent observed it, agent clock.
    pub observed_at_ms: i64,
    /// What it says.
    pub body: DiscoveryBody,
}

/// What a discovery report says.
#[derive(Clone, Debug)]
pub enum DiscoveryBody {
    /// Hosts a scan found (one chunk of them).
    Hosts(HostsChunk),
    /// The scan ended.
    Finished(ScanFinishedRow),
}

impl DiscoveryBody {
    /// The scan it is about.
    pub fn scan_id(&self) -> &ScanId {
        match self {
            Self::Hosts(h) => &h.scan_id,
            Self::Finished(f) => &f.scan_id,
        }
    }

    /// The job it names ("" for none).
    pub fn job_id(&self) -> &str {
        match self {
            Self::Hosts(h) => &h.job_id,
            Self::Finished(f) => &f.job_id,
        }
    }
}

/// Hosts one scan found, possibly one of several chunks.
#[derive(Clone, Debug)]
pub struct HostsChunk {
    /// The scan.
    pub scan_id: ScanId,
    /// The job that ran it, "" when none (the agent's default scan).
    pub job_id: String,
    /// TCP ports probed on every host; empty when unknown (then no port is
    /// ever considered closed).
    pub scanned_ports: Vec<u16>,
    /// What was found.
    pub hosts: Vec<HostRecord>,
}

/// One host as a scan saw it at one address.
#[derive(Clone, Debug)]
pub struct HostRecord {
    /// The address it answered at.
    pub address: IpAddr,
    /// Its MAC, when the agent is on its network.
    pub mac: Option<MacAddr>,
    /// Vendor from the MAC's OUI.
    pub vendor: String,
    /// Reverse DNS, sysName, MNDP identity, nmap host names.
    pub names: Vec<String>,
    /// Open ports.
    pub open_ports: Vec<PortRecord>,
    /// SNMP system group, when SNMP was tried.
    pub snmp: Option<SnmpRecord>,
    /// Its MNDP announcement, when it sent one.
    pub mndp: Option<MndpFacts>,
    /// How it was seen: icmp, tcp, arp, snmp, mndp, nmap.
    pub seen_by: Vec<String>,
    /// Echo round trip, when pinged.
    pub rtt_us: Option<i64>,
    /// Best OS match (nmap), with its accuracy in percent.
    pub os: Option<(String, i64)>,
}

/// An open port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortRecord {
    /// Port number.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Service name (`ssh`, `routeros-api`).
    pub service: String,
    /// Product.
    pub product: String,
    /// Version.
    pub version: String,
    /// First line the service said.
    pub banner: String,
}

/// What SNMP answered (or why it did not).
#[derive(Clone, Debug, Default)]
pub struct SnmpRecord {
    /// sysDescr.
    pub descr: String,
    /// sysObjectID, dotted.
    pub object_id: String,
    /// sysName.
    pub name: String,
    /// sysLocation.
    pub location: String,
    /// sysUpTime, hundredths of a second.
    pub uptime_ticks: i64,
    /// ifTable.
    pub interfaces: Vec<SnmpInterface>,
    /// LLDP neighbours.
    pub lldp: Vec<LldpNeighbor>,
    /// Why SNMP gave nothing; empty on success.
    pub error: String,
}

/// An interface SNMP listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnmpInterface {
    /// ifIndex.
    pub index: i64,
    /// ifName.
    pub name: String,
    /// ifDescr.
    pub descr: String,
    /// ifAlias.
    pub alias: String,
    /// ifType.
    pub if_type: i64,
    /// ifPhysAddress.
    pub mac: String,
    /// ifOperStatus is up.
    pub oper_up: bool,
    /// Speed.
    pub speed_mbps: i64,
}

/// An LLDP neighbour SNMP listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LldpNeighbor {
    /// Local port.
    pub local_port: String,
    /// Neighbour's chassis id.
    pub chassis_id: String,
    /// Neighbour's port id.
    pub port_id: String,
    /// Neighbour's port description.
    pub port_descr: String,
    /// Neighbour's system name.
    pub sys_name: String,
}

/// A MikroTik Neighbour Discovery announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MndpFacts {
    /// Identity.
    pub identity: String,
    /// MAC of the announcing interface.
    pub mac: String,
    /// RouterOS version.
    pub version: String,
    /// Platform ("MikroTik").
    pub platform: String,
    /// Board.
    pub board: String,
    /// Uptime.
    pub uptime_secs: i64,
    /// Software id.
    pub software_id: String,
    /// Interface it announced on.
    pub interface: String,
    /// Its IPv4 address.
    pub ipv4: String,
    /// Its IPv6 address.
    pub ipv6: String,
}

/// The end of a scan.
#[derive(Clone, Debug)]
pub struct ScanFinishedRow {
    /// The scan.
    pub scan_id: ScanId,
    /// The job, "" when none.
    pub job_id: String,
    /// `scan` or `nmap-import`.
    pub source: String,
    /// What it covered.
    pub targets: Vec<Target>,
    /// Agent clock.
    pub started_ms: i64,
    /// Agent clock.
    pub finished_ms: i64,
    /// Addresses probed.
    pub addresses: i64,
    /// Hosts found.
    pub hosts_found: i64,
    /// Stopped early: hosts it did not report are not missed.
    pub partial: bool,
    /// What went wrong.
    pub warnings: Vec<String>,
    /// `raw`, `dgram` or `none`.
    pub icmp: String,
    /// Probes sent.
    pub probes_sent: i64,
}
