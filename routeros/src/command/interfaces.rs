//! `/interface/print`: every interface with its state and counters.

use crate::values::{self, DateTime};
use crate::{Client, Command, Error, sentence::Attrs};

const FIELDS: &[&str] = &[
    ".id",
    "name",
    "type",
    "running",
    "disabled",
    "mac-address",
    "rx-byte",
    "tx-byte",
    "rx-packet",
    "tx-packet",
    "link-downs",
    "last-link-down-time",
];

/// One interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// `.id`, e.g. `*1`.
    pub id: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `type`: ether, vlan, bridge, wlan…
    pub kind: Option<String>,
    /// `running`.
    pub running: Option<bool>,
    /// `disabled`.
    pub disabled: Option<bool>,
    /// `mac-address`.
    pub mac: Option<String>,
    /// `rx-byte`.
    pub rx_bytes: Option<u64>,
    /// `tx-byte`.
    pub tx_bytes: Option<u64>,
    /// `rx-packet`.
    pub rx_packets: Option<u64>,
    /// `tx-packet`.
    pub tx_packets: Option<u64>,
    /// `link-downs`.
    pub link_downs: Option<u64>,
    /// `last-link-down-time`, router local time.
    pub last_link_down: Option<DateTime>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/interface/print").proplist(FIELDS)
}

/// One interface per row.
pub fn parse(rows: &[Attrs]) -> Vec<Interface> {
    rows.iter()
        .map(|row| Interface {
            id: super::text(row, ".id"),
            name: super::text(row, "name"),
            kind: super::text(row, "type"),
            running: super::flag(row, "running"),
            disabled: super::flag(row, "disabled"),
            mac: super::text(row, "mac-address"),
            rx_bytes: super::count(row, "rx-byte"),
            tx_bytes: super::count(row, "tx-byte"),
            rx_packets: super::count(row, "rx-packet"),
            tx_packets: super::count(row, "tx-packet"),
            link_downs: super::count(row, "link-downs"),
            last_link_down: row.get("last-link-down-time").and_then(values::datetime),
        })
        .collect()
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Interface>, Error> {
    Ok(parse(&client.run(&command()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_flags_and_dates() {
        let rows = [
            Attrs::from_iter([
                ("name", "ether1"),
                ("type", "ether"),
                ("running", "true"),
                ("disabled", "false"),
                ("rx-byte", "123456789"),
                ("tx-byte", "x"),
                ("last-link-down-time", "2026-09-22 20:42:21"),
            ]),
            Attrs::from_iter([("name", "wlan1")]),
        ];
        let ifs = parse(&rows);
        assert_eq!(ifs.len(), 2);
        assert_eq!(ifs[0].running, Some(true));
        assert_eq!(ifs[0].rx_bytes, Some(123_456_789));
        assert_eq!(ifs[0].tx_bytes, None);
        assert_eq!(ifs[0].last_link_down.map(|d| d.hour), Some(20));
        assert_eq!(ifs[1].running, None);
    }
}
