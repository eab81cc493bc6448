//! Scan findings as the collector and scripts see them: the `DiscoveredHost`
//! records streamed through the outbox, and the JSON of `discover --json`.
use outpost_discovery::host::{MndpSummary, SnmpSummary};
use outpost_discovery::neighbours::format_mac;
use outpost_discovery::nmap_xml::{HostState, NmapScan, PortState as NmapPortState, Protocol};
use outpost_discovery::scan::{Host, ScanOutcome, ScanStats};
use outpost_proto::agent_v1::observation::Body;
use outpost_proto::agent_v1::{
    DiscoveredHost, DiscoveredHosts, LldpNeighbor, MndpInfo, OpenPort, OsMatch, ScanFinished, SnmpInterface, SnmpSystem,
};
use prost::Message as _;
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

/// Largest `DiscoveredHosts` chunk, encoded: well under the collector's
/// limit for one observation.
const CHUNK_BYTES: usize = 512 * 1024;

/// The hosts of a scan as `DiscoveredHosts` records of at most
/// [`CHUNK_BYTES`] each (none when no host was found).
pub fn chunks(scan_id: &str, job_id: &str, scanned_ports: &[u32], hosts: &[Host]) -> Vec<DiscoveredHosts> {
    chunk_records(scan_id, job_id, scanned_ports, hosts.iter().map(record))
}

fn chunk_records(
    scan_id: &str,
    job_id: &str,
    scanned_ports: &[u32],
    hosts: impl Iterator<Item = DiscoveredHost>,
) -> Vec<DiscoveredHosts> {
    let empty = || DiscoveredHosts {
        scan_id: scan_id.into(),
        job_id: job_id.into(),
        scanned_ports: scanned_ports.to_vec(),
        hosts: Vec::new(),
    };
    let mut out = Vec::new();
    let mut current = empty();
    let mut size = current.encoded_len();
    for h in hosts {
        let n = h.encoded_len() + 8;
        if !current.hosts.is_empty() && size + n > CHUNK_BYTES {
            out.push(std::mem::replace(&mut current, empty()));
            size = current.encoded_len();
        }
        size += n;
        current.hosts.push(h);
    }
    if !current.hosts.is_empty() {
        out.push(current);
    }
    out
}

/// The `ScanFinished` record of a scan.
pub fn finished(
    scan_id: &str,
    job_id: &str,
    source: &str,
    targets: Vec<String>,
    started_ms: i64,
    stats: &ScanStats,
    warnings: Vec<String>,
) -> ScanFinished {
    ScanFinished {
        scan_id: scan_id.into(),
        job_id: job_id.into(),
        source: source.into(),
        targets,
        started_ms,
        finished_ms: crate::now_ms(),
        addresses: u32::try_from(stats.addresses).unwrap_or(u32::MAX),
        hosts_found: u32::try_from(stats.hosts_up).unwrap_or(u32::MAX),
        partial: false,
        warnings,
        icmp: stats.icmp.into(),
        probes_sent: stats.probes_sent,
    }
}

/// Job and source of nmap imports, files and scheduled runs alike.
pub const NMAP_JOB: &str = "nmap-import";

