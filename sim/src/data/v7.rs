//! RouterOS 7 forms: `7.16.2 (stable)`, ISO-like dates, `/system/health` as
//! name/value/type rows, `/interface/wifi/registration-table`, and
//! `last-config-change` in `/system/resource` from 7.17.

use std::time::{Duration, SystemTime};

use super::{Now, Row, id, resource_common, station_bytes};
use crate::device::{Device, State};
use crate::format;

pub(crate) fn resource(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    let v = dev.profile.version;
    let built = format::Civil::from_system(SystemTime::UNIX_EPOCH + Duration::from_secs(v.built)).iso();
    let mut row = resource_common(dev, st, now, v.display(), built);
    row.insert(3, ("factory-software", "7.1".to_owned()));
    if v.has_last_config_change() {
        row.push((
            "last-config-change",
            format::Civil::from_system(st.last_config_change).iso(),
        ));
    }
    vec![row]
}

/// v7 health is one row per sensor.
pub(crate) fn health(dev: &Device, volt: String, temp: u64) -> Vec<Row> {
    let mut sensors: Vec<(&str, String, &str)> = Vec::new();
    if dev.profile.board.voltage {
        sensors.push(("voltage", volt, "V"));
    }
    sensors.push(("temperature", temp.to_string(), "C"));
    sensors.push(("cpu-temperature", (temp + 9).to_string(), "C"));
    sensors
        .into_iter()
        .enumerate()
        .map(|(n, (name, value, unit))| {
            vec![
                (".id", id(n as u64 + 1)),
                ("name", name.to_owned()),
                ("value", value),
                ("type", unit.to_owned()),
            ]
        })
        .collect()
}

pub(crate) fn registration_table(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    let elapsed = now.mono.saturating_duration_since(st.log_epoch).as_secs();
    dev.profile
        .stations
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let (tx, rx) = station_bytes(s, elapsed);
            let band = if s.band5 { "5ghz-ac" } else { "2ghz-n" };
            // wifi reports bare rates, without the width/streams suffix.
            let rate = |r: &str| r.split('-').next().unwrap_or(r).to_owned();
            vec![
                (".id", id(n as u64 + 1)),
                ("interface", s.iface.clone()),
                ("ssid", format!("{}-wifi", dev.profile.identity)),
                ("mac-address", format::mac(s.mac)),
                ("uptime", format::duration(s.connected_secs + elapsed)),
                ("last-activity", "20ms".to_owned()),
                ("signal", s.signal.to_string()),
                ("auth-type", "wpa2-psk".to_owned()),
                ("band", band.to_owned()),
                ("tx-rate", rate(s.tx_rate)),
                ("rx-rate", rate(s.rx_rate)),
                ("packets", format!("{},{}", tx / 900, rx / 900)),
                ("bytes", format!("{tx},{rx}")),
                ("tx-bits-per-second", (s.rate * 8).to_string()),
                ("rx-bits-per-second", (s.rate * 8 / 3).to_string()),
                ("authorized", "true".to_owned()),
            ]
        })
        .collect()
}
