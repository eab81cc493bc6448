//! Scan findings as the collector and scripts see them: the `DiscoveredHost`
//! records streamed through the outbox, and the JSON of `discover --json`.
use outpost_discovery::scan::{Host, ScanOutcome};
use outpost_proto::agent_v1::{DiscoveredHost, OpenPort};
use serde_json::{Value, json};

/// A host as a record for the collector.
pub fn record(h: &Host) -> DiscoveredHost {
    DiscoveredHost {
        address: h.address.to_string(),
        mac: h.mac.clone().unwrap_or_default(),
        vendor: String::new(),
        names: h.names.clone(),
        open_ports: h
            .services
            .iter()
            .map(|s| OpenPort {
                port: u32::from(s.port),
                protocol: "tcp".into(),
                service: s.banner.service.clone(),
                product: s.banner.product.clone(),
                version: s.banner.version.clone(),
                banner: s.banner.banner.clone(),
            })
            .collect(),
        snmp: None,
        mndp: None,
        seen_by: h.seen_by.iter().map(|s| (*s).to_owned()).collect(),
        rtt_us: h.rtt_us.unwrap_or(0),
        os_matches: Vec::new(),
    }
}

/// `discover --json`: exactly one object, `{"hosts": [...], "stats": {...}}`.
pub fn json(outcome: &ScanOutcome) -> Value {
    let hosts: Vec<Value> = outcome
        .hosts
        .iter()
        .map(|h| {
            json!({
                "address": h.address.to_string(),
                "mac": h.mac,
                "vendor": Value::Null,
                "names": h.names,
                "open_ports": h.open_ports,
                "services": h.services,
                "snmp": Value::Null,
                "mndp": Value::Null,
                "seen_by": h.seen_by,
                "rtt_us": h.rtt_us,
            })
        })
        .collect();
    json!({ "hosts": hosts, "stats": outcome.stats })
}
