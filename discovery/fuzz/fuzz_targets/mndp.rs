//! A UDP payload on port 5678: never panics; an announcement that parses
//! encodes to bytes that parse to the same announcement (or, for one with
//! sequence 0 and no fields, to the refresh request it is identical to).
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_discovery::mndp::{Announcement, MndpError, encode, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(a) = parse(data) else { return };
    // Lossy decoding can grow a string past what one TLV holds (an invalid
    // byte becomes a 3-byte U+FFFD); encode then cuts it, by design.
    let fits = [
        &a.identity,
        &a.version,
        &a.platform,
        &a.software_id,
        &a.board,
        &a.interface,
    ]
    .iter()
    .all(|s| s.as_ref().is_none_or(|s| s.len() <= usize::from(u16::MAX)));
    if !fits {
        return;
    }
    let again = parse(&encode(&a));
    if a == (Announcement {
        seq: 0,
        ..Announcement::default()
    }) {
        assert_eq!(again, Err(MndpError::RefreshRequest));
    } else {
        assert_eq!(again, Ok(a));
    }
});
