//! Bytes from a router: the frame decoder splits them into sentences and each
//! is parsed as a reply. Never panics; every sentence decoded consumes at
//! least one byte and no more than there is; what parses re-encodes to the
//! bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_routeros::frame;
use outpost_routeros::sentence::Tagged;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((words, used))) = frame::decode_sentence(rest) {
        assert!(used > 0 && used <= rest.len(), "consumed {used} of {}", rest.len());
        // Canonical prefixes re-encode byte for byte; non-canonical ones (a
        // short length in a long prefix) are accepted but shorter when re-encoded.
        assert!(frame::encode_sentence(&words).len() <= used);
        let _ = Tagged::parse(&words);
        rest = &rest[used..];
    }
});
