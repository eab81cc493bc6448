//! MNDP packets ↔ [`Announcement`]s.
//!
//! Wire format (all integers big-endian unless said otherwise):
//!
//! ```text
//! 0      2      4
//! +------+------+----------------------------------------------+
//! | hdr  | seq  | TLV: type u16, length u16, value (length B) …|
//! +------+------+----------------------------------------------+
//! ```
//!
//! The two header bytes have no documented meaning: they are ignored when
//! parsing and written as zero. TLV types: 1 MAC (6 bytes), 5 identity,
//! 7 version, 8 platform, 10 uptime (u32 seconds, little-endian), 11
//! software-id, 12 board, 14 unpack (1 byte), 15 IPv6 (16 bytes), 16
//! interface name, 17 IPv4 (4 bytes). Unknown types are skipped; when a type
//! repeats, the later value wins.
//!
//! A packet of exactly four zero bytes is a refresh request ("announce
//! yourselves now"), not an announcement: [`parse`] returns
//! [`MndpError::RefreshRequest`] for it. An announcement with sequence 0 and
//! no fields encodes to those same four bytes, so it reads back as a refresh
//! request; every other announcement reads back as itself.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The refresh request: a packet of four zero bytes.
pub const REFRESH_REQUEST: [u8; 4] = [0; 4];

/// Header (2 bytes) plus sequence number (2 bytes).
const HEADER_LEN: usize = 4;
/// TLV type plus length.
const TLV_HEADER_LEN: usize = 4;

const T_MAC: u16 = 1;
const T_IDENTITY: u16 = 5;
const T_VERSION: u16 = 7;
const T_PLATFORM: u16 = 8;
const T_UPTIME: u16 = 10;
const T_SOFTWARE_ID: u16 = 11;
const T_BOARD: u16 = 12;
const T_UNPACK: u16 = 14;
const T_IPV6: u16 = 15;
const T_INTERFACE: u16 = 16;
const T_IPV4: u16 = 17;

/// What a MikroTik device says about itself in one MNDP packet. Every field
/// is optional: devices send different sets depending on RouterOS version
/// and configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Announcement {
    /// Sequence number of the announcement, counted by the sender.
    pub seq: u16,
    /// MAC address of the sending interface.
    pub mac: Option<[u8; 6]>,
    /// `/system identity` name.
    pub identity: Option<String>,
    /// RouterOS version, e.g. `7.16.2 (stable)`.
    pub version: Option<String>,
    /// Platform, `MikroTik` for RouterOS.
    pub platform: Option<String>,
    /// Uptime in whole seconds (see [`Announcement::uptime`]).
    pub uptime_secs: Option<u32>,
    /// RouterOS software ID (licence key ID).
    pub software_id: Option<String>,
    /// Board name, e.g. `RB5009UG+S+`.
    pub board: Option<String>,
    /// Package compression flag as sent by the device.
    pub unpack: Option<u8>,
    /// IPv6 address of the sending interface.
    pub ipv6: Option<Ipv6Addr>,
    /// Name of the sending interface, e.g. `ether1`.
    pub interface: Option<String>,
    /// IPv4 address of the sending interface.
    pub ipv4: Option<Ipv4Addr>,
}

impl Announcement {
    /// The uptime as a [`Duration`].
    pub fn uptime(&self) -> Option<Duration> {
        self.uptime_secs.map(|s| Duration::from_secs(u64::from(s)))
    }
}

