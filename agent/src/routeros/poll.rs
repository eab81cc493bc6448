//! One poll of one device: the poll set, run on the device's session, turned
//! into the reports the collector stores.
//!
//! Commands run a few at a time on the one session (tagged), so a poll costs
//! a few round trips, not a dozen, without loading small boards with many
//! concurrent commands. Slow-changing facts (identity, routerboard, package
//! update) are read every [`SLOW_EVERY`] polls; lists that rarely change
//! (addresses, neighbours, wireless clients, leases) are sent only when they
//! differ from what was last sent this run, and in full after the agent starts.
use std::hash::{Hash as _, Hasher as _};

use outpost_proto::agent_v1::observation::Body;
use outpost_proto::agent_v1::{
    AddressList, DeviceLog, DeviceLogLine, DevicePoll, DeviceSystem, DhcpLease, DhcpLeaseList, HealthReading,
    InterfaceSample, IpAddress, ManagedDevice, Neighbor, NeighborList, WirelessClient, WirelessClientList,
};
use outpost_routeros::command::{
    addresses, dhcp_leases, health, identity, interfaces, log, neighbors, package_update, resource, routerboard,
    wifi_registrations, wireless_registrations,
};
use outpost_routeros::values::Signal;
use outpost_routeros::{Client, Error};

use super::rates::{Counters, RateTracker};

/// Slow-changing facts are read once every this many polls.
const SLOW_EVERY: u32 = 10;
/// The log is read once every this many polls.
const LOG_EVERY: u32 = 5;
/// Log lines sent at most from the backlog when the agent starts.
const LOG_BACKLOG: usize = 100;

/// Which wireless registration table this device has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wireless {
    Unknown,
    /// v6 `/interface/wireless`.
    Legacy,
    /// v7 `/interface/wifi`.
    Wifi,
    None,
}

/// What one device's polls remember between polls.
#[derive(Debug)]
pub struct PollState {
    rates: RateTracker,
    started: std::time::Instant,
    polls: u32,
    sent: [Option<u64>; 4],
    slow: Option<(String, Option<routerboard::Routerboard>, package_update::PackageUpdate)>,
    wireless: Wireless,
    last_log_id: Option<String>,
    last_config_change: Option<String>,
    /// A backup is due (asked for, or the configuration changed).
    pub backup_requested: bool,
    /// RouterOS major version read by the last poll, to pick the export
    /// command.
    pub ros_major: Option<u32>,
    /// Running interfaces at the last poll, for live traffic.
    pub interfaces: Vec<String>,
}

impl Default for PollState {
    fn default() -> Self {
        Self {
            rates: RateTracker::default(),
            started: std::time::Instant::now(),
            polls: 0,
            sent: [None; 4],
            slow: None,
            wireless: Wireless::Unknown,
            last_log_id: None,
            last_config_change: None,
            backup_requested: false,
            ros_major: None,
            interfaces: Vec::new(),
        }
    }
}

impl PollState {
    /// Whether the device reports `last-config-change` (RouterOS 7.17 and
    /// later), so a change shows up in a poll.
    pub fn reports_config_changes(&self) -> bool {
        self.last_config_change.is_some()
    }

    /// A new session: the device may have been upgraded or reconfigured.
    pub fn session_started(&mut self) {
        self.slow = None;
        self.wireless = Wireless::Unknown;
    }
}

/// `None` when the router has no such command (e.g. routerboard on CHR,
/// wireless on a board without radios), the error otherwise.
fn optional<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_no_such_command() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A hash of a section, to send it only when it changed.
fn digest<T: std::fmt::Debug>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{value:?}").hash(&mut h);
    h.finish()
}

/// Keeps `section` only if it differs from what was sent last in `slot`.
fn if_changed<T: std::fmt::Debug>(sent: &mut Option<u64>, section: T) -> Option<T> {
    let d = digest(&section);
    if *sent == Some(d) {
        return None;
    }
    *sent = Some(d);
    Some(section)
}

fn signal_parts(signal: Option<Signal>) -> (Option<i32>, String) {
    match signal {
        Some(s) => (Some(s.dbm), s.band.unwrap_or_default()),
        None => (None, String::new()),
    }
}

