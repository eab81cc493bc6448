//! `AgentConfig::parse` on arbitrary text, as `agent.toml` from the data
//! directory: it must never panic, and a configuration it accepts must be
//! accepted again after being written out the way `AgentConfig::save` does.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use outpost_agent::config::AgentConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("agent.toml");
    let Ok(config) = AgentConfig::parse(path, text) else {
        return;
    };
    assert!(config.collector_addr().is_ok());
    let written = toml::to_string(&config).expect("an accepted configuration serializes");
    let again = AgentConfig::parse(path, &written)
        .unwrap_or_else(|e| panic!("written configuration {written:?} does not parse back: {e}"));
    assert_eq!(again, config);
});
