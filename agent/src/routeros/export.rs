//! RouterOS configuration exports: the timestamp header is normalised so that
//! an unchanged configuration hashes the same on every export.
//!
//! The first line of `/export` is a comment with the time of the export:
//! - v6: `# jan/02/1970 00:00:00 by RouterOS 6.49.10`
//! - v7.10+: `# 2024-06-05 12:00:00 by RouterOS 7.16.2`
//!
//! It becomes `# by RouterOS <version>`: the version stays (an upgrade is a
//! change worth a version), the time goes. Everything else is kept byte for
//! byte, except that line endings become `\n` (SSH sessions may add `\r`).

/// The export with its timestamp normalised and line endings made `\n`.
pub fn normalise(export: &str) -> String {
    let mut out = String::with_capacity(export.len());
    for (i, line) in export.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if let Some(version) = header_version(line).filter(|_| i < 3) {
            out.push_str("# by RouterOS ");
            out.push_str(version);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The RouterOS version named by a header line, if `line` is one.
pub fn header_version(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    let (when, version) = rest.split_once(" by RouterOS ")?;
    let mut parts = when.split(' ');
    let (date, time) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_time(time) || !(is_v6_date(date) || is_v7_date(date)) {
        return None;
    }
    Some(version.trim())
}

fn is_time(s: &str) -> bool {
    s.len() == 8
        && s.split(':').count() == 3
        && s.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `jan/02/1970`
fn is_v6_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('/').collect();
    p.len() == 3
        && p[0].len() == 3
        && p[0].bytes().all(|b| b.is_ascii_lowercase())
        && p[1].len() == 2
        && p[2].len() == 4
        && p[1].bytes().chain(p[2].bytes()).all(|b| b.is_ascii_digit())
}

/// `2024-06-05`
fn is_v7_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3
        && p[0].len() == 4
        && p[1].len() == 2
        && p[2].len() == 2
        && p.iter().all(|x| x.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_and_v7_headers_normalise_and_the_rest_is_kept() {
        let v6a = "# jan/02/1970 00:00:00 by RouterOS 6.49.10\r\n# software id = ABCD-1234\r\n/ip address\r\nadd address=192.0.2.1/24 interface=ether1\r\n";
        let v6b = "# sep/22/2026 20:42:21 by RouterOS 6.49.10\n# software id = ABCD-1234\n/ip address\nadd address=192.0.2.1/24 interface=ether1\n";
        assert_eq!(normalise(v6a), normalise(v6b));
        assert!(normalise(v6a).starts_with("# by RouterOS 6.49.10\n# software id = ABCD-1234\n"));
        let v7a =
            "# 2024-06-05 12:00:00 by RouterOS 7.16.2\n# model = RB5009UG+S+IN\n/system identity\nset name=core\n";
        let v7b =
            "# 2026-11-24 08:15:59 by RouterOS 7.16.2\n# model = RB5009UG+S+IN\n/system identity\nset name=core\n";
        assert_eq!(normalise(v7a), normalise(v7b));
        let changed = v7b.replace("core", "edge");
        assert_ne!(normalise(v7a), normalise(&changed));
        let upgraded = v7b.replace("7.16.2", "7.18.2");
        assert_ne!(normalise(v7a), normalise(&upgraded), "an upgrade is a change");
    }

    #[test]
    fn look_alike_lines_are_not_headers() {
        for line in [
            "# by RouterOS 7.1",
            "# 2024-06-05 by RouterOS 7.1",
            "# 2024-6-5 12:00:00 by RouterOS 7.1",
            "# JAN/02/1970 00:00:00 by RouterOS 6.1",
            "add comment=\"# 2024-06-05 12:00:00 by RouterOS 7.1\"",
        ] {
            assert_eq!(header_version(line), None, "{line}");
        }
        // A header-shaped line deep in the body (a comment) is kept as is.
        let body = "/system identity\nset name=x\n# 2024-06-05 12:00:00 by RouterOS 7.1\n";
        let text = format!("# 2024-06-05 12:00:00 by RouterOS 7.1\n{body}");
        assert!(normalise(&text).ends_with(body));
    }
}
