//! Turning column walks into interfaces and LLDP neighbours.
//!
//! Rows are joined by their index. A row with a malformed index (wrong
//! number of arcs, or an arc above 2^32) is dropped, and a value of the
//! wrong type leaves its field empty; neither fails the query.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::info::{Interface, LldpNeighbour, OperStatus};
use super::value::ObjectId;
use super::walk::Rows;

/// ifEntry, 1.3.6.1.2.1.2.2.1.
const IF_ENTRY: [u64; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
/// ifXEntry, 1.3.6.1.2.1.31.1.1.1.
const IF_X_ENTRY: [u64; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
/// lldpRemEntry, 1.0.8802.1.1.2.1.4.1.1.
const LLDP_REM_ENTRY: [u64; 10] = [1, 0, 8802, 1, 1, 2, 1, 4, 1, 1];

/// An interface column we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfField {
    Descr,
    Type,
    PhysAddress,
    OperStatus,
    Name,
    HighSpeed,
    Alias,
}

impl IfField {
    /// ifTable's columns, then ifXTable's.
    pub(crate) const ALL: [IfField; 7] = [
        Self::Descr,
        Self::Type,
        Self::PhysAddress,
        Self::OperStatus,
        Self::Name,
        Self::HighSpeed,
        Self::Alias,
    ];

    pub(crate) fn table(self) -> &'static str {
        match self {
            Self::Descr | Self::Type | Self::PhysAddress | Self::OperStatus => "ifTable",
            Self::Name | Self::HighSpeed | Self::Alias => "ifXTable",
        }
    }

    pub(crate) fn oid(self) -> ObjectId {
        match self {
            Self::Descr => ObjectId::new(&IF_ENTRY).child(&[2]),
            Self::Type => ObjectId::new(&IF_ENTRY).child(&[3]),
            Self::PhysAddress => ObjectId::new(&IF_ENTRY).child(&[6]),
            Self::OperStatus => ObjectId::new(&IF_ENTRY).child(&[8]),
            Self::Name => ObjectId::new(&IF_X_ENTRY).child(&[1]),
            Self::HighSpeed => ObjectId::new(&IF_X_ENTRY).child(&[15]),
            Self::Alias => ObjectId::new(&IF_X_ENTRY).child(&[18]),
        }
    }
}

/// An lldpRemTable column we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LldpField {
    ChassisIdSubtype,
    ChassisId,
    PortIdSubtype,
    PortId,
    PortDesc,
    SysName,
}

impl LldpField {
    /// Subtypes first, so the IDs can be rendered when they arrive.
    pub(crate) const ALL: [LldpField; 6] = [
        Self::ChassisIdSubtype,
        Self::ChassisId,
        Self::PortIdSubtype,
        Self::PortId,
        Self::PortDesc,
        Self::SysName,
    ];

    pub(crate) fn oid(self) -> ObjectId {
        let column = match self {
            Self::ChassisIdSubtype => 4,
            Self::ChassisId => 5,
            Self::PortIdSubtype => 6,
            Self::PortId => 7,
            Self::PortDesc => 8,
            Self::SysName => 9,
        };
        ObjectId::new(&LLDP_REM_ENTRY).child(&[column])
    }
}

/// Joins interface columns by ifIndex, in ifIndex order.
pub(crate) fn interfaces(columns: &[(IfField, Rows)]) -> Vec<Interface> {
    let mut by_index: BTreeMap<u32, Interface> = BTreeMap::new();
    for (field, rows) in columns {
        for (index, value) in rows {
            let [arc] = index.as_slice() else { continue };
            let Ok(index) = u32::try_from(*arc) else { continue };
            let interface = by_index.entry(index).or_insert_with(|| Interface {
                index,
                ..Interface::default()
            });
            match field {
                IfField::Descr => interface.descr = value.as_text(),
                IfField::Type => interface.if_type = value.as_u32(),
                IfField::PhysAddress => interface.mac = value.as_bytes().and_then(mac),
                IfField::OperStatus => interface.oper_status = value.as_i64().map(OperStatus::from),
                IfField::Name => interface.name = value.as_text(),
                IfField::HighSpeed => interface.high_speed_mbps = value.as_u32(),
                IfField::Alias => interface.alias = value.as_text().filter(|a| !a.is_empty()),
            }
        }
    }
    by_index.into_values().collect()
}

/// A 6-byte, non-zero physical address.
fn mac(bytes: &[u8]) -> Option<[u8; 6]> {
    let mac: [u8; 6] = bytes.try_into().ok()?;
    (mac != [0; 6]).then_some(mac)
}