/// Why a packet is not an announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MndpError {
    /// The packet is a refresh request (four zero bytes), which asks devices
    /// to announce themselves; it carries no announcement. Listeners ignore it.
    #[error("refresh request, not an announcement")]
    RefreshRequest,
    /// Shorter than the 4-byte header.
    #[error("packet of {len} bytes is shorter than the 4-byte MNDP header")]
    TooShort {
        /// Packet length.
        len: usize,
    },
    /// Fewer than 4 bytes left where a TLV header should start.
    #[error("truncated TLV header at byte {offset}: {remaining} bytes left, 4 needed")]
    TruncatedTlv {
        /// Offset of the TLV in the packet.
        offset: usize,
        /// Bytes left from that offset.
        remaining: usize,
    },
    /// A TLV's length runs past the end of the packet.
    #[error("TLV {} at byte {offset} says {length} bytes but only {remaining} follow", TlvName(*tlv_type))]
    TlvOverrun {
        /// TLV type.
        tlv_type: u16,
        /// Offset of the TLV in the packet.
        offset: usize,
        /// Length the TLV claims.
        length: usize,
        /// Bytes after the TLV header.
        remaining: usize,
    },
    /// A fixed-size field (MAC, uptime, unpack, IPv4, IPv6) has the wrong length.
    #[error("TLV {} at byte {offset} is {length} bytes, expected {expected}", TlvName(*tlv_type))]
    BadLength {
        /// TLV type.
        tlv_type: u16,
        /// Offset of the TLV in the packet.
        offset: usize,
        /// Length found.
        length: usize,
        /// Length the type requires.
        expected: usize,
    },
}

/// Shows a TLV type with its meaning, e.g. `1 (MAC)`.
struct TlvName(u16);

impl std::fmt::Display for TlvName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            T_MAC => "MAC",
            T_IDENTITY => "identity",
            T_VERSION => "version",
            T_PLATFORM => "platform",
            T_UPTIME => "uptime",
            T_SOFTWARE_ID => "software-id",
            T_BOARD => "board",
            T_UNPACK => "unpack",
            T_IPV6 => "IPv6",
            T_INTERFACE => "interface",
            T_IPV4 => "IPv4",
            _ => "unknown",
        };
        write!(f, "{} ({name})", self.0)
    }
}

/// Parses one MNDP packet.
pub fn parse(packet: &[u8]) -> Result<Announcement, MndpError> {
    if packet == REFRESH_REQUEST {
        return Err(MndpError::RefreshRequest);
    }
    let Some((header, mut rest)) = packet.split_first_chunk::<HEADER_LEN>() else {
        return Err(MndpError::TooShort { len: packet.len() });
    };
    let mut out = Announcement {
        seq: u16::from_be_bytes([header[2], header[3]]),
        ..Announcement::default()
    };
    let mut offset = HEADER_LEN;
    while !rest.is_empty() {
        let Some((tlv, after)) = rest.split_first_chunk::<TLV_HEADER_LEN>() else {
            return Err(MndpError::TruncatedTlv {
                offset,
                remaining: rest.len(),
            });
        };
        let tlv_type = u16::from_be_bytes([tlv[0], tlv[1]]);
        let length = usize::from(u16::from_be_bytes([tlv[2], tlv[3]]));
        let Some((value, next)) = after.split_at_checked(length) else {
            return Err(MndpError::TlvOverrun {
                tlv_type,
                offset,
                length,
                remaining: after.len(),
            });
        };
        let fixed = Field {
            tlv_type,
            offset,
            value,
        };
        let text = || Some(String::from_utf8_lossy(value).into_owned());
        match tlv_type {
            T_MAC => out.mac = Some(fixed.array()?),
            T_IDENTITY => out.identity = text(),
            T_VERSION => out.version = text(),
            T_PLATFORM => out.platform = text(),
            T_UPTIME => {
                out.uptime_secs = Some(u32::from_le_bytes(fixed.array()?));
                // = Some(u32::from_le_bytes(bytes));
            }
            T_SOFTWARE_ID => out.software_id = text(),
            T_BOARD => out.board = text(),
            T_UNPACK => {
                let [b] = fixed.array()?;
                out.unpack = Some(b);
            }
            T_IPV6 => {
                out.ipv6 = Some(Ipv6Addr::from(fixed.array::<16>()?));
            }
            T_INTERFACE => out.interface = text(),
            T_IPV4 => {
                out.ipv4 = Some(Ipv4Addr::from(fixed.array::<4>()?));
            }
            // Newer RouterOS releases add types; the known ones still count.
            _ => {}
        }
        offset += TLV_HEADER_LEN + length;
        rest = next;
    }
    Ok(out)
}

