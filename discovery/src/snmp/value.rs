//! Owned object identifiers and values, copied out of snmp2's PDUs (which
//! borrow the session's receive buffer) as soon as an answer arrives.

use std::fmt;

/// An object identifier as its arcs; ordered as SNMP orders OIDs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectId(pub(crate) Vec<u64>);

impl ObjectId {
    pub(crate) fn new(arcs: &[u64]) -> Self {
        Self(arcs.to_vec())
    }

    /// This OID with `arcs` appended.
    pub(crate) fn child(&self, arcs: &[u64]) -> Self {
        Self(self.0.iter().chain(arcs).copied().collect())
    }

    /// Copies an OID from an answer; `None` if an arc does not fit in 64
    /// bits.
    pub(crate) fn from_snmp(oid: &snmp2::Oid<'_>) -> Option<Self> {
        oid.iter().map(|arcs| Self(arcs.collect()))
    }

    /// The OID for a request; `None` if snmp2 cannot encode it (first arc
    /// above 6 or second above 39), which only an agent's OID could be.
    pub(crate) fn to_snmp(&self) -> Option<snmp2::Oid<'static>> {
        match self.0.as_slice() {
            [first, second, ..] if *first < 3 && *second < 40 => snmp2::Oid::from(&self.0).ok(),
            _ => None,
        }
    }

    /// The arcs after `prefix`, if this OID starts with it.
    pub(crate) fn strip_prefix(&self, prefix: &ObjectId) -> Option<&[u64]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for arc in &self.0 {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A varbind's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    ObjectId(ObjectId),
    IpAddress([u8; 4]),
    Counter32(u32),
    Unsigned32(u32),
    Timeticks(u32),
    Counter64(u64),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
    /// A type discovery has no use for (Opaque, nested PDUs…).
    Other,
}

impl Value {
    pub(crate) fn from_snmp(value: &snmp2::Value<'_>) -> Self {
        use snmp2::Value as V;
        match value {
            V::Integer(n) => Self::Integer(*n),
            V::OctetString(bytes) => Self::OctetString(bytes.to_vec()),
            V::ObjectIdentifier(oid) => ObjectId::from_snmp(oid).map_or(Self::Other, Self::ObjectId),
            V::IpAddress(ip) => Self::IpAddress(*ip),
            V::Counter32(n) => Self::Counter32(*n),
            V::Unsigned32(n) => Self::Unsigned32(*n),
            V::Timeticks(n) => Self::Timeticks(*n),
            V::Counter64(n) => Self::Counter64(*n),
            V::Null => Self::Null,
            V::NoSuchObject => Self::NoSuchObject,
            V::NoSuchInstance => Self::NoSuchInstance,
            V::EndOfMibView => Self::EndOfMibView,
            _ => Self::Other,
        }
    }

    /// Text from an OCTET STRING: invalid UTF-8 replaced, trailing NULs
    /// (some agents send C strings) and surrounding whitespace dropped.
    pub(crate) fn as_text(&self) -> Option<String> {
        match self {
            Self::OctetString(bytes) => {
                let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                Some(String::from_utf8_lossy(&bytes[..end]).trim().to_owned())
            }
            _ => None,
        }
    }

    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::OctetString(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// An unsigned number of any of the integer types, if it fits in u32.
    pub(crate) fn as_u32(&self) -> Option<u32> {
        match *self {
            Self::Integer(n) => u32::try_from(n).ok(),
            Self::Counter32(n) | Self::Unsigned32(n) | Self::Timeticks(n) => Some(n),
            Self::Counter64(n) => u32::try_from(n).ok(),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::Integer(n) => Some(n),
            Self::Counter32(n) | Self::Unsigned32(n) | Self::Timeticks(n) => Some(i64::from(n)),
            Self::Counter64(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// Whether the agent has no value here (an exception instead of data).
    pub(crate) fn is_exception(&self) -> bool {
        matches!(self, Self::NoSuchObject | Self::NoSuchInstance | Self::EndOfMibView)
    }
}

/// One name–value pair of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarBind {
    pub(crate) oid: ObjectId,
    pub(crate) value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_round_trip_through_snmp2() {
        for arcs in [
            &[1, 3, 6, 1, 2, 1, 1, 1, 0][..],
            &[1, 0, 8802, 1, 1, 2, 1, 4, 1, 1, 5],
            &[1, 3, 6, 1, 4, 1, 14988, 1, 4_294_967_295],
        ] {
            let oid = ObjectId::new(arcs);
            let encoded = oid.to_snmp().expect("encodable");
            assert_eq!(ObjectId::from_snmp(&encoded), Some(oid));
        }
        assert_eq!(ObjectId::new(&[1]).to_snmp(), None);
        assert_eq!(ObjectId::new(&[3, 1]).to_snmp(), None);
    }

    #[test]
    fn oids_order_as_snmp_does() {
        let a = ObjectId::new(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 9]);
        let b = ObjectId::new(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 10]);
        let c = ObjectId::new(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 3]);
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1.3.6.1.2.1.2.2.1.2.10");
        let column = ObjectId::new(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 2]);
        assert_eq!(b.strip_prefix(&column), Some(&[10u64][..]));
        assert_eq!(c.strip_prefix(&column), None);
    }

    #[test]
    fn text_drops_trailing_nuls_and_bad_utf8_does_not_fail() {
        assert_eq!(
            Value::OctetString(b"ether1\0\0".to_vec()).as_text().as_deref(),
            Some("ether1")
        );
        assert_eq!(
            Value::OctetString(vec![0xff, b'a']).as_text().as_deref(),
            Some("\u{fffd}a")
        );
        assert_eq!(Value::Integer(3).as_text(), None);
    }
}
