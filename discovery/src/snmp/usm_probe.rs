//! Whether an SNMPv3 agent knows a user, asked without credentials.
//!
//! An agent rejects an unknown user and a wrong authentication digest the
//! same way on the surface: an unauthenticated Report PDU, which snmp2
//! reports for both as "not authenticated" without showing its varbind.
//! RFC 3414 §3.2 checks the user (step 3, usmStatsUnknownUserNames) before
//! the digest (step 6) and accepts any user at noAuthNoPriv as far as USM
//! is concerned, so one unauthenticated request with the user's name
//! decides: a usmStatsUnknownUserNames report means the user is unknown;
//! any other answer (net-snmp sends a Response with authorizationError)
//! means the user exists and the digest was wrong.
//!
//! Two plain-text exchanges, encoded here because snmp2's encoder is
//! private: engine discovery (empty user and engine id, answered with a
//! usmStatsUnknownEngineIDs report carrying the engine id, boots and time),
//! then a GetRequest without varbinds in the user's name. Messages
//! (RFC 3412 §6, RFC 3414 §2.4):
//!
//! ```text
//! SEQUENCE { INTEGER 3,
//!            SEQUENCE { msgID, msgMaxSize, OCTET STRING flags, INTEGER 3 (USM) },
//!            OCTET STRING (SEQUENCE { engineID, boots, time, user, authParams, privParams }),
//!            SEQUENCE { contextEngineID, contextName, PDU } }
//! ```

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use snmp2::AsnReader;
use snmp2::asn1::{TYPE_INTEGER, TYPE_OCTETSTRING, TYPE_SEQUENCE};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::value::ObjectId;

/// usmStatsUnknownUserNames.0.
const UNKNOWN_USER_NAMES: [u64; 11] = [1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0];

const GET_REQUEST: u8 = 0xa0;
const REPORT: u8 = 0xa8;
const FLAG_PRIVACY: u8 = 0x02;
const FLAG_REPORTABLE: u8 = 0x04;
/// Largest message we accept, as we announce in msgMaxSize.
const MAX_SIZE: usize = 65_507;

/// What the agent said about the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserCheck {
    /// usmStatsUnknownUserNames.
    Unknown,
    /// Not rejected by USM.
    Known,
    /// Another report, named by its first varbind.
    Report(ObjectId),
}

/// Why the check could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeError {
    /// No (parsable) answer in time.
    NoAnswer,
    /// The socket failed.
    Io(String),
}

/// Asks the agent at `target` whether it knows `user`, within `timeout` in
/// total.
pub(crate) async fn check_user(target: SocketAddr, user: &str, timeout: Duration) -> Result<UserCheck, ProbeError> {
    let deadline = Instant::now() + timeout;
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| ProbeError::Io(e.to_string()))?;
    socket
        .connect(target)
        .await
        .map_err(|e| ProbeError::Io(e.to_string()))?;
    // Ids from the clock: nothing else uses this socket, they only need to
    // differ from one run to the next.
    let base = i32::try_from(
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map_or(0, |d| d.subsec_nanos() >> 2),
    )
    .unwrap_or(1);

    let discovery = encode(base, &Usm::default(), b"");
    let engine = exchange(&socket, &discovery, base, deadline).await?;
    let usm = Usm {
        engine_id: engine.engine_id,
        boots: engine.boots,
        time: engine.time,
        user: user.as_bytes().to_vec(),
    };
    let probe = encode(base.wrapping_add(1), &usm, &usm.engine_id);
    let answer = exchange(&socket, &probe, base.wrapping_add(1), deadline).await?;
    Ok(match (answer.pdu_type, answer.first_oid) {
        (Some(REPORT), Some(oid)) if oid.0 == UNKNOWN_USER_NAMES => UserCheck::Unknown,
        (Some(REPORT), Some(oid)) => UserCheck::Report(oid),
        _ => UserCheck::Known,
    })
}

/// Sends `message` and returns the first answer carrying `msg_id`.
async fn exchange(socket: &UdpSocket, message: &[u8], msg_id: i32, deadline: Instant) -> Result<Decoded, ProbeError> {
    socket.send(message).await.map_err(|e| ProbeError::Io(e.to_string()))?;
    let mut buf = vec![0u8; MAX_SIZE];
    // Bounded by the deadline; each turn consumes one datagram.
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Err(ProbeError::NoAnswer),
            Ok(Err(e)) => return Err(ProbeError::Io(e.to_string())),
            Ok(Ok(n)) => n,
        };
        if let Some(decoded) = decode(&buf[..n])
            && decoded.msg_id == i64::from(msg_id)
        {
            return Ok(decoded);
        }
    }
}

