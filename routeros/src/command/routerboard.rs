//! `/system/routerboard/print`: serial number and firmware. CHR and x86 have
//! no RouterBOARD and answer with a `!trap` "no such command prefix".

use crate::{Client, Command, Error, sentence::Attrs};

/// RouterBOARD details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routerboard {
    /// `serial-number`.
    pub serial_number: Option<String>,
    /// `model`.
    pub model: Option<String>,
    /// `current-firmware`.
    pub current_firmware: Option<String>,
    /// `upgrade-firmware`.
    pub upgrade_firmware: Option<String>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/system/routerboard/print").proplist(&[
        "serial-number",
        "model",
        "current-firmware",
        "upgrade-firmware",
    ])
}

/// The details from the reply rows.
pub fn parse(rows: &[Attrs]) -> Option<Routerboard> {
    let row = rows.first()?;
    Some(Routerboard {
        serial_number: super::text(row, "serial-number"),
        model: super::text(row, "model"),
        current_firmware: super::text(row, "current-firmware"),
        upgrade_firmware: super::text(row, "upgrade-firmware"),
    })
}

/// Runs [`command`]; `Ok(None)` on a router without a RouterBOARD.
pub async fn fetch(client: &Client) -> Result<Option<Routerboard>, Error> {
    match client.run(&command()).await {
        Ok(rows) => Ok(parse(&rows)),
        Err(e) if e.is_no_such_command() => Ok(None),
        Err(e) => Err(e),
    }
}
