//! `/ip/neighbor/print`: devices seen by MNDP, CDP or LLDP.

use crate::{Client, Command, Error, sentence::Attrs};

/// One neighbour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbor {
    /// `address`.
    pub address: Option<String>,
    /// `mac-address`.
    pub mac: Option<String>,
    /// `identity`.
    pub identity: Option<String>,
    /// `platform`, e.g. `MikroTik`.
    pub platform: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `board`.
    pub board: Option<String>,
    /// `interface` it was seen on.
    pub interface: Option<String>,
    /// `discovered-by` (7.7+): `mndp`, `cdp`, `lldp`, comma-separated.
    pub discovered_by: Option<String>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/ip/neighbor/print").proplist(&[
        "address",
        "mac-address",
        "identity",
        "platform",
        "version",
        "board",
        "interface",
        "discovered-by",
    ])
}

/// One neighbour per row.
pub fn parse(rows: &[Attrs]) -> Vec<Neighbor> {
    rows.iter()
        .map(|row| Neighbor {
            address: super::text(row, "address"),
            mac: super::text(row, "mac-address"),
            identity: super::text(row, "identity"),
            platform: super::text(row, "platform"),
            version: super::text(row, "version"),
            board: super::text(row, "board"),
            interface: super::text(row, "interface"),
            discovered_by: super::text(row, "discovered-by"),
        })
        .collect()
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Neighbor>, Error> {
    Ok(parse(&client.run(&command()).await?))
}
