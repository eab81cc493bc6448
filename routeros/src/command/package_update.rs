//! `/system/package/update/print`: the update channel and whether a newer
//! version exists (as of the router's last check).

use crate::{Client, Command, Error, sentence::Attrs};

/// Update status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageUpdate {
    /// `channel`: stable, long-term, testing, development.
    pub channel: Option<String>,
    /// `installed-version`.
    pub installed_version: Option<String>,
    /// `latest-version`, when the router has checked.
    pub latest_version: Option<String>,
    /// `status`, e.g. "New version is available".
    pub status: Option<String>,
    /// Whether an update is available: from `status`, or else from comparing
    /// the versions; `None` when neither tells.
    pub update_available: Option<bool>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/system/package/update/print").proplist(&["channel", "installed-version", "latest-version", "status"])
}

/// The status from the reply rows.
pub fn parse(rows: &[Attrs]) -> PackageUpdate {
    let Some(row) = rows.first() else {
        return PackageUpdate::default();
    };
    let installed_version = super::text(row, "installed-version");
    let latest_version = super::text(row, "latest-version").filter(|v| !v.is_empty());
    let status = super::text(row, "status");
    let from_status = status.as_deref().and_then(|s| {
        let s = s.to_ascii_lowercase();
        if s.contains("new version is available") {
            Some(true)
        } else if s.contains("already up to date") {
            Some(false)
        } else {
            None
        }
    });
    let from_versions = match (&installed_version, &latest_version) {
        (Some(i), Some(l)) => Some(i != l),
        _ => None,
    };
    PackageUpdate {
        channel: super::text(row, "channel"),
        installed_version,
        latest_version,
        status,
        update_available: from_status.or(from_versions),
    }
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<PackageUpdate, Error> {
    Ok(parse(&client.run(&command()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_decides() {
        let row = |status: &str| {
            parse(&[Attrs::from_iter([
                ("channel", "stable"),
                ("installed-version", "7.16.2"),
                ("latest-version", "7.17"),
                ("status", status),
            ])])
        };
        assert_eq!(row("New version is available").update_available, Some(true));
        assert_eq!(row("System is already up to date").update_available, Some(false));
        assert_eq!(row("finding out latest version...").update_available, Some(true));
        assert_eq!(parse(&[]).update_available, None);
    }
}
