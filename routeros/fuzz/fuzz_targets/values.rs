//! Every value parser, and every command's row parser, on arbitrary text:
//! never panics. Fingerprints that parse print back to text that parses to
//! the same fingerprint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_routeros::sentence::Attrs;
use outpost_routeros::{Fingerprint, command, values};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = values::duration(&text);
    let _ = values::version(&text);
    let _ = values::signal(&text);
    let _ = values::rate(&text);
    let _ = values::pair(&text);
    let _ = values::boolean(&text);
    let _ = values::count(&text);
    let _ = values::datetime(&text);
    if let Ok(fp) = text.parse::<Fingerprint>() {
        let printed = fp.to_string();
        assert_eq!(
            printed.parse::<Fingerprint>().ok(),
            Some(fp),
            "{printed:?} does not parse back"
        );
    }

    // Lines `key=value` make one row; a blank line starts the next.
    let rows: Vec<Attrs> = text
        .split("\n\n")
        .map(|block| block.lines().filter_map(|line| line.split_once('=')).collect())
        .collect();
    let _ = command::resource::parse(&rows);
    let _ = command::identity::parse(&rows);
    let _ = command::routerboard::parse(&rows);
    let _ = command::health::parse(&rows);
    let _ = command::interfaces::parse(&rows);
    let _ = command::addresses::parse(&rows);
    let _ = command::neighbors::parse(&rows);
    let _ = command::wireless_registrations::parse(&rows);
    let _ = command::wifi_registrations::parse(&rows);
    let _ = command::dhcp_leases::parse(&rows);
    let _ = command::package_update::parse(&rows);
    let lines = command::log::parse(&rows);
    let _ = command::log::after(lines, &text);
    for row in &rows {
        let _ = command::monitor_traffic::parse(row);
    }
});
