//! `/ip/address/print`: IPv4 addresses on interfaces.

use crate::{Client, Command, Error, sentence::Attrs};

/// One address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `address` with prefix length, e.g. `192.0.2.1/24`.
    pub address: Option<String>,
    /// `network`.
    pub network: Option<String>,
    /// `interface`.
    pub interface: Option<String>,
    /// `disabled`.
    pub disabled: Option<bool>,
    /// `dynamic` (from DHCP client, PPP…).
    pub dynamic: Option<bool>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/ip/address/print").proplist(&["address", "network", "interface", "disabled", "dynamic"])
}

/// One address per row.
pub fn parse(rows: &[Attrs]) -> Vec<Address> {
    rows.iter()
        .map(|row| Address {
            address: super::text(row, "address"),
            network: super::text(row, "network"),
            interface: super::text(row, "interface"),
            disabled: super::flag(row, "disabled"),
            dynamic: super::flag(row, "dynamic"),
        })
        .collect()
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Address>, Error> {
    Ok(parse(&client.run(&command()).await?))
}
