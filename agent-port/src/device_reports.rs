//! Device reports from an agent, checked and turned into store rows.
//!
//! Which device a report is about comes from the message, so the store checks
//! that the device belongs to the agent's own tenant and site (taken from its
//! certificate) before writing anything; here the report is only checked for
//! shape: a device id that parses, text fields of bounded length, lists of
//! bounded size, finite numbers.
use outpost_proto::agent_v1::{DeviceLog, DevicePoll, DeviceState as WireState, DeviceStatus};
use outpost_store::devices::reports::{
    AddressRow, HealthRow, InterfaceRow, LeaseRow, LogRow, NeighborRow, PollRow, ReportBody, StatusRow, SystemRow,
    WirelessRow,
};
use outpost_store::devices::{DeviceId, DeviceState};

/// Longest text field accepted from a device report.
const MAX_TEXT: usize = 1024;
/// Most rows in one list of a report (interfaces, leases, …).
const MAX_ROWS: usize = 20_000;

fn text(what: &str, s: &str) -> Result<String, String> {
    if s.len() > MAX_TEXT {
        return Err(format!("{what} is longer than {MAX_TEXT} bytes"));
    }
    Ok(s.to_owned())
}

fn rows<T, U>(what: &str, items: &[T], f: impl Fn(&T) -> Result<U, String>) -> Result<Vec<U>, String> {
    if items.len() > MAX_ROWS {
        return Err(format!("more than {MAX_ROWS} {what}"));
    }
    items.iter().map(f).collect()
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn finite(what: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{what} is not a finite number"))
    }
}

