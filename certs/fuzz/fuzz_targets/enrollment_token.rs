//! `EnrollmentToken::from_str` on arbitrary text: never panics, and whatever
//! parses prints back to text that parses to the same token.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use outpost_certs::token::EnrollmentToken;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(token) = EnrollmentToken::from_str(text) else {
        return;
    };
    let printed = token.to_string();
    let again = EnrollmentToken::from_str(&printed)
        .unwrap_or_else(|e| panic!("printed token {printed:?} does not parse back: {e}"));
    assert_eq!(again, token, "token changed through {printed:?}");
    assert_eq!(again.to_string(), printed, "printing is not stable");
});
