//! `/system/identity/print`: the router's name.

use crate::{Client, Command, Error, sentence::Attrs};

/// The command.
pub fn command() -> Command {
    Command::new("/system/identity/print").proplist(&["name"])
}

/// The identity from the reply rows; `None` if the router sent none.
pub fn parse(rows: &[Attrs]) -> Option<String> {
    rows.first().and_then(|row| super::text(row, "name"))
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Option<String>, Error> {
    Ok(parse(&client.run(&command()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_from_the_first_row() {
        let rows = [Attrs::from_iter([("name", "core-router")])];
        assert_eq!(parse(&rows).as_deref(), Some("core-router"));
        assert_eq!(parse(&[]), None);
    }
}