/// Joins lldpRemTable columns by (timeMark, localPortNum, index).
pub(crate) fn lldp_neighbours(columns: &[(LldpField, Rows)]) -> Vec<LldpNeighbour> {
    let mut by_index: BTreeMap<(u32, u32, u32), LldpNeighbour> = BTreeMap::new();
    let mut raw_ids: BTreeMap<(u32, u32, u32, bool), Vec<u8>> = BTreeMap::new();
    for (field, rows) in columns {
        for (index, value) in rows {
            let Some(key) = lldp_index(index) else { continue };
            let neighbour = by_index.entry(key).or_insert_with(|| LldpNeighbour {
                time_mark: key.0,
                local_port: key.1,
                index: key.2,
                ..LldpNeighbour::default()
            });
            match field {
                LldpField::ChassisIdSubtype => neighbour.chassis_id_subtype = value.as_u32(),
                LldpField::PortIdSubtype => neighbour.port_id_subtype = value.as_u32(),
                LldpField::ChassisId => {
                    if let Some(raw) = value.as_bytes() {
                        raw_ids.insert((key.0, key.1, key.2, true), raw.to_vec());
                    }
                }
                LldpField::PortId => {
                    if let Some(raw) = value.as_bytes() {
                        raw_ids.insert((key.0, key.1, key.2, false), raw.to_vec());
                    }
                }
                LldpField::PortDesc => neighbour.port_desc = value.as_text(),
                LldpField::SysName => neighbour.sys_name = value.as_text(),
            }
        }
    }
    // Rendered last: an ID's meaning depends on its subtype column.
    for ((time_mark, local_port, index, chassis), raw) in raw_ids {
        let Some(neighbour) = by_index.get_mut(&(time_mark, local_port, index)) else {
            continue;
        };
        if chassis {
            // Chassis ID subtypes: 4 macAddress, 5 networkAddress.
            neighbour.chassis_id = Some(render_id(&raw, neighbour.chassis_id_subtype, 4, 5));
        } else {
            // Port ID subtypes: 3 macAddress, 4 networkAddress.
            neighbour.port_id = Some(render_id(&raw, neighbour.port_id_subtype, 3, 4));
        }
    }
    by_index.into_values().collect()
}

fn lldp_index(index: &[u64]) -> Option<(u32, u32, u32)> {
    let [time_mark, local_port, remote] = index else {
        return None;
    };
    Some((
        u32::try_from(*time_mark).ok()?,
        u32::try_from(*local_port).ok()?,
        u32::try_from(*remote).ok()?,
    ))
}

