//! `/ip/dhcp-server/lease/print`: DHCP leases.

use std::time::Duration;

use crate::{Client, Command, Error, sentence::Attrs};

/// One lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// `address`.
    pub address: Option<String>,
    /// `mac-address`.
    pub mac: Option<String>,
    /// `host-name`.
    pub host_name: Option<String>,
    /// `status`: bound, waiting, offered…
    pub status: Option<String>,
    /// `expires-after`.
    pub expires_after: Option<Duration>,
    /// `server`.
    pub server: Option<String>,
    /// `dynamic`.
    pub dynamic: Option<bool>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/ip/dhcp-server/lease/print").proplist(&[
        "address",
        "mac-address",
        "host-name",
        "status",
        "expires-after",
        "server",
        "dynamic",
    ])
}

/// One lease per row.
pub fn parse(rows: &[Attrs]) -> Vec<Lease> {
    rows.iter()
        .map(|row| Lease {
            address: super::text(row, "address"),
            mac: super::text(row, "mac-address"),
            host_name: super::text(row, "host-name"),
            status: super::text(row, "status"),
            expires_after: super::duration(row, "expires-after"),
            server: super::text(row, "server"),
            dynamic: super::flag(row, "dynamic"),
        })
        .collect()
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Lease>, Error> {
    Ok(parse(&client.run(&command()).await?))
}
