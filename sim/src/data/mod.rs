//! The rows each print command returns, computed from a device's profile and
//! state at the moment of the request. Forms common to both RouterOS lines
//! live here; [`v6`] and [`v7`] hold what differs (dates, health rows, radio
//! menus, version strings).
//!
//! Every value is a string, exactly as on the wire: byte counts in decimal,
//! booleans `true`/`false`, durations `3w2d14h23m15s`. Table rows carry `.id`
//! (`*1`, `*2`, …); singleton menus (`/system/resource`, `/system/identity`)
//! do not, as on a real router.

pub(crate) mod v6;
pub(crate) mod v7;

use std::time::{Instant, SystemTime};

use crate::catalog::RosMajor;
use crate::device::{Device, State};
use crate::format;

/// One row: attribute names and values in the order a router sends them.
pub(crate) type Row = Vec<(&'static str, String)>;

/// The moment a command reads the device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub(crate) mono: Instant,
    pub(crate) wall: SystemTime,
}

impl Now {
    pub(crate) fn get() -> Self {
        Self {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// `*1A`-style internal id.
pub(crate) fn id(n: u64) -> String {
    format!("*{n:X}")
}

/// A value that drifts smoothly between `lo` and `hi` over time, the same
/// for the same seed and second.
pub(crate) fn wander(seed: u64, secs: u64, lo: u64, hi: u64) -> u64 {
    const PERIOD: u64 = 20;
    let span = hi.saturating_sub(lo).max(1);
    let at = |bucket: u64| lo + mix(seed ^ bucket.wrapping_mul(0xA24B_AED4_963E_E407)) % span;
    let (a, b) = (at(secs / PERIOD), at(secs / PERIOD + 1));
    let f = secs % PERIOD;
    (a * (PERIOD - f) + b * f) / PERIOD
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: cheap, well spread.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Byte counters of interface `i` now: the offset plus growth at the
/// interface's rate. Wrapping, because `counter wrap` parks them near
/// `u64::MAX` to test what happens when a 64-bit counter rolls over.
pub(crate) fn counters(dev: &Device, st: &State, i: usize, now: Instant) -> (u64, u64) {
    let (Some(iface), Some(c)) = (dev.profile.ifaces.get(i), st.counters.get(i)) else {
        return (0, 0);
    };
    let ms = now.saturating_duration_since(c.since).as_millis() as u64;
    let grow = |rate: u64| rate.saturating_mul(ms) / 1000;
    (
        c.rx_offset.wrapping_add(grow(iface.rx_rate)),
        c.tx_offset.wrapping_add(grow(iface.tx_rate)),
    )
}

pub(crate) fn identity(dev: &Device) -> Vec<Row> {
    vec![vec![("name", dev.profile.identity.clone())]]
}

pub(crate) fn resource(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    match dev.profile.version.major {
        RosMajor::V6 => v6::resource(dev, st, now),
        RosMajor::V7 => v7::resource(dev, st, now),
    }
}

/// Fields shared by both lines' `/system/resource`, in router order.
pub(crate) fn resource_common(dev: &Device, st: &State, now: Now, version: String, build_time: String) -> Row {
    let p = &dev.profile;
    let b = p.board;
    let uptime = st.uptime(now.mono);
    let secs = now
        .wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cpu = wander(p.seed, secs, u64::from(p.cpu_base / 2), u64::from(p.cpu_base * 2 + 3));
    let free_mem = b.total_memory - p.used_memory - wander(p.seed ^ 1, secs, 0, p.used_memory / 4);
    vec![
        ("uptime", format::duration(uptime)),
        ("version", version),
        ("build-time", build_time),
        ("free-memory", free_mem.to_string()),
        ("total-memory", b.total_memory.to_string()),
        ("cpu", b.cpu.to_owned()),
        ("cpu-count", b.cpu_count.to_string()),
        ("cpu-frequency", b.cpu_mhz.to_string()),
        ("cpu-load", cpu.to_string()),
        ("free-hdd-space", (b.total_hdd - p.used_hdd).to_string()),
        ("total-hdd-space", b.total_hdd.to_string()),
        ("write-sect-since-reboot", (uptime / 7).to_string()),
        ("write-sect-total", (uptime / 3 + 41_000).to_string()),
        ("bad-blocks", "0".to_owned()),
        ("architecture-name", b.arch.to_owned()),
        ("board-name", b.name.to_owned()),
        ("platform", "MikroTik".to_owned()),
    ]
}

pub(crate) fn routerboard(dev: &Device) -> Option<Vec<Row>> {
    let p = &dev.profile;
    let b = p.board;
    if !b.routerboard {
        return None;
    }
    let mut row: Row = vec![("routerboard", "true".to_owned())];
    if p.version.major == RosMajor::V7 {
        row.push(("board-name", b.name.to_owned()));
    }
    row.extend([
        ("model", b.model.to_owned()),
        ("serial-number", p.serial.clone()),
        ("firmware-type", b.firmware_type.to_owned()),
        ("factory-firmware", "6.45.9".to_owned()),
        ("current-firmware", p.version.number.to_owned()),
        ("upgrade-firmware", p.version.number.to_owned()),
    ]);
    Some(vec![row])
}

pub(crate) fn health(dev: &Device, now: Now) -> Vec<Row> {
    if !dev.profile.board.routerboard {
        return Vec::new();
    }
    let secs = now
        .wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let p = &dev.profile;
    let temp = wander(p.seed ^ 2, secs, u64::from(p.temperature), u64::from(p.temperature) + 4);
    let volt = format!("{}.{}", p.voltage_dv / 10, p.voltage_dv % 10);
    match p.version.major {
        RosMajor::V6 => v6::health(dev, volt, temp),
        RosMajor::V7 => v7::health(dev, volt, temp),
    }
}

pub(crate) fn interfaces(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    let major = dev.profile.version.major;
    dev.profile
        .ifaces
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let (rx, tx) = counters(dev, st, n, now.mono);
            let size = i.packet_size.max(1);
            let mut row: Row = vec![
                (".id", id(n as u64 + 1)),
                ("name", i.name.clone()),
                ("default-name", i.name.clone()),
                ("type", i.kind.to_owned()),
                ("mtu", i.mtu.to_string()),
                ("actual-mtu", i.mtu.to_string()),
                ("mac-address", format::mac(i.mac)),
                ("link-downs", st.link_downs.get(n).copied().unwrap_or(0).to_string()),
                ("rx-byte", rx.to_string()),
                ("tx-byte", tx.to_string()),
                ("rx-packet", (rx / size).to_string()),
                ("tx-packet", (tx / size).to_string()),
                ("rx-drop", "0".to_owned()),
                ("tx-drop", "0".to_owned()),
                ("rx-error", "0".to_owned()),
                ("tx-error", "0".to_owned()),
                ("running", i.running.to_string()),
                ("disabled", i.disabled.to_string()),
            ];
            if i.kind == "bridge" {
                row.retain(|(k, _)| *k != "default-name");
            }
            if let Some(c) = &i.comment {
                row.insert(1, ("comment", c.clone()));
            }
            if let Some(Some(t)) = st.last_link_down.get(n) {
                let c = format::Civil::from_system(*t);
                let text = match major {
                    RosMajor::V6 => c.v6(),
                    RosMajor::V7 => c.iso(),
                };
                row.push(("last-link-down-time", text));
            }
            row
        })
        .collect()
}

pub(crate) fn addresses(dev: &Device) -> Vec<Row> {
    vec![
        vec![
            (".id", id(1)),
            ("address", "192.168.88.1/24".to_owned()),
            ("network", "192.168.88.0".to_owned()),
            ("interface", "bridge".to_owned()),
            ("actual-interface", "bridge".to_owned()),
            ("invalid", "false".to_owned()),
            ("dynamic", "false".to_owned()),
            ("disabled", "false".to_owned()),
            ("comment", "defconf".to_owned()),
        ],
        vec![
            (".id", id(2)),
            ("address", format!("{}/8", dev.profile.ip)),
            ("network", "127.0.0.0".to_owned()),
            ("interface", "ether1".to_owned()),
            ("actual-interface", "ether1".to_owned()),
            ("invalid", "false".to_owned()),
            ("dynamic", "false".to_owned()),
            ("disabled", "false".to_owned()),
        ],
    ]
}

pub(crate) fn neighbors(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    let me = &dev.profile;
    let elapsed = now.mono.saturating_duration_since(st.log_epoch).as_secs();
    me.neighbors
        .iter()
        .enumerate()
        .map(|(n, nb)| {
            let mut row: Row = vec![
                (".id", id(n as u64 + 1)),
                ("interface", nb.local_iface.clone()),
                ("address", nb.address.to_string()),
                ("address4", nb.address.to_string()),
                ("mac-address", format::mac(nb.mac)),
                ("identity", nb.identity.clone()),
                ("platform", "MikroTik".to_owned()),
                ("version", nb.version.display()),
                ("unpack", "none".to_owned()),
                ("age", format::duration(elapsed % 60 + 1)),
                ("uptime", format::duration(nb.uptime_at_start + elapsed)),
                ("software-id", nb.software_id.clone()),
                ("board", nb.board.to_owned()),
                ("interface-name", nb.remote_iface.clone()),
            ];
            if me.version.has_discovered_by() {
                row.push(("discovered-by", "mndp".to_owned()));
            }
            if me.version.major == RosMajor::V7 {
                row.push(("system-caps", "bridge,router".to_owned()));
                row.push(("system-caps-enabled", "bridge,router".to_owned()));
            }
            row
        })
        .collect()
}

pub(crate) fn leases(dev: &Device, now: Now) -> Vec<Row> {
    let secs = now
        .wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dev.profile
        .leases
        .iter()
        .enumerate()
        .map(|(n, l)| {
            let left = l.lease_secs - (secs + n as u64 * 97) % l.lease_secs;
            let mut row: Row = vec![
                (".id", id(n as u64 + 1)),
                ("address", l.address.to_string()),
                ("mac-address", format::mac(l.mac)),
                ("client-id", format!("1:{}", format::mac(l.mac).to_lowercase())),
                ("address-lists", String::new()),
                ("server", "defconf".to_owned()),
                ("dhcp-option", String::new()),
                ("status", if l.bound { "bound" } else { "waiting" }.to_owned()),
            ];
            if l.bound {
                row.push(("expires-after", format::duration(left)));
                row.push(("last-seen", format::duration(l.lease_secs - left)));
                row.push(("active-address", l.address.to_string()));
                row.push(("active-mac-address", format::mac(l.mac)));
                row.push(("host-name", l.host_name.clone()));
            } else {
                row.push(("last-seen", "never".to_owned()));
            }
            row.extend([
                ("radius", "false".to_owned()),
                ("dynamic", "true".to_owned()),
                ("blocked", "false".to_owned()),
                ("disabled", "false".to_owned()),
            ]);
            row
        })
        .collect()
}

pub(crate) fn package_update(dev: &Device) -> Vec<Row> {
    let v = dev.profile.version;
    let (latest, status) = if v.number == v.latest {
        (v.latest, "System is already up to date")
    } else {
        (v.latest, "New version is available")
    };
    vec![vec![
        ("channel", v.channel.to_owned()),
        ("installed-version", v.number.to_owned()),
        ("latest-version", latest.to_owned()),
        ("status", status.to_owned()),
    ]]
}

pub(crate) fn log(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    st.log.iter().map(|e| log_row(dev, e, now)).collect()
}

pub(crate) fn log_row(dev: &Device, e: &crate::device::LogEntry, now: Now) -> Row {
    let at = format::Civil::from_system(e.at);
    let today = format::Civil::from_system(now.wall);
    // Routers print today's lines with the clock only.
    let time = if at.same_day(&today) {
        at.clock()
    } else {
        match dev.profile.version.major {
            RosMajor::V6 => at.v6_short(),
            RosMajor::V7 => at.iso(),
        }
    };
    vec![
        (".id", id(e.id)),
        ("time", time),
        ("topics", e.topics.to_owned()),
        ("message", e.message.clone()),
    ]
}

/// One `/interface/monitor-traffic` row for interface `i`, with rates that
/// jitter around the interface's seeded rate.
pub(crate) fn traffic(dev: &Device, i: usize, now: Now) -> Row {
    let Some(iface) = dev.profile.ifaces.get(i) else {
        return Vec::new();
    };
    let secs = now
        .wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jitter = |rate: u64, salt: u64| {
        if rate == 0 {
            0
        } else {
            wander(dev.profile.seed ^ salt ^ i as u64, secs, rate / 2, rate * 3 / 2)
        }
    };
    let rx = jitter(iface.rx_rate, 11);
    let tx = jitter(iface.tx_rate, 13);
    let size = iface.packet_size.max(1);
    vec![
        ("name", iface.name.clone()),
        ("rx-packets-per-second", (rx / size).to_string()),
        ("rx-bits-per-second", (rx * 8).to_string()),
        ("fp-rx-packets-per-second", (rx / size).to_string()),
        ("fp-rx-bits-per-second", (rx * 8).to_string()),
        ("rx-drops-per-second", "0".to_owned()),
        ("rx-errors-per-second", "0".to_owned()),
        ("tx-packets-per-second", (tx / size).to_string()),
        ("tx-bits-per-second", (tx * 8).to_string()),
        ("fp-tx-packets-per-second", (tx / size).to_string()),
        ("fp-tx-bits-per-second", (tx * 8).to_string()),
        ("tx-drops-per-second", "0".to_owned()),
        ("tx-queue-drops-per-second", "0".to_owned()),
        ("tx-errors-per-second", "0".to_owned()),
    ]
}

/// Bytes a wireless client has moved so far (tx, rx).
pub(crate) fn station_bytes(st: &crate::device::Station, elapsed: u64) -> (u64, u64) {
    let total = st.connected_secs + elapsed;
    (st.rate.saturating_mul(total), st.rate.saturating_mul(total) / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wander_stays_in_range_and_moves() {
        let mut seen = std::collections::BTreeSet::new();
        for t in 0..500 {
            let v = wander(7, t, 10, 30);
            assert!((10..30).contains(&v), "{v}");
            seen.insert(v);
        }
        assert!(seen.len() > 3);
    }
}
