//! Seeded generation of a fleet: addresses, boards, versions, interfaces,
//! neighbour links, leases and radio clients. The same seed gives the same
//! fleet, byte for byte in every field that does not depend on the clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::catalog::{self, Board, Radio, RosMajor, RosVersion};
use crate::config::{FleetConfig, MAX_DEVICES, RosMix};
use crate::device::{Counter, Iface, Lease, Neighbor, Profile, State, Station};

/// Why a fleet cannot be laid out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// Device count outside 1..=10,000.
    #[error("--devices must be between 1 and {max}, not {0}", max = MAX_DEVICES)]
    Count(usize),
    /// First address not in 127.0.0.0/8.
    #[error("{0} is not a loopback address (127.0.0.0/8): the simulator only listens on loopback")]
    NotLoopback(Ipv4Addr),
    /// Counting up ran out of 127.0.0.0/8.
    #[error("{count} devices from {first} do not fit in 127.0.0.0/8")]
    OutOfRange {
        /// First address.
        first: Ipv4Addr,
        /// Devices asked for.
        count: usize,
    },
}

/// The addresses of `count` devices counting up from `first`, skipping host
/// bytes .0 and .255 (network and broadcast look odd as a router address).
pub fn addresses(first: Ipv4Addr, count: usize) -> Result<Vec<Ipv4Addr>, LayoutError> {
    if count == 0 || count > MAX_DEVICES {
        return Err(LayoutError::Count(count));
    }
    if first.octets()[0] != 127 {
        return Err(LayoutError::NotLoopback(first));
    }
    let mut out = Vec::with_capacity(count);
    let mut at = u32::from(first);
    while out.len() < count {
        let ip = Ipv4Addr::from(at);
        if ip.octets()[0] != 127 {
            return Err(LayoutError::OutOfRange { first, count });
        }
        let host = ip.octets()[3];
        if host != 0 && host != 255 {
            out.push(ip);
        }
        at = at.checked_add(1).ok_or(LayoutError::OutOfRange { first, count })?;
    }
    Ok(out)
}

fn pick_version(rng: &mut StdRng, mix: RosMix) -> RosVersion {
    let major = match mix {
        RosMix::V6 => RosMajor::V6,
        RosMix::V7 => RosMajor::V7,
        RosMix::Mixed => {
            if rng.gen_bool(0.4) {
                RosMajor::V6
            } else {
                RosMajor::V7
            }
        }
    };
    let list = match major {
        RosMajor::V6 => catalog::V6,
        RosMajor::V7 => catalog::V7,
    };
    list[rng.gen_range(0..list.len())]
}

fn mac(oui: [u8; 3], index: usize, port: usize) -> [u8; 6] {
    // Unique per device and port: 20 bits of device index, 4 of port.
    let n = ((index as u32) << 4) | (port as u32 & 0xF);
    [oui[0], oui[1], oui[2], (n >> 16) as u8, (n >> 8) as u8, n as u8]
}

fn interfaces(rng: &mut StdRng, index: usize, oui: [u8; 3], board: &Board, version: RosVersion) -> Vec<Iface> {
    let mut out = Vec::new();
    let mut port = 0usize;
    let mut add = |rng: &mut StdRng, name: String, kind: &'static str, busy: bool| {
        let running = busy || rng.gen_bool(0.5);
        let rate = if running { rng.gen_range(2_000..2_000_000u64) } else { 0 };
        out.push(Iface {
            name,
            kind,
            mac: mac(oui, index, port),
            mtu: 1500,
            rx_rate: rate,
            tx_rate: rate / rng.gen_range(2..6u64),
            packet_size: rng.gen_range(300..1200u64),
            running,
            disabled: false,
            comment: None,
        });
        port += 1;
    };
    for n in 1..=board.ethers {
        add(rng, format!("ether{n}"), "ether", n <= 2);
    }
    if board.sfp {
        add(rng, "sfp-sfpplus1".to_owned(), "ether", false);
    }
    let (radio_kind, radio_prefix) = match version.major {
        RosMajor::V6 => ("wlan", "wlan"),
        RosMajor::V7 => ("wifi", "wifi"),
    };
    let radios = match board.radio {
        Radio::None => 0,
        Radio::Band2 | Radio::Band5 => 1,
        Radio::Dual => 2,
    };
    for n in 1..=radios {
        add(rng, format!("{radio_prefix}{n}"), radio_kind, true);
    }
    add(rng, "bridge".to_owned(), "bridge", true);
    if let Some(first) = out.first_mut() {
        first.comment = Some("uplink".to_owned());
    }
    out
}

