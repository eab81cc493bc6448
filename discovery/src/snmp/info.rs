//! What an SNMP query learns about a host.

use super::error::SnmpError;

/// MikroTik's enterprise number subtree, 1.3.6.1.4.1.14988.
pub const MIKROTIK_ENTERPRISE: &str = "1.3.6.1.4.1.14988";

/// A host as its SNMP agent describes it. Every field is optional: agents
/// leave things out, and a missing value never fails a query.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SnmpInfo {
    /// sysDescr.0.
    pub sys_descr: Option<String>,
    /// sysObjectID.0, dotted (`1.3.6.1.4.1.14988.1`).
    pub sys_object_id: Option<String>,
    /// sysName.0.
    pub sys_name: Option<String>,
    /// sysUpTime.0 in hundredths of a second (of the agent, not the host).
    pub sys_uptime_ticks: Option<u32>,
    /// sysLocation.0.
    pub sys_location: Option<String>,
    /// ifTable joined with ifXTable, by ifIndex.
    pub interfaces: Vec<Interface>,
    /// lldpRemTable.
    pub lldp_neighbours: Vec<LldpNeighbour>,
    /// Tables that could not be read completely; what they yielded is kept.
    pub incomplete: Vec<Incomplete>,
}

impl SnmpInfo {
    /// Whether sysObjectID is in MikroTik's enterprise subtree.
    pub fn is_mikrotik(&self) -> bool {
        self.sys_object_id.as_deref().is_some_and(|oid| {
            oid.strip_prefix(MIKROTIK_ENTERPRISE)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }
}

/// One row of ifTable/ifXTable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Interface {
    /// ifIndex.
    pub index: u32,
    /// ifName (ifXTable), e.g. `ether1`.
    pub name: Option<String>,
    /// ifDescr.
    pub descr: Option<String>,
    /// ifAlias (ifXTable): the operator's comment.
    pub alias: Option<String>,
    /// ifType (IANAifType): 6 Ethernet, 24 loopback, 71 802.11, 131 tunnel…
    pub if_type: Option<u32>,
    /// ifPhysAddress when it is a 6-byte, non-zero MAC.
    pub mac: Option<[u8; 6]>,
    /// ifOperStatus.
    pub oper_status: Option<OperStatus>,
    /// ifHighSpeed (ifXTable) in Mbit/s.
    pub high_speed_mbps: Option<u32>,
}

/// ifOperStatus (RFC 2863).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperStatus {
    /// 1.
    Up,
    /// 2.
    Down,
    /// 3.
    Testing,
    /// 4.
    Unknown,
    /// 5.
    Dormant,
    /// 6.
    NotPresent,
    /// 7.
    LowerLayerDown,
    /// Anything else the agent sent.
    Other(i64),
}

impl From<i64> for OperStatus {
    fn from(n: i64) -> Self {
        match n {
            1 => Self::Up,
            2 => Self::Down,
            3 => Self::Testing,
            4 => Self::Unknown,
            5 => Self::Dormant,
            6 => Self::NotPresent,
            7 => Self::LowerLayerDown,
            other => Self::Other(other),
        }
    }
}

/// One row of lldpRemTable (LLDP-MIB): a neighbour seen on a local port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LldpNeighbour {
    /// lldpRemTimeMark (index part 1).
    pub time_mark: u32,
    /// lldpRemLocalPortNum (index part 2): the local port it was seen on.
    pub local_port: u32,
    /// lldpRemIndex (index part 3).
    pub index: u32,
    /// lldpRemChassisIdSubtype: 4 MAC, 5 network address, 7 local…
    pub chassis_id_subtype: Option<u32>,
    /// lldpRemChassisId, readable: a MAC as `aa:bb:…`, an IPv4 address
    /// dotted, printable text as is, anything else in hex.
    pub chassis_id: Option<String>,
    /// lldpRemPortIdSubtype: 3 MAC, 4 network address, 5 interface name…
    pub port_id_subtype: Option<u32>,
    /// lldpRemPortId, rendered like [`chassis_id`](Self::chassis_id).
    pub port_id: Option<String>,
    /// lldpRemPortDesc.
    pub port_desc: Option<String>,
    /// lldpRemSysName.
    pub sys_name: Option<String>,
}

/// A table that was not read completely, and why.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Incomplete {
    /// `ifTable`, `ifXTable` or `lldpRemTable`.
    pub table: &'static str,
    /// What went wrong.
    pub error: SnmpError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mikrotik_by_enterprise_subtree() {
        let with = |oid: &str| SnmpInfo {
            sys_object_id: Some(oid.into()),
            ..SnmpInfo::default()
        };
        assert!(with("1.3.6.1.4.1.14988.1").is_mikrotik());
        assert!(with("1.3.6.1.4.1.14988").is_mikrotik());
        assert!(!with("1.3.6.1.4.1.149881.1").is_mikrotik());
        assert!(!with("1.3.6.1.4.1.8072.3.2.10").is_mikrotik());
        assert!(!SnmpInfo::default().is_mikrotik());
    }

    #[test]
    fn oper_status_numbers() {
        assert_eq!(OperStatus::from(1), OperStatus::Up);
        assert_eq!(OperStatus::from(7), OperStatus::LowerLayerDown);
        assert_eq!(OperStatus::from(99), OperStatus::Other(99));
    }
}
