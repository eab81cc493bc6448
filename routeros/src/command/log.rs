//! `/log/print`: the router's log buffer.
//!
//! A poller remembers the `.id` of the last line it saw and keeps only the
//! lines printed after that one with [`after`]. The buffer is small (1000
//! lines by default), so reading it whole is cheap. When the remembered line
//! is gone (the buffer rotated past it, or the router rebooted and numbering
//! restarted), every line is returned: there is no telling which are new, and
//! losing lines is worse than repeating them.

use crate::{Client, Command, Error, sentence::Attrs};

/// One log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogLine {
    /// `.id`, e.g. `*1A2B`.
    pub id: Option<String>,
    /// `time` as the router wrote it (`20:42:21`, `sep/22 20:42:21` or a full date).
    pub time: Option<String>,
    /// `topics`, split on commas: `system`, `info`, `account`.
    pub topics: Vec<String>,
    /// `message`.
    pub message: Option<String>,
}

/// The command.
pub fn command() -> Command {
    Command::new("/log/print").proplist(&[".id", "time", "topics", "message"])
}

/// One line per row.
pub fn parse(rows: &[Attrs]) -> Vec<LogLine> {
    rows.iter()
        .map(|row| LogLine {
            id: super::text(row, ".id"),
            time: super::text(row, "time"),
            topics: row
                .get("topics")
                .map(|t| t.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            message: super::text(row, "message"),
        })
        .collect()
}

/// The lines after the one whose `.id` is `last_id`, in the router's order;
/// every line if no line has that `.id`.
pub fn after(mut lines: Vec<LogLine>, last_id: &str) -> Vec<LogLine> {
    match lines.iter().rposition(|line| line.id.as_deref() == Some(last_id)) {
        Some(seen) => lines.split_off(seen + 1),
        None => lines,
    }
}

/// Runs [`command`] and [`parse`]s the reply; with `last_id`, keeps only the
/// lines after it.
pub async fn fetch(client: &Client, last_id: Option<&str>) -> Result<Vec<LogLine>, Error> {
    let lines = parse(&client.run(&command()).await?);
    Ok(match last_id {
        Some(id) => after(lines, id),
        None => lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_after_a_known_id() {
        let rows: Vec<Attrs> = ["*9", "*A", "*1F"]
            .iter()
            .map(|id| Attrs::from_iter([(".id", *id), ("time", "20:42:21"), ("topics", "system,info,account")]))
            .collect();
        let lines = parse(&rows);
        assert_eq!(lines[0].topics, ["system", "info", "account"]);
        let newer = after(lines.clone(), "*A");
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].id.as_deref(), Some("*1F"));
        assert!(after(lines.clone(), "*1F").is_empty());
        // Rotated away or renumbered after a reboot: all of them.
        assert_eq!(after(lines, "*5").len(), 3);
    }
}
