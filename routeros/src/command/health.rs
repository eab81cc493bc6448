//! `/system/health/print`: sensor readings.
//!
//! RouterOS 6 answers one row of flat keys (`voltage=24.1`, `temperature=41`);
//! RouterOS 7 answers one row per sensor (`name=cpu-temperature value=48
//! type=C`). Sensorless boards answer nothing or `state=disabled`. Both shapes
//! become the same list of readings.

use crate::{Client, Command, Error, sentence::Attrs};

/// One sensor reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Sensor name: `voltage`, `temperature`, `cpu-temperature`, `fan1-speed`…
    pub name: String,
    /// The value as the router wrote it.
    pub raw: String,
    /// The value as a number, when it is one.
    pub value: Option<f64>,
    /// Unit (v7 `type`: `C`, `V`, `W`, `RPM`…), when given.
    pub unit: Option<String>,
}

/// v7 row fields and the v6 flat keys known from RouterBOARDs; a v6 sensor
/// missing here is not reported, the price of never printing every property.
const FIELDS: &[&str] = &[
    "name",
    "value",
    "type",
    "state",
    "voltage",
    "current",
    "temperature",
    "cpu-temperature",
    "board-temperature1",
    "board-temperature2",
    "sfp-temperature",
    "switch-temperature",
    "power-consumption",
    "fan1-speed",
    "fan2-speed",
    "fan3-speed",
    "fan4-speed",
    "psu1-voltage",
    "psu2-voltage",
    "psu1-state",
    "psu2-state",
    "poe-out-consumption",
];

/// The command.
pub fn command() -> Command {
    Command::new("/system/health/print").proplist(FIELDS)
}

/// Readings from either reply shape.
pub fn parse(rows: &[Attrs]) -> Vec<Reading> {
    let mut readings = Vec::new();
    for row in rows {
        if let Some(name) = row.get("name") {
            readings.push(reading(name, row.get("value").unwrap_or_default(), row.get("type")));
            continue;
        }
        for (key, raw) in row.iter() {
            if key.starts_with('.') || key == "state" {
                continue;
            }
            readings.push(reading(key, raw, None));
        }
    }
    readings
}

fn reading(name: &str, raw: &str, unit: Option<&str>) -> Reading {
    Reading {
        name: name.to_owned(),
        raw: raw.to_owned(),
        value: raw.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        unit: unit.filter(|u| !u.is_empty()).map(str::to_owned),
    }
}

/// Runs [`command`] and [`parse`]s the reply.
pub async fn fetch(client: &Client) -> Result<Vec<Reading>, Error> {
    Ok(parse(&client.run(&command()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_flat_and_v7_rows_give_the_same_shape() {
        let v6 = parse(&[Attrs::from_iter([("voltage", "24.1"), ("temperature", "41")])]);
        assert_eq!(v6.len(), 2);
        assert_eq!(v6[0].name, "voltage");
        assert_eq!(v6[0].value, Some(24.1));
        let v7 = parse(&[
            Attrs::from_iter([
                (".id", "*1"),
                ("name", "cpu-temperature"),
                ("value", "48"),
                ("type", "C"),
            ]),
            Attrs::from_iter([("name", "fan1-speed"), ("value", "n/a"), ("type", "RPM")]),
        ]);
        assert_eq!(v7[0].name, "cpu-temperature");
        assert_eq!((v7[0].value, v7[0].unit.as_deref()), (Some(48.0), Some("C")));
        assert_eq!(v7[1].value, None);
        assert!(parse(&[Attrs::from_iter([("state", "disabled")])]).is_empty());
        assert!(parse(&[]).is_empty());
    }
}