/// An LLDP chassis or port ID as text: a MAC or network address (IANA
/// address family 1 IPv4, 2 IPv6, then the address) when its subtype says
/// so, printable text as is, anything else as colon-separated hex.
fn render_id(raw: &[u8], subtype: Option<u32>, mac_subtype: u32, address_subtype: u32) -> String {
    if subtype == Some(mac_subtype)
        && let Ok(mac) = <[u8; 6]>::try_from(raw)
    {
        return hex(&mac);
    }
    if subtype == Some(address_subtype) {
        match raw {
            [1, a, b, c, d] => return Ipv4Addr::new(*a, *b, *c, *d).to_string(),
            [2, rest @ ..] if rest.len() == 16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(rest);
                return Ipv6Addr::from(octets).to_string();
            }
            _ => {}
        }
    }
    match std::str::from_utf8(raw) {
        Ok(text) if !text.is_empty() && !text.chars().any(char::is_control) => text.to_owned(),
        _ => hex(raw),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::value::Value;

    fn text(s: &str) -> Value {
        Value::OctetString(s.as_bytes().to_vec())
    }

    #[test]
    fn interfaces_join_both_tables_by_index() {
        let columns = vec![
            (IfField::Descr, vec![(vec![1], text("lo")), (vec![2], text("eth0\0"))]),
            (
                IfField::Type,
                vec![(vec![1], Value::Integer(24)), (vec![2], Value::Integer(6))],
            ),
            (
                IfField::PhysAddress,
                vec![
                    (vec![1], Value::OctetString(vec![])),
                    (vec![2], Value::OctetString(vec![2, 0x77, 1, 0, 1, 0])),
                ],
            ),
            (
                IfField::OperStatus,
                vec![(vec![1], Value::Integer(1)), (vec![2], Value::Integer(7))],
            ),
            (IfField::Name, vec![(vec![2], text("eth0"))]),
            (IfField::HighSpeed, vec![(vec![2], Value::Unsigned32(10_000))]),
            (IfField::Alias, vec![(vec![1], text("")), (vec![2], text("uplink"))]),
        ];
        let ifs = interfaces(&columns);
        assert_eq!(ifs.len(), 2);
        assert_eq!(ifs[0].index, 1);
        assert_eq!(ifs[0].mac, None);
        assert_eq!(ifs[0].alias, None);
        assert_eq!(ifs[0].if_type, Some(24));
        let eth = &ifs[1];
        assert_eq!(eth.descr.as_deref(), Some("eth0"));
        assert_eq!(eth.name.as_deref(), Some("eth0"));
        assert_eq!(eth.alias.as_deref(), Some("uplink"));
        assert_eq!(eth.mac, Some([2, 0x77, 1, 0, 1, 0]));
        assert_eq!(eth.oper_status, Some(OperStatus::LowerLayerDown));
        assert_eq!(eth.high_speed_mbps, Some(10_000));
    }

    #[test]
    fn malformed_rows_are_dropped_not_fatal() {
        let columns = vec![
            (
                IfField::Descr,
                vec![
                    (vec![1, 2], text("two arcs")),
                    (vec![1 << 40], text("too big")),
                    (vec![3], text("ok")),
                ],
            ),
            (IfField::Type, vec![(vec![3], text("not a number"))]),
            (IfField::PhysAddress, vec![(vec![3], Value::OctetString(vec![0; 6]))]),
        ];
        let ifs = interfaces(&columns);
        assert_eq!(ifs.len(), 1);
        assert_eq!((ifs[0].index, ifs[0].if_type, ifs[0].mac), (3, None, None));
    }

    #[test]
    fn lldp_rows_by_three_part_index_with_ids_by_subtype() {
        let mikrotik = vec![0, 7, 2];
        let switch = vec![0, 8, 5];
        let columns = vec![
            (
                LldpField::ChassisIdSubtype,
                vec![
                    (mikrotik.clone(), Value::Integer(4)),
                    (switch.clone(), Value::Integer(5)),
                ],
            ),
            (
                LldpField::ChassisId,
                vec![
                    (mikrotik.clone(), Value::OctetString(vec![0x48, 0x8f, 0x5a, 1, 2, 3])),
                    (switch.clone(), Value::OctetString(vec![1, 192, 0, 2, 7])),
                ],
            ),
            (
                LldpField::PortIdSubtype,
                vec![
                    (mikrotik.clone(), Value::Integer(5)),
                    (switch.clone(), Value::Integer(3)),
                ],
            ),
            (
                LldpField::PortId,
                vec![
                    (mikrotik.clone(), text("ether2")),
                    (
                        switch.clone(),
                        Value::OctetString(vec![0, 0x11, 0x22, 0x33, 0x44, 0x55]),
                    ),
                ],
            ),
            (LldpField::PortDesc, vec![(mikrotik.clone(), text("ether2"))]),
            (
                LldpField::SysName,
                vec![(mikrotik.clone(), text("MikroTik")), (vec![1, 2], text("bad index"))],
            ),
        ];
        let neighbours = lldp_neighbours(&columns);
        assert_eq!(neighbours.len(), 2);
        let m = &neighbours[0];
        assert_eq!((m.time_mark, m.local_port, m.index), (0, 7, 2));
        assert_eq!(m.chassis_id.as_deref(), Some("48:8f:5a:01:02:03"));
        assert_eq!(m.port_id.as_deref(), Some("ether2"));
        assert_eq!(m.sys_name.as_deref(), Some("MikroTik"));
        let s = &neighbours[1];
        assert_eq!(s.local_port, 8);
        assert_eq!(s.chassis_id.as_deref(), Some("192.0.2.7"));
        assert_eq!(s.port_id.as_deref(), Some("00:11:22:33:44:55"));
    }

    #[test]
    fn ids_without_a_known_subtype() {
        assert_eq!(render_id(b"sw1", None, 4, 5), "sw1");
        assert_eq!(render_id(&[0, 1, 0xff], Some(7), 4, 5), "00:01:ff");
        assert_eq!(render_id(&[1, 2, 3, 4, 5, 6], None, 4, 5), "01:02:03:04:05:06");
        let v6 = [[2].as_slice(), &Ipv6Addr::LOCALHOST.octets()].concat();
        assert_eq!(render_id(&v6, Some(5), 4, 5), "::1");
    }

    #[test]
    fn column_oids() {
        assert_eq!(IfField::Name.oid().to_string(), "1.3.6.1.2.1.31.1.1.1.1");
        assert_eq!(IfField::OperStatus.oid().to_string(), "1.3.6.1.2.1.2.2.1.8");
        assert_eq!(LldpField::SysName.oid().to_string(), "1.0.8802.1.1.2.1.4.1.1.9");
    }
}