/// A TLV value and where it came from, for errors.
struct Field<'a> {
    tlv_type: u16,
    offset: usize,
    value: &'a [u8],
}

impl Field<'_> {
    /// The value of a fixed-size type, or an error naming the TLV.
    fn array<const N: usize>(&self) -> Result<[u8; N], MndpError> {
        self.value.try_into().map_err(|_| MndpError::BadLength {
            tlv_type: self.tlv_type,
            offset: self.offset,
            length: self.value.len(),
            expected: N,
        })
    }
}

/// Encodes an announcement as a packet, TLVs in type order. Strings longer
/// than a TLV can hold (65,535 bytes) are cut at the last whole character
/// that fits.
pub fn encode(a: &Announcement) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&a.seq.to_be_bytes());
    if let Some(mac) = &a.mac {
        tlv(&mut out, T_MAC, mac);
    }
    text(&mut out, T_IDENTITY, a.identity.as_deref());
    text(&mut out, T_VERSION, a.version.as_deref());
    text(&mut out, T_PLATFORM, a.platform.as_deref());
    if let Some(secs) = a.uptime_secs {
        tlv(&mut out, T_UPTIME, &secs.to_le_bytes());
    }
    text(&mut out, T_SOFTWARE_ID, a.software_id.as_deref());
    text(&mut out, T_BOARD, a.board.as_deref());
    if let Some(b) = a.unpack {
        tlv(&mut out, T_UNPACK, &[b]);
    }
    if let Some(ip) = a.ipv6 {
        tlv(&mut out, T_IPV6, &ip.octets());
    }
    text(&mut out, T_INTERFACE, a.interface.as_deref());
    if let Some(ip) = a.ipv4 {
        tlv(&mut out, T_IPV4, &ip.octets());
    }
    out
}

fn text(out: &mut Vec<u8>, tlv_type: u16, value: Option<&str>) {
    let Some(s) = value else { return };
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    tlv(out, tlv_type, &s.as_bytes()[..end]);
}