/// An nmap scan as records: its up hosts, then a `ScanFinished` that covers
/// no targets (the collector cannot tell what nmap was asked to scan, so no
/// host counts as missed). A file cut short never gets here: the parser
/// refuses it.
pub fn from_nmap(scan: &NmapScan) -> Vec<Body> {
    let scan_id = uuid::Uuid::new_v4().to_string();
    let up = scan.hosts.iter().filter(|h| h.state == HostState::Up);
    let hosts: Vec<DiscoveredHost> = up
        .flat_map(|h| {
            h.addresses.iter().map(move |addr| DiscoveredHost {
                address: addr.to_string(),
                mac: h.mac.as_ref().map(format_mac).unwrap_or_default(),
                vendor: h
                    .mac_vendor
                    .clone()
                    .or_else(|| h.mac.and_then(outpost_discovery::oui::vendor).map(str::to_owned))
                    .unwrap_or_default(),
                names: h.hostnames.iter().map(|n| n.name.clone()).collect(),
                open_ports: h
                    .ports
                    .iter()
                    .filter(|p| p.state == NmapPortState::Open && matches!(p.protocol, Protocol::Tcp | Protocol::Udp))
                    .map(|p| OpenPort {
                        port: u32::from(p.port),
                        protocol: if p.protocol == Protocol::Udp { "udp" } else { "tcp" }.into(),
                        service: p.service.clone().unwrap_or_default(),
                        product: p.product.clone().unwrap_or_default(),
                        version: p.version.clone().unwrap_or_default(),
                        banner: p.extrainfo.clone().unwrap_or_default(),
                    })
                    .collect(),
                seen_by: vec!["nmap".into()],
                os_matches: h
                    .os_matches
                    .iter()
                    .map(|o| OsMatch {
                        name: o.name.clone(),
                        accuracy: u32::from(o.accuracy),
                    })
                    .collect(),
                ..DiscoveredHost::default()
            })
        })
        .collect();
    let found = hosts.len();
    let mut bodies: Vec<Body> = chunk_records(&scan_id, NMAP_JOB, &[], hosts.into_iter())
        .into_iter()
        .map(Body::DiscoveredHosts)
        .collect();
    let now = crate::now_ms();
    bodies.push(Body::ScanFinished(ScanFinished {
        scan_id,
        job_id: NMAP_JOB.into(),
        source: NMAP_JOB.into(),
        started_ms: scan.started.map_or(now, |s| s.saturating_mul(1000)),
        finished_ms: now,
        hosts_found: u32::try_from(found).unwrap_or(u32::MAX),
        ..ScanFinished::default()
    }));
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(i: u8, names: usize) -> Host {
        let mut h = Host::new(std::net::IpAddr::from([10, 0, 0, i]));
        h.names = (0..names).map(|n| format!("name-{n}-{}", "x".repeat(200))).collect();
        h
    }

    #[test]
    fn big_scans_are_cut_into_chunks_under_the_limit_and_none_is_lost() {
        let hosts: Vec<Host> = (1..=250).map(|i| host(i, 40)).collect();
        let chunks = chunks("s", "j", &[22, 80], &hosts);
        assert!(chunks.len() > 1, "{}", chunks.len());
        assert!(
            chunks
                .iter()
                .all(|c| c.encoded_len() <= CHUNK_BYTES && c.scanned_ports == [22, 80])
        );
        assert_eq!(chunks.iter().map(|c| c.hosts.len()).sum::<usize>(), 250);
        assert!(super::chunks("s", "j", &[], &[]).is_empty());
    }

    #[test]
    fn an_nmap_file_becomes_up_hosts_and_a_finish_that_covers_nothing() {
        let xml = br#"<?xml version="1.0"?><nmaprun args="nmap -sT 10.0.0.0/30" start="1700000000">
<host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/><address addr="4C:5E:0C:01:02:03" addrtype="mac"/>
<hostnames><hostname name="gw.example" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh" product="OpenSSH" version="9.2p1"/></port>
<port protocol="tcp" portid="23"><state state="closed"/></port></ports></host>
<host><status state="down"/><address addr="10.0.0.2" addrtype="ipv4"/></host>
<runstats><finished time="1700000005"/></runstats></nmaprun>"#;
        let scan = outpost_discovery::nmap_xml::parse(xml).expect("parses");
        let bodies = from_nmap(&scan);
        assert_eq!(bodies.len(), 2);
        let Body::DiscoveredHosts(d) = &bodies[0] else {
            panic!("hosts first")
        };
        assert_eq!(d.hosts.len(), 1, "down hosts are not imported");
        let h = &d.hosts[0];
        assert_eq!((h.address.as_str(), h.mac.as_str()), ("10.0.0.1", "4c:5e:0c:01:02:03"));
        assert_eq!(h.vendor, "Routerboard.com");
        assert_eq!(h.names, ["gw.example"]);
        assert_eq!(h.open_ports.len(), 1);
        assert_eq!(
            (h.open_ports[0].port, h.open_ports[0].product.as_str()),
            (22, "OpenSSH")
        );
        assert!(d.scanned_ports.is_empty(), "no port counts as closed");
        let Body::ScanFinished(f) = &bodies[1] else {
            panic!("finish last")
        };
        assert!(f.targets.is_empty() && !f.partial && f.source == "nmap-import");
        assert_eq!(f.started_ms, 1_700_000_000_000);
    }
}