/// Polls `device` once on `client`: the poll, and new log lines if any.
pub async fn run(client: &Client, device: &ManagedDevice, state: &mut PollState) -> Result<Vec<Body>, Error> {
    let began = std::time::Instant::now();
    let slow_due = state.slow.is_none() || state.polls.is_multiple_of(SLOW_EVERY);
    let log_due = state.polls.is_multiple_of(LOG_EVERY);
    state.polls = state.polls.wrapping_add(1);

    let (res, ifaces, health) = futures::try_join!(resource::fetch(client), interfaces::fetch(client), async {
        Ok(optional(health::fetch(client).await)?.unwrap_or_default())
    },)?;
    if slow_due {
        let (name, board, update) = futures::try_join!(
            identity::fetch(client),
            async { Ok(optional(routerboard::fetch(client).await)?.flatten()) },
            async { Ok(optional(package_update::fetch(client).await)?.unwrap_or_default()) },
        )?;
        state.slow = Some((name.unwrap_or_default(), board, update));
    }
    let (addrs, neigh, leases) = futures::try_join!(
        addresses::fetch(client),
        async { Ok(optional(neighbors::fetch(client).await)?.unwrap_or_default()) },
        async { Ok(optional(dhcp_leases::fetch(client).await)?.unwrap_or_default()) },
    )?;
    let major = res.version.as_ref().map(|v| v.major).unwrap_or(0);
    state.ros_major = res.version.as_ref().map(|v| v.major);
    let wireless = wireless_clients(client, state, major).await?;

    let uptime = res.uptime.map(|d| d.as_secs());
    let mut poll = state.rates.begin(state.started.elapsed(), uptime);
    let mut samples = Vec::with_capacity(ifaces.len());
    state.interfaces.clear();
    for i in &ifaces {
        let Some(name) = i.name.clone() else { continue };
        let (rx, tx) = (i.rx_bytes.unwrap_or(0), i.tx_bytes.unwrap_or(0));
        let rates = poll.rates(
            &name,
            Counters {
                rx_bytes: rx,
                tx_bytes: tx,
            },
        );
        if i.running == Some(true) {
            state.interfaces.push(name.clone());
        }
        samples.push(InterfaceSample {
            name,
            kind: i.kind.clone().unwrap_or_default(),
            running: i.running.unwrap_or(false),
            disabled: i.disabled.unwrap_or(false),
            mac_address: i.mac.clone().unwrap_or_default(),
            rx_bytes: rx,
            tx_bytes: tx,
            rx_packets: i.rx_packets.unwrap_or(0),
            tx_packets: i.tx_packets.unwrap_or(0),
            link_downs: i.link_downs.unwrap_or(0),
            rx_bits_per_sec: rates.map(|r| r.0),
            tx_bits_per_sec: rates.map(|r| r.1),
        });
    }
    drop(poll);

    if let Some(change) = &res.last_config_change {
        if state.last_config_change.as_ref().is_some_and(|last| last != change) {
            state.backup_requested = true;
        }
        state.last_config_change = Some(change.clone());
    }

    let (identity, board, update) = state.slow.clone().unwrap_or_default();
    let version = res.version.as_ref();
    let system = DeviceSystem {
        identity,
        version: version
            .map(|v| {
                format!(
                    "{}.{}{}{}",
                    v.major,
                    v.minor,
                    if v.patch > 0 {
                        format!(".{}", v.patch)
                    } else {
                        String::new()
                    },
                    v.pre.clone().unwrap_or_default()
                )
            })
            .or_else(|| res.version_text.clone())
            .unwrap_or_default(),
        channel: version.and_then(|v| v.channel.clone()).unwrap_or_default(),
        board_name: res.board_name.clone().unwrap_or_default(),
        architecture: res.architecture.clone().unwrap_or_default(),
        serial_number: board.as_ref().and_then(|b| b.serial_number.clone()).unwrap_or_default(),
        current_firmware: board
            .as_ref()
            .and_then(|b| b.current_firmware.clone())
            .unwrap_or_default(),
        upgrade_firmware: board
            .as_ref()
            .and_then(|b| b.upgrade_firmware.clone())
            .unwrap_or_default(),
        uptime_secs: uptime.unwrap_or(0),
        cpu_load: res.cpu_load.map(|c| c.min(100) as u32).unwrap_or(0),
        free_memory: res.free_memory.unwrap_or(0),
        total_memory: res.total_memory.unwrap_or(0),
        free_hdd: res.free_hdd.unwrap_or(0),
        total_hdd: res.total_hdd.unwrap_or(0),
        last_config_change: res.last_config_change.clone().unwrap_or_default(),
        latest_version: update.latest_version.clone().unwrap_or_default(),
        update_available: update.update_available.unwrap_or(false),
    };
    let addresses = AddressList {
        items: addrs
            .into_iter()
            .map(|a| IpAddress {
                address: a.address.unwrap_or_default(),
                interface: a.interface.unwrap_or_default(),
                network: a.network.unwrap_or_default(),
                disabled: a.disabled.unwrap_or(false),
            })
            .collect(),
    };
    let neighbors = NeighborList {
        items: neigh
            .into_iter()
            .map(|n| Neighbor {
                interface: n.interface.unwrap_or_default(),
                address: n.address.unwrap_or_default(),
                mac_address: n.mac.unwrap_or_default(),
                identity: n.identity.unwrap_or_default(),
                platform: n.platform.unwrap_or_default(),
                version: n.version.unwrap_or_default(),
                board: n.board.unwrap_or_default(),
                discovered_by: n.discovered_by.unwrap_or_default(),
            })
            .collect(),
    };
    let dhcp = DhcpLeaseList {
        items: leases
            .into_iter()
            .map(|l| DhcpLease {
                address: l.address.unwrap_or_default(),
                mac_address: l.mac.unwrap_or_default(),
                host_name: l.host_name.unwrap_or_default(),
                status: l.status.unwrap_or_default(),
                expires_after_secs: l.expires_after.map(|d| d.as_secs()).unwrap_or(0),
            })
            .collect(),
    };
    let [s_addr, s_neigh, s_wifi, s_dhcp] = &mut state.sent;
    let report = DevicePoll {
        device_id: device.device_id.clone(),
        duration_ms: u32::try_from(began.elapsed().as_millis()).unwrap_or(u32::MAX),
        system: Some(system),
        health: health
            .into_iter()
            .filter_map(|r| {
                Some(HealthReading {
                    value: r.value?,
                    name: r.name,
                    unit: r.unit.unwrap_or_default(),
                })
            })
            .collect(),
        interfaces: samples,
        addresses: if_changed(s_addr, addresses),
        neighbors: if_changed(s_neigh, neighbors),
        wireless_clients: if_changed(s_wifi, wireless),
        dhcp_leases: if_changed(s_dhcp, dhcp),
    };
    let mut reports = vec![Body::DevicePoll(report)];
    if log_due && let Some(lines) = new_log_lines(client, device, state).await? {
        reports.push(lines);
    }
    Ok(reports)
}

