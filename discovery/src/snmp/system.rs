//! The system group (RFC 3418): what the agent says the host is.

use super::info::SnmpInfo;
use super::value::{ObjectId, Value, VarBind};

/// system, 1.3.6.1.2.1.1.
const SYSTEM: [u64; 7] = [1, 3, 6, 1, 2, 1, 1];
const DESCR: u64 = 1;
const OBJECT_ID: u64 = 2;
const UP_TIME: u64 = 3;
const NAME: u64 = 5;
const LOCATION: u64 = 6;

/// The scalars one GET asks for.
pub(crate) fn oids() -> Vec<ObjectId> {
    [DESCR, OBJECT_ID, UP_TIME, NAME, LOCATION]
        .iter()
        .map(|&column| ObjectId::new(&SYSTEM).child(&[column, 0]))
        .collect()
}

/// Fills the system fields of a new [`SnmpInfo`] from the GET's answer;
/// anything missing, an exception or of the wrong type stays `None`.
pub(crate) fn parse(varbinds: &[VarBind]) -> SnmpInfo {
    let system = ObjectId::new(&SYSTEM);
    let mut info = SnmpInfo::default();
    for VarBind { oid, value } in varbinds {
        if value.is_exception() {
            continue;
        }
        match oid.strip_prefix(&system) {
            Some([DESCR, 0]) => info.sys_descr = value.as_text(),
            Some([OBJECT_ID, 0]) => {
                info.sys_object_id = match value {
                    Value::ObjectId(oid) => Some(oid.to_string()),
                    _ => None,
                }
            }
            Some([UP_TIME, 0]) => info.sys_uptime_ticks = value.as_u32(),
            Some([NAME, 0]) => info.sys_name = value.as_text(),
            Some([LOCATION, 0]) => info.sys_location = value.as_text(),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(column: u64, value: Value) -> VarBind {
        VarBind {
            oid: ObjectId::new(&SYSTEM).child(&[column, 0]),
            value,
        }
    }

    #[test]
    fn a_routeros_answer() {
        let info = parse(&[
            bind(DESCR, Value::OctetString(b"RouterOS RB4011iGS+".to_vec())),
            bind(OBJECT_ID, Value::ObjectId(ObjectId::new(&[1, 3, 6, 1, 4, 1, 14988, 1]))),
            bind(UP_TIME, Value::Timeticks(123_456)),
            bind(NAME, Value::OctetString(b"core-1".to_vec())),
            bind(LOCATION, Value::NoSuchObject),
        ]);
        assert_eq!(info.sys_descr.as_deref(), Some("RouterOS RB4011iGS+"));
        assert_eq!(info.sys_object_id.as_deref(), Some("1.3.6.1.4.1.14988.1"));
        assert_eq!(info.sys_uptime_ticks, Some(123_456));
        assert_eq!(info.sys_name.as_deref(), Some("core-1"));
        assert_eq!(info.sys_location, None);
        assert!(info.is_mikrotik());
    }

    #[test]
    fn wrong_types_and_strangers_are_ignored() {
        let info = parse(&[
            bind(OBJECT_ID, Value::OctetString(b"1.3.6".to_vec())),
            bind(UP_TIME, Value::OctetString(b"soon".to_vec())),
            VarBind {
                oid: ObjectId::new(&[1, 3, 6, 1, 2, 1, 1, 5, 1]),
                value: Value::OctetString(b"not .0".to_vec()),
            },
        ]);
        assert_eq!(
            (info.sys_object_id, info.sys_uptime_ticks, info.sys_name),
            (None, None, None)
        );
    }
}
