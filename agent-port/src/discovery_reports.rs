//! Discovery reports from an agent, checked and turned into store rows.
//!
//! Which tenant and site the hosts belong to is never read from the message:
//! the store reconciles them into the agent's own site (from its
//! certificate) and refuses a report naming another site's scan or job.
//! Here a report is only checked for shape: addresses that parse as IP
//! addresses, MACs of 6 octets, ports from 1 to 65535, bounded text and
//! bounded lists. A report that fails is refused as a whole, with the reason
//! naming the host and field; the rest of the batch is stored.
use std::collections::HashSet;
use std::net::IpAddr;

use outpost_proto::agent_v1::{DiscoveredHost, DiscoveredHosts, ScanFinished};
use outpost_store::inventory::ScanId;
use outpost_store::inventory::addr::{MacAddr, Target};
use outpost_store::inventory::records::{
    DiscoveryBody, HostRecord, HostsChunk, LldpNeighbor, MndpFacts, PortRecord, ScanFinishedRow, SnmpInterface,
    SnmpRecord,
};

/// Most hosts in one `DiscoveredHosts` chunk.
pub const MAX_HOSTS_PER_CHUNK: usize = 4_096;
/// Longest short text field (names, vendor, service, MNDP fields).
const MAX_TEXT: usize = 256;
/// Longest long text field (banners, sysDescr, errors, warnings).
const MAX_LONG_TEXT: usize = 1_024;
/// Most names per host.
const MAX_NAMES: usize = 32;
/// Most open ports per host (nmap may list many).
const MAX_PORTS_PER_HOST: usize = 4_096;
/// Most SNMP interfaces per host.
const MAX_SNMP_INTERFACES: usize = 4_096;
/// Most LLDP neighbours per host.
const MAX_LLDP_NEIGHBORS: usize = 1_024;
/// Most `seen_by` entries and OS matches per host.
const MAX_SMALL_LIST: usize = 16;
/// Most targets a finished scan names.
const MAX_TARGETS: usize = 1_024;
/// Most warnings of a finished scan.
const MAX_WARNINGS: usize = 64;
/// Longest job id.
const MAX_JOB_ID: usize = 64;

fn text(what: &str, s: &str, max: usize) -> Result<String, String> {
    if s.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    Ok(s.to_owned())
}

fn list<'a, T>(what: &str, items: &'a [T], max: usize) -> Result<&'a [T], String> {
    if items.len() > max {
        return Err(format!("more than {max} {what}"));
    }
    Ok(items)
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn port(what: &str, p: u32) -> Result<u16, String> {
    match u16::try_from(p) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} {p} is not from 1 to 65535")),
    }
}

fn scan_id(s: &str) -> Result<ScanId, String> {
    s.parse()
}

fn job_id(s: &str) -> Result<String, String> {
    if s.len() > MAX_JOB_ID || s.chars().any(char::is_control) {
        return Err(format!("job id must be at most {MAX_JOB_ID} printable characters"));
    }
    Ok(s.to_owned())
}

/// A MAC as reported: empty for none.
fn mac(what: &str, s: &str) -> Result<Option<MacAddr>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e| format!("{what}: {e}"))
}

/// One chunk of a scan's hosts.
pub fn hosts(d: &DiscoveredHosts) -> Result<DiscoveryBody, String> {
    let scan_id = scan_id(&d.scan_id)?;
    let job_id = job_id(&d.job_id)?;
    let scanned_ports = list("scanned ports", &d.scanned_ports, usize::from(u16::MAX))?
        .iter()
        .map(|&p| port("scanned port", p))
        .collect::<Result<Vec<u16>, String>>()?;
    let hosts = list("hosts", &d.hosts, MAX_HOSTS_PER_CHUNK)?
        .iter()
        .enumerate()
        .map(|(i, h)| host(h).map_err(|e| format!("host {i} ({}): {e}", shown(&h.address))))
        .collect::<Result<Vec<HostRecord>, String>>()?;
    Ok(DiscoveryBody::Hosts(HostsChunk {
        scan_id,
        job_id,
        scanned_ports,
        hosts,
    }))
}

/// An address as shown in a rejection: at most 64 characters of it.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

