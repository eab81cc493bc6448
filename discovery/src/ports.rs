//! Port lists: the default is nmap's top 100 TCP ports (nmap 7.93's
//! `--top-ports 100` scan list) plus MikroTik's WinBox (8291) and API
//! (8728, 8729) ports, which it does not include.
use std::collections::BTreeSet;

/// nmap's top 100 TCP ports, then MikroTik's.
pub const TOP_100: &[u16] = &[
    7, 9, 13, 21, 22, 23, 25, 26, 37, 53, 79, 80, 81, 88, 106, 110, 111, 113, 119, 135, 139, 143, 144, 179, 199, 389,
    427, 443, 444, 445, 465, 513, 514, 515, 543, 544, 548, 554, 587, 631, 646, 873, 990, 993, 995, 1025, 1026, 1027,
    1028, 1029, 1110, 1433, 1720, 1723, 1755, 1900, 2000, 2001, 2049, 2121, 2717, 3000, 3128, 3306, 3389, 3986, 4899,
    5000, 5009, 5051, 5060, 5101, 5190, 5357, 5432, 5631, 5666, 5800, 5900, 6000, 6001, 6646, 7070, 8000, 8008, 8009,
    8080, 8081, 8443, 8888, 9100, 9999, 10000, 32768, 49152, 49153, 49154, 49155, 49156, 49157,
];

/// Added to [`TOP_100`] by default.
pub const MIKROTIK: &[u16] = &[8291, 8728, 8729];

/// The default scan list: [`TOP_100`] and [`MIKROTIK`], sorted.
pub fn default_ports() -> Vec<u16> {
    TOP_100
        .iter()
        .chain(MIKROTIK)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A port list that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad port list '{list}': {why}")]
pub struct PortListError {
    list: String,
    why: String,
}

/// Parses `top100` (the default list) or `22,80,8000-8010`.
pub fn parse_ports(list: &str) -> Result<Vec<u16>, PortListError> {
    let bad = |why: String| PortListError {
        list: list.to_owned(),
        why,
    };
    if list.trim().eq_ignore_ascii_case("top100") {
        return Ok(default_ports());
    }
    let mut ports = BTreeSet::new();
    for item in list.split(',').map(str::trim) {
        let port = |s: &str| match s.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(format!("'{s}' is not a port from 1 to 65535"))),
            Ok(p) => Ok(p),
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a.trim())?, port(b.trim())?);
                if a > b {
                    return Err(bad(format!("range {item} runs backwards")));
                }
                ports.extend(a..=b);
            }
            None if item.eq_ignore_ascii_case("top100") => ports.extend(default_ports()),
            None => {
                ports.insert(port(item)?);
            }
        }
    }
    Ok(ports.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_is_nmaps_top_100_plus_mikrotik() {
        assert_eq!(TOP_100.len(), 100);
        let d = default_ports();
        assert_eq!(d.len(), 103);
        for p in [21, 22, 23, 53, 80, 443, 445, 3389, 8080, 8291, 8443, 8728, 8729] {
            assert!(d.contains(&p), "{p}");
        }
        assert!(d.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lists_and_ranges_parse_and_mistakes_are_named() {
        assert_eq!(
            parse_ports("22, 80,8000-8002,22").unwrap(),
            vec![22, 80, 8000, 8001, 8002]
        );
        assert_eq!(parse_ports("top100").unwrap(), default_ports());
        assert!(parse_ports("22,top100").unwrap().len() == 103);
        for (list, needle) in [
            ("0", "'0'"),
            ("70000", "'70000'"),
            ("ssh", "'ssh'"),
            ("90-80", "backwards"),
            ("", "''"),
        ] {
            let err = parse_ports(list).unwrap_err().to_string();
            assert!(err.contains(needle), "{list}: {err}");
        }
    }
}

#[cfg(test)]
mod readme_tests {
    /// The README lists the default ports; it must list exactly these.
    #[test]
    fn the_readme_lists_the_default_ports() {
        let readme = include_str!("../../README.md");
        let start = readme.find("The default list (").expect("the README's port list");
        let end = start + readme[start..].find("**Discovery output**").expect("its end");
        let listed: std::collections::BTreeSet<u16> = readme[start..end]
            .split("then MikroTik's):")
            .nth(1)
            .expect("the list after its heading")
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let expected: std::collections::BTreeSet<u16> = super::default_ports().into_iter().collect();
        assert_eq!(listed, expected);
    }
}
