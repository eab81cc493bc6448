//! Scan findings as the collector and scripts see them: the `DiscoveredHost`
//! records streamed through the outbox, and the JSON of `discover --json`.
use outpost_discovery::host::{MndpSummary, SnmpSummary};
use outpost_discovery::scan::{Host, ScanOutcome};
use outpost_proto::agent_v1::{DiscoveredHost, LldpNeighbor, MndpInfo, OpenPort, SnmpInterface, SnmpSystem};
use serde_json::{Value, json};

/// A host as a record for the collector.
pub fn record(h: &Host) -> DiscoveredHost {
    DiscoveredHost {
        address: h.address.to_string(),
        mac: h.mac.clone().unwrap_or_default(),
        vendor: h.vendor.clone().unwrap_or_default(),
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
        snmp: snmp_record(h.snmp.as_ref(), h.snmp_error.as_deref()),
        mndp: h.mndp.as_ref().map(mndp_record),
        seen_by: h.seen_by.iter().map(|s| (*s).to_owned()).collect(),
        rtt_us: h.rtt_us.unwrap_or(0),
        os_matches: Vec::new(),
    }
}

fn mndp_record(m: &MndpSummary) -> MndpInfo {
    MndpInfo {
        identity: m.identity.clone(),
        mac: m.mac.clone(),
        version: m.version.clone(),
        platform: m.platform.clone(),
        board: m.board.clone(),
        uptime_secs: m.uptime_secs,
        software_id: m.software_id.clone(),
        interface: m.interface.clone(),
        ipv4: m.ipv4.clone(),
        ipv6: m.ipv6.clone(),
    }
}

fn snmp_record(s: Option<&SnmpSummary>, error: Option<&str>) -> Option<SnmpSystem> {
    match (s, error) {
        (Some(s), _) => Some(SnmpSystem {
            descr: s.descr.clone(),
            object_id: s.object_id.clone(),
            name: s.name.clone(),
            location: s.location.clone(),
            uptime_ticks: u64::from(s.uptime_ticks),
            interfaces: s
                .interfaces
                .iter()
                .map(|i| SnmpInterface {
                    index: i.index,
                    name: i.name.clone(),
                    descr: i.descr.clone(),
                    alias: i.alias.clone(),
                    if_type: i.if_type,
                    mac: i.mac.clone(),
                    oper_up: i.oper_up,
                    speed_mbps: u64::from(i.speed_mbps),
                })
                .collect(),
            lldp_neighbors: s
                .lldp_neighbours
                .iter()
                .map(|n| LldpNeighbor {
                    local_port: n.local_port.to_string(),
                    chassis_id: n.chassis_id.clone(),
                    port_id: n.port_id.clone(),
                    port_descr: n.port_descr.clone(),
                    sys_name: n.sys_name.clone(),
                })
                .collect(),
            error: String::new(),
        }),
        (None, Some(e)) => Some(SnmpSystem {
            error: e.to_owned(),
            ..SnmpSystem::default()
        }),
        (None, None) => None,
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
                "vendor": h.vendor,
                "names": h.names,
                "open_ports": h.open_ports,
                "services": h.services,
                "snmp": h.snmp,
                "snmp_error": h.snmp_error,
                "mndp": h.mndp,
                "seen_by": h.seen_by,
                "rtt_us": h.rtt_us,
            })
        })
        .collect();
    json!({ "hosts": hosts, "stats": outcome.stats })
}