fn host(h: &DiscoveredHost) -> Result<HostRecord, String> {
    // A link-local IPv6 address may come with its zone ("fe80::1%eth0"),
    // which names the agent's interface, not the host.
    let address: IpAddr = h
        .address
        .split('%')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| "address is not an IPv4 or IPv6 address".to_owned())?;
    let mut names: Vec<String> = Vec::new();
    for n in list("names", &h.names, MAX_NAMES)? {
        let n = text("name", n.trim(), MAX_TEXT)?;
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    let mut seen = HashSet::new();
    let mut open_ports = Vec::new();
    for p in list("open ports", &h.open_ports, MAX_PORTS_PER_HOST)? {
        let protocol = match p.protocol.to_ascii_lowercase().as_str() {
            "" | "tcp" => "tcp",
            "udp" => "udp",
            "sctp" => "sctp",
            _ => {
                return Err(format!(
                    "port protocol {:?} is not tcp, udp or sctp",
                    shown(&p.protocol)
                ));
            }
        };
        let number = port("open port", p.port)?;
        if !seen.insert((protocol, number)) {
            continue;
        }
        open_ports.push(PortRecord {
            port: number,
            protocol: protocol.to_owned(),
            service: text("service", &p.service, MAX_TEXT)?,
            product: text("product", &p.product, MAX_TEXT)?,
            version: text("version", &p.version, MAX_TEXT)?,
            banner: text("banner", p.banner.trim(), MAX_LONG_TEXT)?,
        });
    }
    let snmp = h
        .snmp
        .as_ref()
        .map(|s| -> Result<SnmpRecord, String> {
            Ok(SnmpRecord {
                descr: text("sysDescr", &s.descr, MAX_LONG_TEXT)?,
                object_id: object_id(&s.object_id)?,
                name: text("sysName", &s.name, MAX_TEXT)?,
                location: text("sysLocation", &s.location, MAX_TEXT)?,
                uptime_ticks: clamp(s.uptime_ticks),
                interfaces: list("SNMP interfaces", &s.interfaces, MAX_SNMP_INTERFACES)?
                    .iter()
                    .map(|i| {
                        Ok(SnmpInterface {
                            index: i64::from(i.index),
                            name: text("ifName", &i.name, MAX_TEXT)?,
                            descr: text("ifDescr", &i.descr, MAX_TEXT)?,
                            alias: text("ifAlias", &i.alias, MAX_TEXT)?,
                            if_type: i64::from(i.if_type),
                            mac: text("ifPhysAddress", &i.mac, MAX_TEXT)?,
                            oper_up: i.oper_up,
                            speed_mbps: clamp(i.speed_mbps),
                        })
                    })
                    .collect::<Result<_, String>>()?,
                lldp: list("LLDP neighbours", &s.lldp_neighbors, MAX_LLDP_NEIGHBORS)?
                    .iter()
                    .map(|n| {
                        Ok(LldpNeighbor {
                            local_port: text("LLDP local port", &n.local_port, MAX_TEXT)?,
                            chassis_id: text("LLDP chassis id", &n.chassis_id, MAX_TEXT)?,
                            port_id: text("LLDP port id", &n.port_id, MAX_TEXT)?,
                            port_descr: text("LLDP port description", &n.port_descr, MAX_TEXT)?,
                            sys_name: text("LLDP system name", &n.sys_name, MAX_TEXT)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                error: text("SNMP error", &s.error, MAX_LONG_TEXT)?,
            })
        })
        .transpose()?;
    let mndp = h
        .mndp
        .as_ref()
        .map(|m| -> Result<MndpFacts, String> {
            Ok(MndpFacts {
                identity: text("MNDP identity", &m.identity, MAX_TEXT)?,
                mac: mac("MNDP MAC", &m.mac)?.map(|m| m.to_string()).unwrap_or_default(),
                version: text("MNDP version", &m.version, MAX_TEXT)?,
                platform: text("MNDP platform", &m.platform, MAX_TEXT)?,
                board: text("MNDP board", &m.board, MAX_TEXT)?,
                uptime_secs: clamp(m.uptime_secs),
                software_id: text("MNDP software id", &m.software_id, MAX_TEXT)?,
                interface: text("MNDP interface", &m.interface, MAX_TEXT)?,
                ipv4: text("MNDP IPv4 address", &m.ipv4, MAX_TEXT)?,
                ipv6: text("MNDP IPv6 address", &m.ipv6, MAX_TEXT)?,
            })
        })
        .transpose()?;
    let mut seen_by = Vec::new();
    for s in list("seen_by entries", &h.seen_by, MAX_SMALL_LIST)? {
        let s = text("seen_by entry", s, 16)?;
        if !s.is_empty() && !seen_by.contains(&s) {
            seen_by.push(s);
        }
    }
    let os = list("OS matches", &h.os_matches, MAX_SMALL_LIST)?
        .iter()
        .filter(|m| !m.name.is_empty())
        .max_by_key(|m| m.accuracy)
        .map(|m| Ok::<_, String>((text("OS match", &m.name, MAX_TEXT)?, i64::from(m.accuracy.min(100)))))
        .transpose()?;
    Ok(HostRecord {
        address,
        mac: mac("MAC", &h.mac)?,
        vendor: text("vendor", &h.vendor, MAX_TEXT)?,
        names,
        open_ports,
        snmp,
        mndp,
        seen_by,
        rtt_us: (h.rtt_us > 0).then_some(i64::from(h.rtt_us)),
        os,
    })
}

/// A dotted OID, or empty.
fn object_id(s: &str) -> Result<String, String> {
    let ok = s.len() <= MAX_TEXT
        && s.split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    if s.is_empty() || ok {
        Ok(s.to_owned())
    } else {
        Err(format!("sysObjectID {:?} is not a dotted OID", shown(s)))
    }
}

/// The end of a scan.
pub fn finished(f: &ScanFinished) -> Result<DiscoveryBody, String> {
    let targets = list("targets", &f.targets, MAX_TARGETS)?
        .iter()
        .map(|t| Target::covering(t))
        .collect::<Result<Vec<Target>, String>>()?;
    if f.started_ms < 0 || f.finished_ms < 0 {
        return Err("scan times must not be negative".into());
    }
    let warnings = list("warnings", &f.warnings, MAX_WARNINGS)?
        .iter()
        .map(|w| text("warning", w, MAX_LONG_TEXT))
        .collect::<Result<Vec<String>, String>>()?;
    Ok(DiscoveryBody::Finished(ScanFinishedRow {
        scan_id: scan_id(&f.scan_id)?,
        job_id: job_id(&f.job_id)?,
        source: text("source", &f.source, 32)?,
        targets,
        started_ms: f.started_ms,
        finished_ms: f.finished_ms,
        addresses: i64::from(f.addresses),
        hosts_found: i64::from(f.hosts_found),
        partial: f.partial,
        warnings,
        icmp: text("ICMP mode", &f.icmp, 16)?,
        probes_sent: clamp(f.probes_sent),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_proto::agent_v1::{MndpInfo, OpenPort, OsMatch, SnmpSystem};

    fn host_at(address: &str) -> DiscoveredHost {
        DiscoveredHost {
            address: address.into(),
            mac: "AA-BB-CC-00-11-22".into(),
            names: vec!["gw".into(), " gw ".into(), String::new()],
            open_ports: vec![
                OpenPort {
                    port: 8728,
                    service: "routeros-api".into(),
                    ..Default::default()
                },
                OpenPort {
                    port: 8728,
                    protocol: "TCP".into(),
                    ..Default::default()
                },
            ],
            snmp: Some(SnmpSystem {
                object_id: "1.3.6.1.4.1.14988.1".into(),
                ..Default::default()
            }),
            mndp: Some(MndpInfo {
                identity: "gw".into(),
                mac: "aa:bb:cc:00:11:22".into(),
                ..Default::default()
            }),
            seen_by: vec!["arp".into(), "tcp".into(), "arp".into()],
            os_matches: vec![
                OsMatch {
                    name: "Linux 5".into(),
                    accuracy: 90,
                },
                OsMatch {
                    name: "RouterOS 7".into(),
                    accuracy: 97,
                },
            ],
            ..Default::default()
        }
    }

    fn chunk(hosts: Vec<DiscoveredHost>) -> DiscoveredHosts {
        DiscoveredHosts {
            scan_id: "scan-1".into(),
            job_id: String::new(),
            scanned_ports: vec![22, 8728],
            hosts,
        }
    }

    #[test]
    fn good_hosts_are_normalised() {
        let Ok(DiscoveryBody::Hosts(c)) = hosts(&chunk(vec![host_at("192.0.2.1"), host_at("fd00::1")])) else {
            panic!("accepted")
        };
        let h = &c.hosts[0];
        assert_eq!(h.mac.map(|m| m.to_string()).as_deref(), Some("aa:bb:cc:00:11:22"));
        assert_eq!(h.names, ["gw"]);
        assert_eq!(h.open_ports.len(), 1, "duplicate port dropped");
        assert_eq!(h.open_ports[0].protocol, "tcp");
        assert_eq!(h.seen_by, ["arp", "tcp"]);
        assert_eq!(h.os, Some(("RouterOS 7".into(), 97)));
        assert_eq!(h.rtt_us, None);
        assert_eq!(c.hosts[1].address.to_string(), "fd00::1");
        let Ok(DiscoveryBody::Hosts(c)) = hosts(&chunk(vec![host_at("fe80::1%eth0")])) else {
            panic!("a zone is dropped")
        };
        assert_eq!(c.hosts[0].address.to_string(), "fe80::1");
        assert_eq!(c.scanned_ports, [22, 8728]);
    }

    /// Breaks one thing in a good chunk.
    type Spoil = Box<dyn Fn(&mut DiscoveredHosts)>;

    #[test]
    fn bad_hosts_are_refused_with_the_host_and_field() {
        let cases: Vec<(Spoil, &str)> = vec![
            (
                Box::new(|c| c.hosts[0].address = "192.0.2.300".into()),
                "host 0 (192.0.2.300): address",
            ),
            (
                Box::new(|c| c.hosts[0].address = "gw.example".into()),
                "is not an IPv4 or IPv6 address",
            ),
            (Box::new(|c| c.hosts[0].mac = "aa:bb:cc".into()), "is not 6 octets"),
            (
                Box::new(|c| c.hosts[0].open_ports[0].port = 0),
                "open port 0 is not from 1 to 65535",
            ),
            (Box::new(|c| c.hosts[0].open_ports[0].port = 70_000), "open port 70000"),
            (
                Box::new(|c| c.hosts[0].open_ports[0].protocol = "icmp".into()),
                "is not tcp, udp or sctp",
            ),
            (Box::new(|c| c.scanned_ports.push(65_536)), "scanned port 65536"),
            (Box::new(|c| c.scan_id = String::new()), "scan id"),
            (Box::new(|c| c.scan_id = "a b".into()), "scan id"),
            (
                Box::new(|c| c.hosts[0].vendor = "x".repeat(MAX_TEXT + 1)),
                "vendor is longer",
            ),
            (
                Box::new(|c| c.hosts[0].names = vec!["n".into(); MAX_NAMES + 1]),
                "more than 32 names",
            ),
            (
                Box::new(|c| c.hosts[0].snmp.get_or_insert_default().object_id = "1.3.x".into()),
                "not a dotted OID",
            ),
            (
                Box::new(|c| c.hosts[0].mndp.get_or_insert_default().mac = "zz".into()),
                "MNDP MAC",
            ),
            (
                Box::new(|c| c.hosts = vec![DiscoveredHost::default(); MAX_HOSTS_PER_CHUNK + 1]),
                "more than 4096 hosts",
            ),
        ];
        for (spoil, says) in cases {
            let mut c = chunk(vec![host_at("192.0.2.1")]);
            spoil(&mut c);
            let err = hosts(&c).expect_err(says);
            assert!(err.contains(says), "{err:?} should say {says:?}");
        }
    }

    #[test]
    fn a_finished_scan_reads_its_targets_as_networks() {
        let f = ScanFinished {
            scan_id: "scan-1".into(),
            targets: vec!["192.0.2.10/24".into(), "fd00::/120".into(), "198.51.100.7".into()],
            started_ms: 1,
            finished_ms: 2,
            probes_sent: u64::MAX,
            ..Default::default()
        };
        let Ok(DiscoveryBody::Finished(row)) = finished(&f) else {
            panic!("accepted")
        };
        let shown: Vec<String> = row.targets.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["192.0.2.0/24", "fd00::/120", "198.51.100.7"]);
        assert_eq!(row.probes_sent, i64::MAX);
        let bad = ScanFinished {
            targets: vec!["everything".into()],
            ..f.clone()
        };
        assert!(finished(&bad).unwrap_err().contains("not an IP address"));
        let negative = ScanFinished { started_ms: -5, ..f };
        assert!(finished(&negative).unwrap_err().contains("negative"));
    }
}
