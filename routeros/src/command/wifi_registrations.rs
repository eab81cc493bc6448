//! `/interface/wifi/registration-table/print` (RouterOS 7 wifi package):
//! associated wireless clients.

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
    /// `signal`, dBm (plain `-67`).
    pub signal: Option<Signal>,
    /// `tx-rate`, bits/s.
    pub tx_rate: Option<u64>,
    /// `rx-rate`, bits/s.
    pub rx_rate: Option<u64>,
    /// `bytes`: (tx, rx).
    pub bytes: Option<(u64, u64)>,
    /// `uptime`.
    pub uptime: Option<Duration>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/interface/wifi/registration-table/print").proplist(&[
        "mac-address",
        "interface",
        "signal",
        "tx-rate",
        "rx-rate",
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
            signal: row.get("signal").and_then(values::signal),
            tx_rate: super::rate(row, "tx-rate"),
            rx_rate: super::rate(row, "rx-rate"),
            bytes: row.get("bytes").and_then(values::pair),
            uptime: super::duration(row, "uptime"),
        })
        .collect()
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Registration>, Error> {
    Ok(parse(&client.run(&command()).await?))
}