/// Callers keep `value` within `u16::MAX` bytes.
fn tlv(out: &mut Vec<u8>, tlv_type: u16, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&tlv_type.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&value[..usize::from(len)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An announcement as RouterOS 7 sends it, written byte by byte from the
    /// layout in the module docs rather than with [`encode`].
    fn golden() -> Vec<u8> {
        let mut p = vec![
            0x00, 0x00, // header
            0x01, 0x02, // seq 258
            0x00, 0x01, 0x00, 0x06, 0x4C, 0x5E, 0x0C, 0x11, 0x22, 0x33, // MAC
            0x00, 0x05, 0x00, 0x04, b'e', b'd', b'g', b'e', // identity
            0x00, 0x07, 0x00, 0x06, b'7', b'.', b'1', b'6', b'.', b'2', // version
            0x00, 0x08, 0x00, 0x08, b'M', b'i', b'k', b'r', b'o', b'T', b'i', b'k', // platform
            0x00, 0x0A, 0x00, 0x04, 0x10, 0x0E, 0x00, 0x00, // uptime 3600 s, little-endian
            0x00, 0x0B, 0x00, 0x09, b'A', b'B', b'C', b'D', b'-', b'1', b'2', b'3', b'4', // software-id
            0x00, 0x0C, 0x00, 0x05, b'h', b'A', b'P', b' ', b'c', // board
            0x00, 0x0E, 0x00, 0x01, 0x01, // unpack
            0x00, 0x0F, 0x00, 0x10, // IPv6 fe80::4e5e:cff:fe11:2233
        ];
        p.extend_from_slice(&[
            0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x4E, 0x5E, 0x0C, 0xFF, 0xFE, 0x11, 0x22, 0x33,
        ]);
        p.extend_from_slice(&[0x00, 0x10, 0x00, 0x06, b'e', b't', b'h', b'e', b'r', b'1']); // interface
        p.extend_from_slice(&[0x00, 0x11, 0x00, 0x04, 192, 168, 88, 1]); // IPv4
        p
    }

    fn golden_announcement() -> Announcement {
        Announcement {
            seq: 258,
            mac: Some([0x4C, 0x5E, 0x0C, 0x11, 0x22, 0x33]),
            identity: Some("edge".into()),
            version: Some("7.16.2".into()),
            platform: Some("MikroTik".into()),
            uptime_secs: Some(3600),
            software_id: Some("ABCD-1234".into()),
            board: Some("hAP c".into()),
            unpack: Some(1),
            ipv6: Some("fe80::4e5e:cff:fe11:2233".parse().unwrap()),
            interface: Some("ether1".into()),
            ipv4: Some(Ipv4Addr::new(192, 168, 88, 1)),
        }
    }

    #[test]
    fn parses_golden_bytes() {
        let a = parse(&golden()).unwrap();
        assert_eq!(a, golden_announcement());
        assert_eq!(a.uptime(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn encodes_golden_bytes() {
        assert_eq!(encode(&golden_announcement()), golden());
    }

    #[test]
    fn refresh_request_is_its_own_kind() {
        assert_eq!(parse(&[0, 0, 0, 0]), Err(MndpError::RefreshRequest));
        // Same length, not all zero: an announcement without fields.
        assert_eq!(
            parse(&[0, 0, 0, 7]),
            Ok(Announcement {
                seq: 7,
                ..Announcement::default()
            })
        );
    }

    #[test]
    fn header_bytes_are_ignored() {
        let mut p = golden();
        p[0] = 0xAB;
        p[1] = 0xCD;
        assert_eq!(parse(&p).unwrap(), golden_announcement());
    }

    #[test]
    fn unknown_types_are_skipped() {
        let p = [
            0, 0, 0, 1, //
            0x00, 0x63, 0x00, 0x03, 1, 2, 3, // type 99
            0x00, 0x05, 0x00, 0x01, b'x', // identity
            0x00, 0x64, 0x00, 0x00, // type 100, empty
        ];
        let a = parse(&p).unwrap();
        assert_eq!(a.identity.as_deref(), Some("x"));
        assert_eq!(a.mac, None);
    }

    #[test]
    fn strings_need_not_be_utf8() {
        let p = [0, 0, 0, 1, 0x00, 0x05, 0x00, 0x03, b'a', 0xFF, b'b'];
        assert_eq!(parse(&p).unwrap().identity.as_deref(), Some("a\u{FFFD}b"));
    }

    #[test]
    fn short_packets_are_errors() {
        assert_eq!(parse(&[]), Err(MndpError::TooShort { len: 0 }));
        assert_eq!(parse(&[0, 0, 1]), Err(MndpError::TooShort { len: 3 }));
    }

    #[test]
    fn truncated_tlv_header_names_its_offset() {
        let p = [0, 0, 0, 1, 0x00, 0x05, 0x00, 0x01, b'x', 0x00, 0x07];
        assert_eq!(
            parse(&p),
            Err(MndpError::TruncatedTlv {
                offset: 9,
                remaining: 2
            })
        );
    }

    #[test]
    fn overrunning_tlv_names_type_and_offset() {
        let p = [0, 0, 0, 1, 0x00, 0x05, 0x00, 0x08, b'a', b'b'];
        let e = parse(&p).unwrap_err();
        assert_eq!(
            e,
            MndpError::TlvOverrun {
                tlv_type: 5,
                offset: 4,
                length: 8,
                remaining: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "TLV 5 (identity) at byte 4 says 8 bytes but only 2 follow"
        );
    }

    #[test]
    fn wrong_size_fixed_fields_are_errors() {
        for (tlv_type, bad_len, expected) in [(1u16, 5usize, 6usize), (17, 3, 4), (15, 4, 16), (10, 8, 4), (14, 0, 1)] {
            let mut p = vec![0, 0, 0, 1];
            p.extend_from_slice(&tlv_type.to_be_bytes());
            p.extend_from_slice(&(bad_len as u16).to_be_bytes());
            p.resize(p.len() + bad_len, 0xAA);
            assert_eq!(
                parse(&p),
                Err(MndpError::BadLength {
                    tlv_type,
                    offset: 4,
                    length: bad_len,
                    expected
                }),
                "type {tlv_type}"
            );
        }
        let e = parse(&[0, 0, 0, 1, 0, 1, 0, 2, 1, 2]).unwrap_err();
        assert_eq!(e.to_string(), "TLV 1 (MAC) at byte 4 is 2 bytes, expected 6");
    }

    #[test]
    fn later_duplicates_win() {
        let p = [0, 0, 0, 1, 0, 5, 0, 1, b'a', 0, 5, 0, 1, b'b'];
        assert_eq!(parse(&p).unwrap().identity.as_deref(), Some("b"));
    }

    #[test]
    fn overlong_strings_are_cut_at_a_character() {
        let a = Announcement {
            seq: 1,
            identity: Some("é".repeat(40_000)),
            ..Announcement::default()
        };
        let back = parse(&encode(&a)).unwrap();
        let identity = back.identity.unwrap();
        assert_eq!(identity.len(), 65_534);
        assert!(identity.chars().all(|c| c == 'é'));
    }

    fn announcement() -> impl Strategy<Value = Announcement> {
        let text = || proptest::option::of(".{0,40}");
        (
            (
                any::<u16>(),
                proptest::option::of(any::<[u8; 6]>()),
                text(),
                text(),
                text(),
                proptest::option::of(any::<u32>()),
            ),
            (
                text(),
                text(),
                proptest::option::of(any::<u8>()),
                proptest::option::of(any::<[u8; 16]>().prop_map(Ipv6Addr::from)),
                text(),
                proptest::option::of(any::<[u8; 4]>().prop_map(Ipv4Addr::from)),
            ),
        )
            .prop_map(
                |(
                    (seq, mac, identity, version, platform, uptime_secs),
                    (software_id, board, unpack, ipv6, interface, ipv4),
                )| Announcement {
                    seq,
                    mac,
                    identity,
                    version,
                    platform,
                    uptime_secs,
                    software_id,
                    board,
                    unpack,
                    ipv6,
                    interface,
                    ipv4,
                },
            )
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(a in announcement()) {
            let bytes = encode(&a);
            if a == (Announcement { seq: 0, ..Announcement::default() }) {
                prop_assert_eq!(parse(&bytes), Err(MndpError::RefreshRequest));
            } else {
                prop_assert_eq!(parse(&bytes), Ok(a));
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(a) = parse(&bytes) {
                // Whatever parses re-encodes to something that parses the same.
                let again = parse(&encode(&a));
                prop_assert!(again == Ok(a.clone()) || again == Err(MndpError::RefreshRequest));
            }
        }

        #[test]
        fn tlv_soup_never_panics(
            seq in any::<u16>(),
            tlvs in proptest::collection::vec((0u16..20, proptest::collection::vec(any::<u8>(), 0..20)), 0..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut p = vec![0, 0];
            p.extend_from_slice(&seq.to_be_bytes());
            for (t, v) in &tlvs {
                p.extend_from_slice(&t.to_be_bytes());
                p.extend_from_slice(&(v.len() as u16).to_be_bytes());
                p.extend_from_slice(v);
            }
            let _ = parse(&p);
            let _ = parse(&p[..cut.index(p.len() + 1)]);
        }
    }
}