/// Neighbour lists for `k` links per device. Links are symmetric (if A sees
/// B, B sees A): a ring with steps 1..=k/2, plus pairs (0,1), (2,3)… when k is
/// odd, so each device has at most `k` neighbours.
fn adjacency(count: usize, k: usize) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); count];
    let link = |a: usize, b: usize, adj: &mut Vec<Vec<usize>>| {
        if a != b && !adj[a].contains(&b) && adj[a].len() < k && adj[b].len() < k {
            adj[a].push(b);
            adj[b].push(a);
        }
    };
    for step in 1..=k / 2 {
        for i in 0..count {
            link(i, (i + step) % count, &mut adj);
        }
    }
    if k % 2 == 1 {
        for i in (0..count.saturating_sub(1)).step_by(2) {
            link(i, i + 1, &mut adj);
        }
    }
    adj
}

const HOSTS: &[&str] = &["laptop", "printer", "phone", "camera", "nas", "tv", "desk", "voip"];
const TX_RATES: &[&str] = &[
    "130Mbps-20MHz/2S",
    "72.2Mbps-20MHz/1S/SGI",
    "866.7Mbps-80MHz/2S/SGI",
    "300Mbps-40MHz/2S/SGI",
];

/// Profiles and initial state for a whole fleet.
pub(crate) fn fleet(cfg: &FleetConfig) -> Result<Vec<(Profile, State)>, LayoutError> {
    let ips = addresses(cfg.first_ip, cfg.devices)?;
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut rng = StdRng::seed_from_u64(cfg.seed);

    // First pass: what each device is, so neighbours can describe each other.
    struct Base {
        version: RosVersion,
        board: &'static Board,
        identity: String,
        ifaces: Vec<Iface>,
        uptime: u64,
        software_id: String,
    }
    let mut bases = Vec::with_capacity(ips.len());
    for index in 0..ips.len() {
        let version = pick_version(&mut rng, cfg.ros);
        let board = &catalog::BOARDS[rng.gen_range(0..catalog::BOARDS.len())];
        let oui = catalog::OUIS[rng.gen_range(0..catalog::OUIS.len())];
        let ifaces = interfaces(&mut rng, index, oui, board, version);
        let identity = format!("{}-{:04}", board.role, index + 1);
        let uptime = rng.gen_range(600..90 * 86_400u64);
        let software_id = format!(
            "{:04X}-{:04X}",
            rng.gen_range(0..0xFFFFu32),
            rng.gen_range(0..0xFFFFu32)
        );
        bases.push(Base {
            version,
            board,
            identity,
            ifaces,
            uptime,
            software_id,
        });
    }

    let adj = adjacency(ips.len(), cfg.neighbors_per_device);
    let mut out = Vec::with_capacity(ips.len());
    for (index, ip) in ips.iter().copied().enumerate() {
        let b = &bases[index];
        let ethers: Vec<&Iface> = b.ifaces.iter().filter(|i| i.kind == "ether").collect();
        let links = &adj[index];
        let neighbors = links
            .iter()
            .enumerate()
            .map(|(n, &j)| {
                let peer = &bases[j];
                // Local and remote ports are picked so the same cable reads the
                // same from both ends: the port index is the link's order.
                let local = ethers
                    .get((n + 1) % ethers.len().max(1))
                    .map_or("ether1", |i| i.name.as_str());
                let back = adj[j].iter().position(|&x| x == index).unwrap_or(0);
                let peer_ethers: Vec<&Iface> = peer.ifaces.iter().filter(|i| i.kind == "ether").collect();
                let remote = peer_ethers
                    .get((back + 1) % peer_ethers.len().max(1))
                    .copied()
                    .or(peer.ifaces.first());
                Neighbor {
                    local_iface: local.to_owned(),
                    remote_iface: remote.map_or_else(|| "ether1".to_owned(), |i| i.name.clone()),
                    address: ips[j],
                    mac: remote.map_or([0; 6], |i| i.mac),
                    identity: peer.identity.clone(),
                    version: peer.version,
                    board: peer.board.name,
                    software_id: peer.software_id.clone(),
                    uptime_at_start: peer.uptime,
                }
            })
            .collect();

        let mut dev_rng = StdRng::seed_from_u64(cfg.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let leases = (0..dev_rng.gen_range(2..8u8))
            .map(|n| Lease {
                address: Ipv4Addr::new(192, 168, 88, 100 + n),
                mac: [0x02, 0x00, (index >> 8) as u8, index as u8, 0x10, n],
                host_name: format!("{}-{}", HOSTS[dev_rng.gen_range(0..HOSTS.len())], n + 1),
                bound: n != 0 || dev_rng.gen_bool(0.7),
                lease_secs: 600,
            })
            .collect();
        let stations = b
            .ifaces
            .iter()
            .filter(|i| i.kind == "wlan" || i.kind == "wifi")
            .enumerate()
            .flat_map(|(r, radio)| {
                let band5 = match b.board.radio {
                    Radio::Band5 => true,
                    Radio::Dual => r == 1,
                    _ => false,
                };
                (0..dev_rng.gen_range(1..5u8))
                    .map(|n| Station {
                        iface: radio.name.clone(),
                        mac: [0x02, 0x1A, (index >> 8) as u8, index as u8, r as u8, n],
                        signal: -dev_rng.gen_range(45..85i32),
                        band5,
                        tx_rate: TX_RATES[dev_rng.gen_range(0..TX_RATES.len())],
                        rx_rate: TX_RATES[dev_rng.gen_range(0..TX_RATES.len())],
                        ccq: dev_rng.gen_range(40..100u32),
                        rate: dev_rng.gen_range(500..200_000u64),
                        connected_secs: dev_rng.gen_range(60..10 * 86_400u64),
                        last_ip: Ipv4Addr::new(192, 168, 88, 150 + n),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();

        let profile = Profile {
            ip,
            identity: b.identity.clone(),
            version: b.version,
            board: b.board,
            serial: if b.board.routerboard {
                format!("{:012X}", dev_rng.gen_range(0..0xFFFF_FFFF_FFFFu64))
            } else {
                String::new()
            },
            software_id: b.software_id.clone(),
            ifaces: b.ifaces.clone(),
            neighbors,
            leases,
            stations,
            seed: dev_rng.r#gen(),
            cpu_base: dev_rng.gen_range(1..40u32),
            temperature: dev_rng.gen_range(35..62u32),
            voltage_dv: dev_rng.gen_range(230..245u32),
            used_hdd: b.board.total_hdd / dev_rng.gen_range(3..8u64),
            used_memory: b.board.total_memory / dev_rng.gen_range(3..9u64),
            log_every: dev_rng.gen_range(20..120u64),
        };

        // Counters start where the seeded uptime says they would be.
        let counters = profile
            .ifaces
            .iter()
            .map(|i| Counter {
                rx_offset: i.rx_rate.saturating_mul(b.uptime),
                tx_offset: i.tx_rate.saturating_mul(b.uptime),
                since: now,
            })
            .collect();
        let link_downs: Vec<u64> = profile
            .ifaces
            .iter()
            .map(|i| {
                if i.kind == "ether" {
                    dev_rng.gen_range(0..5u64)
                } else {
                    0
                }
            })
            .collect();
        let last_link_down = link_downs
            .iter()
            .map(|&n| (n > 0).then(|| wall - Duration::from_secs(dev_rng.gen_range(60..b.uptime.max(61)))))
            .collect();
        let config_lines = initial_config(&profile);
        let last_config_change = wall - Duration::from_secs(dev_rng.gen_range(60..30 * 86_400u64));
        let mut state = State {
            user: cfg.user.clone(),
            password: cfg.password.clone(),
            faults: Default::default(),
            booted: now,
            uptime_offset: b.uptime,
            counters,
            link_downs,
            last_link_down,
            iface_generation: 0,
            config_lines,
            last_config_change,
            log: Default::default(),
            next_log_id: 1,
            periodic_written: 0,
            log_epoch: now,
        };
        seed_log(&profile, &mut state, wall, b.uptime);
        out.push((profile, state));
    }
    Ok(out)
}

/// The boot-time lines a router's log starts with.
fn seed_log(p: &Profile, st: &mut State, wall: SystemTime, uptime: u64) {
    let boot = wall - Duration::from_secs(uptime);
    st.push_log(boot, "system,info", "router rebooted".to_owned());
    for (n, i) in p.ifaces.iter().filter(|i| i.running && i.kind == "ether").enumerate() {
        st.push_log(
            boot + Duration::from_secs(5 + n as u64),
            "interface,info",
            format!("{} link up (speed 1G, full duplex)", i.name),
        );
    }
    st.push_log(
        boot + Duration::from_secs(30),
        "system,info,account",
        format!("user {} logged in from 192.168.88.10 via winbox", st.user),
    );
}

/// A plausible `/export terse`-like body; the first line (timestamp comment)
/// is added by whoever serves the export, since it changes on every export.
fn initial_config(p: &Profile) -> Vec<String> {
    let mut lines = vec![
        "/interface bridge add admin-mac=".to_owned()
            + &crate::format::mac(p.ifaces.last().map_or([0; 6], |i| i.mac))
            + " auto-mac=no name=bridge",
    ];
    for i in p.ifaces.iter().filter(|i| i.kind == "ether").skip(1) {
        lines.push(format!("/interface bridge port add bridge=bridge interface={}", i.name));
    }
    lines.push("/ip address add address=192.168.88.1/24 interface=bridge network=192.168.88.0".to_owned());
    lines.push(format!(
        "/ip address add address={}/8 interface=ether1 network=127.0.0.0",
        p.ip
    ));
    lines.push("/ip dhcp-server add address-pool=default-dhcp interface=bridge name=defconf".to_owned());
    lines.push("/ip service set telnet disabled=yes".to_owned());
    // Secrets, so exports with and without them differ: derived from the
    // device seed, so the layout's random draws stay as they were.
    if p.ifaces.iter().any(|i| i.kind == "wlan") {
        lines.push(format!(
            "/interface wireless security-profiles add authentication-types=wpa2-psk mode=dynamic-keys \
             name=site wpa2-pre-shared-key={:016x}",
            p.seed.rotate_left(17)
        ));
    }
    lines.push(format!(
        "/ppp secret add name=site-vpn password={:016x} profile=default-encryption service=l2tp",
        p.seed.rotate_left(29)
    ));
    lines.push(format!("/system identity set name={}", p.identity));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_network_and_broadcast_bytes() {
        let ips = addresses(Ipv4Addr::new(127, 0, 1, 253), 4).expect("fits");
        assert_eq!(
            ips,
            vec![
                Ipv4Addr::new(127, 0, 1, 253),
                Ipv4Addr::new(127, 0, 1, 254),
                Ipv4Addr::new(127, 0, 2, 1),
                Ipv4Addr::new(127, 0, 2, 2),
            ]
        );
    }

    #[test]
    fn addresses_stay_on_loopback() {
        assert_eq!(
            addresses(Ipv4Addr::new(10, 0, 0, 1), 1),
            Err(LayoutError::NotLoopback(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert!(matches!(
            addresses(Ipv4Addr::new(127, 255, 255, 250), 10),
            Err(LayoutError::OutOfRange { .. })
        ));
        assert_eq!(addresses(Ipv4Addr::new(127, 0, 1, 1), 0), Err(LayoutError::Count(0)));
        assert_eq!(
            addresses(Ipv4Addr::new(127, 0, 1, 1), 10_001),
            Err(LayoutError::Count(10_001))
        );
    }

    #[test]
    fn neighbour_links_are_symmetric() {
        for count in 1..12 {
            for k in 0..5 {
                let adj = adjacency(count, k);
                for (i, list) in adj.iter().enumerate() {
                    assert!(list.len() <= k);
                    for &j in list {
                        assert_ne!(i, j);
                        assert!(adj[j].contains(&i), "{i}->{j} of {count} k={k}");
                    }
                }
            }
        }
    }
}
