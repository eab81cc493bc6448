//! `/log/print`: the router's log buffer.
//!
//! `.id`s (`*1A2B`) grow as lines are added, so a poller remembers the last
//! `.id` it saw and keeps only later lines with [`after`]. The buffer is
//! small (1000 lines by default), so reading it whole is cheap.

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

/// The numeric part of a `.id` (`*1A2B` → 0x1A2B).
fn id_number(id: &str) -> Option<u64> {
    u64::from_str_radix(id.strip_prefix('*')?, 16).ok()
}

/// The lines after the one with `.id` `last_id`. If `last_id` is unparsable,
/// every line is returned; lines whose own `.id` is missing are kept.
pub fn after(lines: Vec<LogLine>, last_id: &str) -> Vec<LogLine> {
    let Some(last) = id_number(last_id) else {
        return lines;
    };
    lines
        .into_iter()
        .filter(|line| line.id.as_deref().and_then(id_number).is_none_or(|n| n > last))
        .collect()
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
        assert_eq!(after(lines, "garbage").len(), 3);
    }
}