/// The device a report names.
pub fn device_id(s: &str) -> Result<DeviceId, String> {
    s.parse()
        .map_err(|_| format!("device id {:?} is not a device id", truncate(s)))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn hex32(what: &str, b: &[u8]) -> Result<String, String> {
    match b.len() {
        0 => Ok(String::new()),
        32 => Ok(hex::encode(b)),
        n => Err(format!("{what} is {n} bytes, not a 32-byte SHA-256")),
    }
}

/// A state change.
pub fn status(s: &DeviceStatus) -> Result<(DeviceId, ReportBody), String> {
    let state = match WireState::try_from(s.state) {
        Ok(WireState::Up) => DeviceState::Up,
        Ok(WireState::Unreachable) => DeviceState::Unreachable,
        Ok(WireState::AuthFailed) => DeviceState::AuthFailed,
        Ok(WireState::TlsPinMismatch) => DeviceState::TlsPinMismatch,
        Ok(WireState::NoApiPolicy) => DeviceState::NoApiPolicy,
        Ok(WireState::TlsUnsupported) => DeviceState::TlsUnsupported,
        Ok(WireState::ProtocolError) => DeviceState::ProtocolError,
        Ok(WireState::Unspecified) | Err(_) => return Err(format!("unknown device state {}", s.state)),
    };
    Ok((
        device_id(&s.device_id)?,
        ReportBody::Status(StatusRow {
            state,
            reason: text("reason", &s.reason)?,
            api_tls_fingerprint: hex32("API-SSL fingerprint", &s.api_tls_fingerprint_sha256)?,
            ssh_host_key: hex32("SSH host key fingerprint", &s.ssh_host_key_sha256)?,
            backup_problem: text("backup problem", &s.backup_problem)?,
        }),
    ))
}

/// A poll.
pub fn poll(p: &DevicePoll) -> Result<(DeviceId, ReportBody), String> {
    let system = p
        .system
        .as_ref()
        .map(|s| -> Result<SystemRow, String> {
            Ok(SystemRow {
                identity: text("identity", &s.identity)?,
                version: text("version", &s.version)?,
                channel: text("channel", &s.channel)?,
                board_name: text("board name", &s.board_name)?,
                architecture: text("architecture", &s.architecture)?,
                serial_number: text("serial number", &s.serial_number)?,
                current_firmware: text("firmware", &s.current_firmware)?,
                upgrade_firmware: text("firmware", &s.upgrade_firmware)?,
                uptime_secs: int(s.uptime_secs),
                cpu_load: i64::from(s.cpu_load.min(100)),
                free_memory: int(s.free_memory),
                total_memory: int(s.total_memory),
                free_hdd: int(s.free_hdd),
                total_hdd: int(s.total_hdd),
                last_config_change: text("last config change", &s.last_config_change)?,
                latest_version: text("latest version", &s.latest_version)?,
                update_available: s.update_available,
            })
        })
        .transpose()?;
    let row = PollRow {
        duration_ms: i64::from(p.duration_ms),
        system,
        health: rows("health readings", &p.health, |h| {
            Ok(HealthRow {
                name: text("sensor name", &h.name)?,
                value: finite("sensor value", h.value)?,
                unit: text("unit", &h.unit)?,
            })
        })?,
        interfaces: rows("interfaces", &p.interfaces, |i| {
            Ok(InterfaceRow {
                name: text("interface name", &i.name)?,
                kind: text("interface type", &i.kind)?,
                running: i.running,
                disabled: i.disabled,
                mac_address: text("MAC address", &i.mac_address)?,
                rx_bytes: int(i.rx_bytes),
                tx_bytes: int(i.tx_bytes),
                link_downs: int(i.link_downs),
                rx_bps: i.rx_bits_per_sec.map(|v| finite("rate", v)).transpose()?,
                tx_bps: i.tx_bits_per_sec.map(|v| finite("rate", v)).transpose()?,
            })
        })?,
        addresses: p
            .addresses
            .as_ref()
            .map(|l| {
                rows("addresses", &l.items, |a| {
                    Ok(AddressRow {
                        address: text("address", &a.address)?,
                        interface: text("interface", &a.interface)?,
                        network: text("network", &a.network)?,
                        disabled: a.disabled,
                    })
                })
            })
            .transpose()?,
        neighbors: p
            .neighbors
            .as_ref()
            .map(|l| {
                rows("neighbors", &l.items, |n| {
                    Ok(NeighborRow {
                        interface: text("interface", &n.interface)?,
                        address: text("address", &n.address)?,
                        mac_address: text("MAC address", &n.mac_address)?,
                        identity: text("identity", &n.identity)?,
                        platform: text("platform", &n.platform)?,
                        version: text("version", &n.version)?,
                        board: text("board", &n.board)?,
                        discovered_by: text("discovered by", &n.discovered_by)?,
                    })
                })
            })
            .transpose()?,
        wireless: p
            .wireless_clients
            .as_ref()
            .map(|l| {
                rows("wireless clients", &l.items, |w| {
                    Ok(WirelessRow {
                        interface: text("interface", &w.interface)?,
                        mac_address: text("MAC address", &w.mac_address)?,
                        signal_dbm: w.signal_dbm.map(i64::from),
                        band: text("band", &w.band)?,
                        tx_rate_bps: int(w.tx_rate_bps),
                        rx_rate_bps: int(w.rx_rate_bps),
                        tx_ccq: w.tx_ccq.map(|c| i64::from(c.min(100))),
                        tx_bytes: int(w.tx_bytes),
                        rx_bytes: int(w.rx_bytes),
                        uptime_secs: int(w.uptime_secs),
                    })
                })
            })
            .transpose()?,
        leases: p
            .dhcp_leases
            .as_ref()
            .map(|l| {
                rows("DHCP leases", &l.items, |d| {
                    Ok(LeaseRow {
                        address: text("address", &d.address)?,
                        mac_address: text("MAC address", &d.mac_address)?,
                        host_name: text("host name", &d.host_name)?,
                        status: text("status", &d.status)?,
                        expires_after_secs: int(d.expires_after_secs),
                    })
                })
            })
            .transpose()?,
    };
    Ok((device_id(&p.device_id)?, ReportBody::Poll(Box::new(row))))
}

/// New log lines.
pub fn log(l: &DeviceLog) -> Result<(DeviceId, ReportBody), String> {
    let lines = rows("log lines", &l.lines, |line| {
        Ok(LogRow {
            ros_id: text("log line id", &line.id)?,
            time: text("log time", &line.time)?,
            topics: text("log topics", &line.topics)?,
            message: text("log message", &line.message)?,
        })
    })?;
    Ok((device_id(&l.device_id)?, ReportBody::Log(lines)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_proto::agent_v1::{DeviceSystem, InterfaceSample};

    #[test]
    fn malformed_reports_are_refused_with_the_reason() {
        let bad_id = DeviceStatus {
            device_id: "not-a-uuid".into(),
            state: WireState::Up as i32,
            ..Default::default()
        };
        assert!(status(&bad_id).unwrap_err().contains("is not a device id"));
        let id = DeviceId::random().to_string();
        let bad_state = DeviceStatus {
            device_id: id.clone(),
            state: 99,
            ..Default::default()
        };
        assert!(status(&bad_state).unwrap_err().contains("unknown device state"));
        let short_pin = DeviceStatus {
            device_id: id.clone(),
            state: WireState::Up as i32,
            api_tls_fingerprint_sha256: vec![1; 5],
            ..Default::default()
        };
        assert!(status(&short_pin).unwrap_err().contains("not a 32-byte"));
        let nan = DevicePoll {
            device_id: id.clone(),
            interfaces: vec![InterfaceSample {
                name: "ether1".into(),
                rx_bits_per_sec: Some(f64::NAN),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(poll(&nan).unwrap_err().contains("finite"));
        let long = DevicePoll {
            device_id: id,
            system: Some(DeviceSystem {
                identity: "x".repeat(MAX_TEXT + 1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(poll(&long).unwrap_err().contains("identity is longer"));
    }
}
