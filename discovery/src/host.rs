//! A host as a scan reports it, with the SNMP facts in a form that prints
//! as JSON (`discover --json`) and converts to the collector's records.
use std::net::IpAddr;

use crate::banner::Banner;
use crate::neighbours::format_mac;
use crate::snmp::SnmpInfo;

/// An open port and what it showed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    /// The port.
    pub port: u16,
    /// What it said.
    #[serde(flatten)]
    pub banner: Banner,
}

/// One host found.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Host {
    /// Its address.
    pub address: IpAddr,
    /// MAC address, `aa:bb:cc:dd:ee:ff`, on connected networks.
    pub mac: Option<String>,
    /// Names (reverse DNS first).
    pub names: Vec<String>,
    /// Open TCP ports, ascending.
    pub open_ports: Vec<u16>,
    /// What the open ports showed.
    pub services: Vec<Service>,
    /// How the host was seen: "icmp", "arp", "tcp".
    pub seen_by: Vec<&'static str>,
    /// Echo round trip, microseconds.
    pub rtt_us: Option<u32>,
    /// What SNMP told, when credentials were given and one worked.
    pub snmp: Option<SnmpSummary>,
    /// Why SNMP told nothing, when credentials were given and none worked.
    pub snmp_error: Option<String>,
    /// Vendor of the MAC address (IEEE registry).
    pub vendor: Option<String>,
    /// What the host announced over MNDP (MikroTik).
    pub mndp: Option<MndpSummary>,
}

impl Host {
    /// A host found at `address`, nothing else known yet.
    pub fn new(address: IpAddr) -> Self {
        Self {
            address,
            mac: None,
            names: Vec::new(),
            open_ports: Vec::new(),
            services: Vec::new(),
            seen_by: Vec::new(),
            rtt_us: None,
            snmp: None,
            snmp_error: None,
            vendor: None,
            mndp: None,
        }
    }
}

/// SNMP facts of a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnmpSummary {
    /// sysDescr.
    pub descr: String,
    /// sysObjectID, dotted.
    pub object_id: String,
    /// sysName.
    pub name: String,
    /// sysLocation.
    pub location: String,
    /// sysUpTime, hundredths of a second.
    pub uptime_ticks: u32,
    /// sysObjectID is MikroTik's.
    pub mikrotik: bool,
    /// Interfaces.
    pub interfaces: Vec<SnmpInterface>,
    /// LLDP neighbours.
    pub lldp_neighbours: Vec<SnmpLldpNeighbour>,
}

/// One interface from ifTable/ifXTable.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnmpInterface {
    /// ifIndex.
    pub index: u32,
    /// ifName.
    pub name: String,
    /// ifDescr.
    pub descr: String,
    /// ifAlias.
    pub alias: String,
    /// ifType.
    pub if_type: u32,
    /// ifPhysAddress, `aa:bb:…`, empty when none.
    pub mac: String,
    /// ifOperStatus is up.
    pub oper_up: bool,
    /// ifHighSpeed, Mbit/s.
    pub speed_mbps: u32,
}

/// One LLDP neighbour.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnmpLldpNeighbour {
    /// Local port number it was seen on.
    pub local_port: u32,
    /// Its chassis id.
    pub chassis_id: String,
    /// Its port id.
    pub port_id: String,
    /// Its port description.
    pub port_descr: String,
    /// Its system name.
    pub sys_name: String,
}

impl From<&SnmpInfo> for SnmpSummary {
    fn from(i: &SnmpInfo) -> Self {
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        Self {
            descr: text(&i.sys_descr),
            object_id: text(&i.sys_object_id),
            name: text(&i.sys_name),
            location: text(&i.sys_location),
            uptime_ticks: i.sys_uptime_ticks.unwrap_or(0),
            mikrotik: i.is_mikrotik(),
            interfaces: i
                .interfaces
                .iter()
                .map(|f| SnmpInterface {
                    index: f.index,
                    name: text(&f.name),
                    descr: text(&f.descr),
                    alias: text(&f.alias),
                    if_type: f.if_type.unwrap_or(0),
                    mac: f.mac.as_ref().map(format_mac).unwrap_or_default(),
                    oper_up: f.oper_status == Some(crate::snmp::OperStatus::Up),
                    speed_mbps: f.high_speed_mbps.unwrap_or(0),
                })
                .collect(),
            lldp_neighbours: i
                .lldp_neighbours
                .iter()
                .map(|n| SnmpLldpNeighbour {
                    local_port: n.local_port,
                    chassis_id: text(&n.chassis_id),
                    port_id: text(&n.port_id),
                    port_descr: text(&n.port_desc),
                    sys_name: text(&n.sys_name),
                })
                .collect(),
        }
    }
}

/// An MNDP announcement of a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MndpSummary {
    /// Identity (the router's name).
    pub identity: String,
    /// MAC of the announcing interface.
    pub mac: String,
    /// RouterOS version.
    pub version: String,
    /// "MikroTik".
    pub platform: String,
    /// Board name.
    pub board: String,
    /// Uptime, seconds.
    pub uptime_secs: u64,
    /// Software id.
    pub software_id: String,
    /// Interface it was sent from.
    pub interface: String,
    /// IPv4 address announced.
    pub ipv4: String,
    /// IPv6 address announced.
    pub ipv6: String,
}

impl From<&crate::mndp::Announcement> for MndpSummary {
    fn from(a: &crate::mndp::Announcement) -> Self {
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        Self {
            identity: text(&a.identity),
            mac: a.mac.as_ref().map(format_mac).unwrap_or_default(),
            version: text(&a.version),
            platform: text(&a.platform),
            board: text(&a.board),
            uptime_secs: a.uptime_secs.map_or(0, u64::from),
            software_id: text(&a.software_id),
            interface: text(&a.interface),
            ipv4: a.ipv4.map(|i| i.to_string()).unwrap_or_default(),
            ipv6: a.ipv6.map(|i| i.to_string()).unwrap_or_default(),
        }
    }
}
