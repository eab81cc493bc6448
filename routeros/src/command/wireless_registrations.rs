//! `/interface/wireless/registration-table/print` (RouterOS 6 wireless
//! package): associated wireless clients.

use std::time::Duration;

use crate::values::{self, Signal};
use crate::{Client, Command, Error, sentence::Attrs};

/// One associated client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// `mac-address`.
    pub mac: Option<String>,
    /// `interface`.
    pub interface: Option<String>,
    /// `signal-strength`, e.g. `-67@5GHz`.
    pub signal: Option<Signal>,
    /// `tx-rate`, bits/s.
    pub tx_rate: Option<u64>,
    /// `rx-rate`, bits/s.
    pub rx_rate: Option<u64>,
    /// `tx-ccq`, percent.
    pub tx_ccq: Option<u64>,
    /// `bytes`: (tx, rx).
    pub bytes: Option<(u64, u64)>,
    /// `uptime`.
    pub uptime: Option<Duration>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/interface/wireless/registration-table/print").proplist(&[
        "mac-address",
        "interface",
        "signal-strength",
        "tx-rate",
        "rx-rate",
        "tx-ccq",
        "bytes",
        "uptime",
    ])
}

/// One client per row.
pub fn parse(rows: &[Attrs]) -> Vec<Registration> {
    rows.iter()
        .map(|row| Registration {
            mac: super::text(row, "mac-address"),
            interface: super::text(row, "interface"),
            signal: row.get("signal-strength").and_then(values::signal),
            tx_rate: super::rate(row, "tx-rate"),
            rx_rate: super::rate(row, "rx-rate"),
            tx_ccq: super::count(row, "tx-ccq"),
            bytes: row.get("bytes").and_then(values::pair),
            uptime: super::duration(row, "uptime"),
        })
        .collect()
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Registration>, Error> {
    Ok(parse(&client.run(&command()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v6_registration_row() {
        let rows = [Attrs::from_iter([
            ("mac-address", "AA:BB:CC:00:11:22"),
            ("interface", "wlan1"),
            ("signal-strength", "-80@5GHz-Ce/a/ac/an"),
            ("tx-rate", "866.6Mbps-80MHz/2S"),
            ("rx-rate", "6.5Mbps-20MHz/1S/SGI"),
            ("tx-ccq", "87"),
            ("bytes", "123456,789012"),
            ("uptime", "3d12h5m"),
        ])];
        let r = &parse(&rows)[0];
        assert_eq!(r.signal.as_ref().map(|s| s.dbm), Some(-80));
        assert_eq!(r.tx_rate, Some(866_600_000));
        assert_eq!(r.rx_rate, Some(6_500_000));
        assert_eq!(r.tx_ccq, Some(87));
        assert_eq!(r.bytes, Some((123_456, 789_012)));
        assert_eq!(r.uptime, Some(Duration::from_secs(3 * 86_400 + 12 * 3_600 + 300)));
    }
}
