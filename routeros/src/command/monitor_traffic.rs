//! `/interface/monitor-traffic =interface=ether1,ether2`: live rates, one row
//! per interface about every second, until cancelled.

use crate::client::ReplyStream;
use crate::{Client, Command, Error, sentence::Attrs};

/// One sample for one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficSample {
    /// `name`: the interface.
    pub name: Option<String>,
    /// `rx-bits-per-second`.
    pub rx_bits_per_second: Option<u64>,
    /// `tx-bits-per-second`.
    pub tx_bits_per_second: Option<u64>,
    /// `rx-packets-per-second`.
    pub rx_packets_per_second: Option<u64>,
    /// `tx-packets-per-second`.
    pub tx_packets_per_second: Option<u64>,
}

/// The command for these interfaces.
pub fn command(interfaces: &[&str]) -> Command {
    Command::new("/interface/monitor-traffic")
        .attr("interface", &interfaces.join(","))
        .proplist(&[
            "name",
            "rx-bits-per-second",
            "tx-bits-per-second",
            "rx-packets-per-second",
            "tx-packets-per-second",
        ])
}

/// One streamed row.
pub fn parse(row: &Attrs) -> TrafficSample {
    TrafficSample {
        name: super::text(row, "name"),
        rx_bits_per_second: super::count(row, "rx-bits-per-second"),
        tx_bits_per_second: super::count(row, "tx-bits-per-second"),
        rx_packets_per_second: super::count(row, "rx-packets-per-second"),
        tx_packets_per_second: super::count(row, "tx-packets-per-second"),
    }
}

/// Starts monitoring; feed each row of the stream to [`parse`]. Dropping the
/// stream stops the monitor on the router.
pub async fn start(client: &Client, interfaces: &[&str]) -> Result<ReplyStream, Error> {
    client.stream(&command(interfaces)).await
}