/// The USM security parameters we send.
#[derive(Debug, Default, Clone)]
struct Usm {
    engine_id: Vec<u8>,
    boots: i64,
    time: i64,
    user: Vec<u8>,
}

/// A reportable, unauthenticated GetRequest without varbinds, with
/// msgID = request-id = `id`.
fn encode(id: i32, usm: &Usm, context_engine_id: &[u8]) -> Vec<u8> {
    let header = sequence(&[
        integer(i64::from(id)),
        integer(MAX_SIZE as i64),
        tlv(TYPE_OCTETSTRING, &[FLAG_REPORTABLE]),
        integer(3),
    ]);
    let security = sequence(&[
        tlv(TYPE_OCTETSTRING, &usm.engine_id),
        integer(usm.boots),
        integer(usm.time),
        tlv(TYPE_OCTETSTRING, &usm.user),
        tlv(TYPE_OCTETSTRING, b""),
        tlv(TYPE_OCTETSTRING, b""),
    ]);
    let pdu = tlv(
        GET_REQUEST,
        &[integer(i64::from(id)), integer(0), integer(0), sequence(&[])].concat(),
    );
    let scoped = sequence(&[
        tlv(TYPE_OCTETSTRING, context_engine_id),
        tlv(TYPE_OCTETSTRING, b""),
        pdu,
    ]);
    sequence(&[integer(3), header, tlv(TYPE_OCTETSTRING, &security), scoped])
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(TYPE_SEQUENCE, &parts.concat())
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        // Short form; the cast cannot truncate below 0x80.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        // At most 8 length bytes, so the count fits in the low 7 bits.
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Minimal two's-complement INTEGER.
fn integer(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    // Drop a leading byte while the next one carries the same sign.
    while start < 7
        && ((bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(TYPE_INTEGER, &bytes[start..])
}

/// The parts of an answer the check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decoded {
    msg_id: i64,
    engine_id: Vec<u8>,
    boots: i64,
    time: i64,
    /// `None` when the scoped PDU is encrypted.
    pdu_type: Option<u8>,
    first_oid: Option<ObjectId>,
}

/// Decodes an SNMPv3 message far enough for [`Decoded`]; `None` for
/// anything else. Never panics, whatever the bytes.
fn decode(bytes: &[u8]) -> Option<Decoded> {
    let mut message = AsnReader::from_bytes(AsnReader::from_bytes(bytes).read_raw(TYPE_SEQUENCE).ok()?);
    if message.read_asn_integer().ok()? != 3 {
        return None;
    }
    let mut header = AsnReader::from_bytes(message.read_raw(TYPE_SEQUENCE).ok()?);
    let msg_id = header.read_asn_integer().ok()?;
    let _max_size = header.read_asn_integer().ok()?;
    let flags = header.read_asn_octetstring().ok()?.first().copied().unwrap_or(0);
    let security_bytes = message.read_asn_octetstring().ok()?;
    let mut security = AsnReader::from_bytes(AsnReader::from_bytes(security_bytes).read_raw(TYPE_SEQUENCE).ok()?);
    let engine_id = security.read_asn_octetstring().ok()?.to_vec();
    let boots = security.read_asn_integer().ok()?;
    let time = security.read_asn_integer().ok()?;
    let (pdu_type, first_oid) = if flags & FLAG_PRIVACY == 0 {
        scoped_pdu(&mut message).unwrap_or((None, None))
    } else {
        (None, None)
    };
    Some(Decoded {
        msg_id,
        engine_id,
        boots,
        time,
        pdu_type,
        first_oid,
    })
}

/// The PDU type and first varbind name of a plain-text scoped PDU.
fn scoped_pdu(message: &mut AsnReader<'_>) -> Option<(Option<u8>, Option<ObjectId>)> {
    let mut scoped = AsnReader::from_bytes(message.read_raw(TYPE_SEQUENCE).ok()?);
    let _context_engine_id = scoped.read_asn_octetstring().ok()?;
    let _context_name = scoped.read_asn_octetstring().ok()?;
    let pdu_type = scoped.peek_byte().ok()?;
    let mut pdu = AsnReader::from_bytes(scoped.read_raw(pdu_type).ok()?);
    let _request_id = pdu.read_asn_integer().ok()?;
    let _error_status = pdu.read_asn_integer().ok()?;
    let _error_index = pdu.read_asn_integer().ok()?;
    let mut varbinds = AsnReader::from_bytes(pdu.read_raw(TYPE_SEQUENCE).ok()?);
    let first_oid = varbinds
        .read_raw(TYPE_SEQUENCE)
        .ok()
        .and_then(|varbind| AsnReader::from_bytes(varbind).read_asn_objectidentifier().ok())
        .and_then(|oid| ObjectId::from_snmp(&oid));
    Some((Some(pdu_type), first_oid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_are_minimal() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(127), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(-1), [0x02, 0x01, 0xff]);
        assert_eq!(integer(-129), [0x02, 0x02, 0xff, 0x7f]);
        assert_eq!(integer(65_507), [0x02, 0x03, 0x00, 0xff, 0xe3]);
    }

    #[test]
    fn long_lengths() {
        let content = vec![0u8; 300];
        assert_eq!(&tlv(0x04, &content)[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    /// Engine discovery as RFC 3414 §4 describes it, byte by byte.
    #[test]
    fn discovery_request_golden_bytes() {
        let expected: &[u8] = &[
            0x30, 0x38, // message
            0x02, 0x01, 0x03, // msgVersion 3
            0x30, 0x0e, // msgGlobalData
            0x02, 0x01, 0x2a, // msgID 42
            0x02, 0x03, 0x00, 0xff, 0xe3, // msgMaxSize 65507
            0x04, 0x01, 0x04, // msgFlags: reportable
            0x02, 0x01, 0x03, // msgSecurityModel USM
            0x04, 0x10, // msgSecurityParameters
            0x30, 0x0e, 0x04, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x04, 0x00, 0x30,
            0x11, // scopedPDU
            0x04, 0x00, 0x04, 0x00, // contextEngineID, contextName
            0xa0, 0x0b, 0x02, 0x01, 0x2a, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00, // GetRequest
        ];
        assert_eq!(encode(42, &Usm::default(), b""), expected);
    }

    /// A usmStatsUnknownUserNames report as net-snmp sends it (noAuthNoPriv,
    /// not reportable), written from RFC 3414.
    fn unknown_user_report() -> Vec<u8> {
        let engine = [0x80, 0x00, 0x1f, 0x88, 0x80, 0x01, 0x02, 0x03, 0x04];
        let security = sequence(&[
            tlv(TYPE_OCTETSTRING, &engine),
            integer(1),
            integer(4242),
            tlv(TYPE_OCTETSTRING, b"nosuch"),
            tlv(TYPE_OCTETSTRING, b""),
            tlv(TYPE_OCTETSTRING, b""),
        ]);
        let oid = [0x06, 0x0a, 0x2b, 0x06, 0x01, 0x06, 0x03, 0x0f, 0x01, 0x01, 0x03, 0x00];
        let varbind = sequence(&[oid.to_vec(), vec![0x41, 0x01, 0x05]]); // Counter32 5
        let pdu = tlv(
            REPORT,
            &[integer(7), integer(0), integer(0), sequence(&[varbind])].concat(),
        );
        sequence(&[
            integer(3),
            sequence(&[integer(7), integer(65_507), tlv(TYPE_OCTETSTRING, &[0]), integer(3)]),
            tlv(TYPE_OCTETSTRING, &security),
            sequence(&[tlv(TYPE_OCTETSTRING, &engine), tlv(TYPE_OCTETSTRING, b""), pdu]),
        ])
    }

    #[test]
    fn decodes_an_unknown_user_report() {
        let decoded = decode(&unknown_user_report()).expect("decodes");
        assert_eq!(decoded.msg_id, 7);
        assert_eq!(
            decoded.engine_id,
            [0x80, 0x00, 0x1f, 0x88, 0x80, 0x01, 0x02, 0x03, 0x04]
        );
        assert_eq!((decoded.boots, decoded.time), (1, 4242));
        assert_eq!(decoded.pdu_type, Some(REPORT));
        assert_eq!(decoded.first_oid, Some(ObjectId::new(&UNKNOWN_USER_NAMES)));
    }

    #[test]
    fn our_requests_decode_as_sent() {
        let usm = Usm {
            engine_id: vec![1, 2, 3],
            boots: 9,
            time: 300_000,
            user: b"outpost".to_vec(),
        };
        let decoded = decode(&encode(-5, &usm, &[1, 2, 3])).expect("decodes");
        assert_eq!((decoded.msg_id, decoded.boots, decoded.time), (-5, 9, 300_000));
        assert_eq!(decoded.pdu_type, Some(GET_REQUEST));
        assert_eq!(decoded.first_oid, None);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncated_reports_never_panic(cut in 0usize..120) {
            let report = unknown_user_report();
            let _ = decode(&report[..cut.min(report.len())]);
        }
    }
}
