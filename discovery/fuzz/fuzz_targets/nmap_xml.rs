//! A file offered as nmap XML output: never panics, never returns more hosts
//! than the limit, and an error always says where it is within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_discovery::nmap_xml::{self, MAX_HOSTS, NmapXmlError};

fuzz_target!(|data: &[u8]| {
    match nmap_xml::parse(data) {
        Ok(scan) => assert!(scan.hosts.len() <= MAX_HOSTS),
        Err(
            NmapXmlError::Malformed { position, .. }
            | NmapXmlError::WrongRoot { position, .. }
            | NmapXmlError::MissingAttribute { position, .. }
            | NmapXmlError::InvalidAttribute { position, .. }
            | NmapXmlError::TooManyHosts { position, .. }
            | NmapXmlError::TooDeep { position, .. },
        ) => assert!(
            position.offset <= data.len() as u64,
            "{position} in {} bytes",
            data.len()
        ),
        Err(_) => {}
    }
});
