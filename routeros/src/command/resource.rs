//! `/system/resource/print`: version, board, uptime, load, memory and storage.

use std::time::Duration;

use crate::values::{self, Version};
use crate::{Client, Command, Error, sentence::Attrs};

const FIELDS: &[&str] = &[
    "version",
    "board-name",
    "architecture-name",
    "uptime",
    "cpu-load",
    "free-memory",
    "total-memory",
    "free-hdd-space",
    "total-hdd-space",
    "last-config-change",
];

/// System resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    /// `version` as the router wrote it, e.g. `7.16.2 (stable)`.
    pub version_text: Option<String>,
    /// `version`, parsed.
    pub version: Option<Version>,
    /// `board-name`, e.g. `RB5009UG+S+IN`, `CHR`.
    pub board_name: Option<String>,
    /// `architecture-name`: arm, arm64, mipsbe, x86_64…
    pub architecture: Option<String>,
    /// `uptime`.
    pub uptime: Option<Duration>,
    /// `cpu-load`, percent.
    pub cpu_load: Option<u64>,
    /// `free-memory`, bytes.
    pub free_memory: Option<u64>,
    /// `total-memory`, bytes.
    pub total_memory: Option<u64>,
    /// `free-hdd-space`, bytes.
    pub free_hdd: Option<u64>,
    /// `total-hdd-space`, bytes.
    pub total_hdd: Option<u64>,
    /// `last-config-change` (newer v7 only), as the router wrote it.
    pub last_config_change: Option<String>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/system/resource/print").proplist(FIELDS)
}

/// The resources from the reply rows (one row; an empty reply gives all `None`).
pub fn parse(rows: &[Attrs]) -> Resource {
    let Some(row) = rows.first() else {
        return Resource::default();
    };
    let version_text = super::text(row, "version");
    Resource {
        version: version_text.as_deref().and_then(values::version),
        version_text,
        board_name: super::text(row, "board-name"),
        architecture: super::text(row, "architecture-name"),
        uptime: super::duration(row, "uptime"),
        cpu_load: super::count(row, "cpu-load"),
        free_memory: super::count(row, "free-memory"),
        total_memory: super::count(row, "total-memory"),
        free_hdd: super::count(row, "free-hdd-space"),
        total_hdd: super::count(row, "total-hdd-space"),
        last_config_change: super::text(row, "last-config-change"),
    }
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Resource, Error> {
    Ok(parse(&client.run(&command()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v7_row_parses_and_a_bad_number_is_only_that_field() {
        let rows = [Attrs::from_iter([
            ("version", "7.16.2 (stable)"),
            ("board-name", "RB5009UG+S+IN"),
            ("architecture-name", "arm64"),
            ("uptime", "42d14h23m15s"),
            ("cpu-load", "seven"),
            ("free-memory", "845398016"),
            ("total-memory", "1073741824"),
            ("free-hdd-space", "1000000"),
            ("total-hdd-space", "2000000"),
        ])];
        let r = parse(&rows);
        assert_eq!(
            r.version.as_ref().map(|v| (v.major, v.minor, v.patch)),
            Some((7, 16, 2))
        );
        assert_eq!(r.board_name.as_deref(), Some("RB5009UG+S+IN"));
        assert_eq!(
            r.uptime,
            Some(Duration::from_secs(42 * 86_400 + 14 * 3_600 + 23 * 60 + 15))
        );
        assert_eq!(r.cpu_load, None);
        assert_eq!(r.total_memory, Some(1 << 30));
        assert_eq!(r.last_config_change, None);
        assert!(
            command()
                .words(None)
                .iter()
                .any(|w| w.starts_with("=.proplist=version,"))
        );
    }
}