/// One registration, from either table (v6 `wireless` has CCQ, v7 `wifi` not).
#[allow(clippy::too_many_arguments)]
fn client_row(
    interface: Option<String>,
    mac: Option<String>,
    signal: Option<Signal>,
    tx_rate: Option<u64>,
    rx_rate: Option<u64>,
    tx_ccq: Option<u32>,
    bytes: Option<(u64, u64)>,
    uptime: Option<std::time::Duration>,
) -> WirelessClient {
    let (signal_dbm, band) = signal_parts(signal);
    let (tx, rx) = bytes.unwrap_or((0, 0));
    WirelessClient {
        interface: interface.unwrap_or_default(),
        mac_address: mac.unwrap_or_default(),
        signal_dbm,
        band,
        tx_rate_bps: tx_rate.unwrap_or(0),
        rx_rate_bps: rx_rate.unwrap_or(0),
        tx_ccq,
        tx_bytes: tx,
        rx_bytes: rx,
        uptime_secs: uptime.map(|d| d.as_secs()).unwrap_or(0),
    }
}

async fn wireless_clients(client: &Client, state: &mut PollState, major: u32) -> Result<WirelessClientList, Error> {
    if state.wireless == Wireless::Unknown {
        state.wireless = if major >= 7 { Wireless::Wifi } else { Wireless::Legacy };
    }
    let items = match state.wireless {
        Wireless::Legacy => match optional(wireless_registrations::fetch(client).await)? {
            Some(rows) => rows
                .into_iter()
                .map(|r| {
                    let ccq = r.tx_ccq.map(|c| c.min(100) as u32);
                    client_row(
                        r.interface,
                        r.mac,
                        r.signal,
                        r.tx_rate,
                        r.rx_rate,
                        ccq,
                        r.bytes,
                        r.uptime,
                    )
                })
                .collect(),
            None => {
                state.wireless = if major >= 7 { Wireless::None } else { Wireless::Wifi };
                Vec::new()
            }
        },
        Wireless::Wifi => match optional(wifi_registrations::fetch(client).await)? {
            Some(rows) => rows
                .into_iter()
                .map(|r| {
                    client_row(
                        r.interface,
                        r.mac,
                        r.signal,
                        r.tx_rate,
                        r.rx_rate,
                        None,
                        r.bytes,
                        r.uptime,
                    )
                })
                .collect(),
            None => {
                // A v7 board may still run the legacy wireless package.
                state.wireless = if major >= 7 { Wireless::Legacy } else { Wireless::None };
                Vec::new()
            }
        },
        Wireless::None | Wireless::Unknown => Vec::new(),
    };
    Ok(WirelessClientList { items })
}

async fn new_log_lines(client: &Client, device: &ManagedDevice, state: &mut PollState) -> Result<Option<Body>, Error> {
    let mut lines = log::fetch(client, state.last_log_id.as_deref()).await?;
    if state.last_log_id.is_none() && lines.len() > LOG_BACKLOG {
        lines.drain(..lines.len() - LOG_BACKLOG);
    }
    if let Some(last) = lines.iter().rev().find_map(|l| l.id.clone()) {
        state.last_log_id = Some(last);
    }
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(Body::DeviceLog(DeviceLog {
        device_id: device.device_id.clone(),
        lines: lines
            .into_iter()
            .map(|l| DeviceLogLine {
                id: l.id.unwrap_or_default(),
                time: l.time.unwrap_or_default(),
                topics: l.topics.join(","),
                message: l.message.unwrap_or_default(),
            })
            .collect(),
    })))
}
