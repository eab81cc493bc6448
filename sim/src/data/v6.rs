//! RouterOS 6 forms: `version` without channel, `sep/22/2026 20:42:21` dates,
//! one flat `/system/health` row, `/interface/wireless/registration-table`.

use std::time::{Duration, SystemTime};

use super::{Now, Row, id, resource_common, station_bytes};
use crate::device::{Device, State};
use crate::format;

pub(crate) fn resource(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    let v = dev.profile.version;
    let built = format::Civil::from_system(SystemTime::UNIX_EPOCH + Duration::from_secs(v.built)).v6();
    vec![resource_common(dev, st, now, v.display(), built)]
}

/// v6 health is one row of named values.
pub(crate) fn health(dev: &Device, volt: String, temp: u64) -> Vec<Row> {
    let mut row: Row = Vec::new();
    if dev.profile.board.voltage {
        row.push(("voltage", volt));
    }
    row.push(("temperature", temp.to_string()));
    vec![row]
}

pub(crate) fn registration_table(dev: &Device, st: &State, now: Now) -> Vec<Row> {
    let elapsed = now.mono.saturating_duration_since(st.log_epoch).as_secs();
    dev.profile
        .stations
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let (tx, rx) = station_bytes(s, elapsed);
            let band = if s.band5 { "5GHz" } else { "2.4GHz" };
            vec![
                (".id", id(n as u64 + 1)),
                ("interface", s.iface.clone()),
                ("mac-address", format::mac(s.mac)),
                ("ap", "false".to_owned()),
                ("wds", "false".to_owned()),
                ("bridge", "false".to_owned()),
                ("rx-rate", s.rx_rate.to_owned()),
                ("tx-rate", s.tx_rate.to_owned()),
                ("packets", format!("{},{}", tx / 900, rx / 900)),
                ("bytes", format!("{tx},{rx}")),
                ("frames", format!("{},{}", tx / 900, rx / 900)),
                ("uptime", format::duration(s.connected_secs + elapsed)),
                ("last-activity", "10ms".to_owned()),
                ("signal-strength", format!("{}@{band}", s.signal)),
                ("signal-to-noise", (s.signal + 105).to_string()),
                ("signal-strength-ch0", (s.signal - 2).to_string()),
                ("tx-ccq", s.ccq.to_string()),
                ("distance", "1".to_owned()),
                ("last-ip", s.last_ip.to_string()),
                ("authentication-type", "wpa2-psk".to_owned()),
            ]
        })
        .collect()
}
