//! `/export` as a device answers it over SSH: the timestamp comment, the
//! `# software id`, `# model` and `# serial number` comments, then the
//! configuration, with CRLF line endings as a router's SSH session sends them.
//!
//! What differs between the lines:
//! - v7 hides sensitive values (`password=`, pre-shared keys, …) unless
//!   `show-sensitive` is given; `hide-sensitive` hides them on both lines;
//! - v6 includes them and does not know `show-sensitive`: it answers
//!   `expected end of command (line 1 column 9)`, the text RouterOS 6
//!   prints for an argument it does not take (`show-sensitive` starts in
//!   column 9 of `/export show-sensitive`).
//!
//! The configuration is kept one command per line (`/ip address add …`);
//! `/export terse` prints it so, plain `/export` groups consecutive commands
//! of one menu under a `/menu` line as RouterOS does (without RouterOS's
//! wrapping of long lines at 80 columns).

use std::time::SystemTime;

use crate::catalog::RosMajor;
use crate::device::Profile;
use crate::format::Civil;

/// Attribute names whose values RouterOS treats as sensitive.
const SENSITIVE: &[&str] = &[
    "password",
    "secret",
    "passphrase",
    "private-key",
    "wpa-pre-shared-key",
    "wpa2-pre-shared-key",
    "authentication-key",
    "auth-key",
];

/// Verbs that end a menu path in a terse line.
const VERBS: &[&str] = &["add", "set", "remove", "enable", "disable"];

/// What `/export …` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Request {
    pub(crate) show_sensitive: bool,
    pub(crate) hide_sensitive: bool,
    pub(crate) terse: bool,
}

/// Why a command line got an error instead of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandError(pub(crate) String);

/// Parses an exec command line. Only `/export` (or `export`) and its flags
/// are known; anything else gets RouterOS's words for it.
pub(crate) fn parse(command: &str, major: RosMajor) -> Result<Request, CommandError> {
    let mut words = command.split_whitespace();
    let first = words.next().unwrap_or("");
    if first != "/export" && first != "export" {
        return Err(CommandError(format!(
            "bad command name {} (line 1 column 1)",
            first.trim_start_matches('/')
        )));
    }
    let mut req = Request::default();
    // Byte offset where the next word is searched; RouterOS counts columns
    // from 1.
    let mut pos = command.find(first).unwrap_or(0) + first.len();
    for word in words {
        let at = command[pos..].find(word).map_or(pos, |at| pos + at);
        pos = at + word.len();
        match (word, major) {
            ("show-sensitive", RosMajor::V7) => req.show_sensitive = true,
            ("hide-sensitive", _) => req.hide_sensitive = true,
            ("terse", _) => req.terse = true,
            _ => {
                return Err(CommandError(format!(
                    "expected end of command (line 1 column {})",
                    at + 1
                )));
            }
        }
    }
    Ok(req)
}

/// The export text, CRLF-terminated.
pub(crate) fn render(profile: &Profile, lines: &[String], req: Request, now: SystemTime) -> String {
    let civil = Civil::from_system(now);
    let when = match profile.version.major {
        RosMajor::V6 => civil.v6(),
        RosMajor::V7 => civil.iso(),
    };
    let hide = req.hide_sensitive || (profile.version.major == RosMajor::V7 && !req.show_sensitive);
    let mut out = String::with_capacity(64 + lines.iter().map(|l| l.len() + 2).sum::<usize>());
    let mut push = |line: &str| {
        out.push_str(line);
        out.push_str("\r\n");
    };
    push(&format!("# {when} by RouterOS {}", profile.version.number));
    push(&format!("# software id = {}", profile.software_id));
    if profile.board.routerboard {
        push("#");
        push(&format!("# model = {}", profile.board.model));
        push(&format!("# serial number = {}", profile.serial));
    }
    let mut menu: Option<String> = None;
    for line in lines {
        let line = if hide { without_sensitive(line) } else { line.clone() };
        if req.terse {
            push(&line);
            continue;
        }
        match split_menu(&line) {
            Some((m, command)) => {
                if menu.as_deref() != Some(m) {
                    push(m);
                    menu = Some(m.to_owned());
                }
                push(command);
            }
            None => {
                menu = None;
                push(&line);
            }
        }
    }
    out
}

/// `/ip address add address=…` → (`/ip address`, `add address=…`).
fn split_menu(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with('/') {
        return None;
    }
    let mut at = 0;
    for word in line.split(' ') {
        if VERBS.contains(&word) && at > 0 {
            return Some((line[..at - 1].trim_end(), &line[at..]));
        }
        at += word.len() + 1;
    }
    None
}

/// The line without its sensitive `name=value` arguments (quoted values
/// may hold spaces).
fn without_sensitive(line: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        let end = word_end(rest);
        let word = &rest[..end];
        let name = word.split_once('=').map(|(n, _)| n);
        if !name.is_some_and(|n| SENSITIVE.contains(&n)) {
            kept.push(word);
        }
        rest = &rest[end..];
    }
    kept.join(" ")
}

/// Length of the first word of `s`: up to a space outside double quotes.
fn word_end(s: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ' ' if !quoted => return i,
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_refuses_show_sensitive_with_routeros_words() {
        assert_eq!(
            parse("/export show-sensitive", RosMajor::V6),
            Err(CommandError("expected end of command (line 1 column 9)".into()))
        );
        assert_eq!(
            parse("/export terse show-sensitive", RosMajor::V6),
            Err(CommandError("expected end of command (line 1 column 15)".into()))
        );
        assert_eq!(parse("/export", RosMajor::V6), Ok(Request::default()));
        assert_eq!(
            parse("/export show-sensitive", RosMajor::V7),
            Ok(Request {
                show_sensitive: true,
                ..Request::default()
            })
        );
        assert_eq!(
            parse("/system reboot", RosMajor::V7),
            Err(CommandError("bad command name system (line 1 column 1)".into()))
        );
    }

    #[test]
    fn sensitive_arguments_are_dropped_even_when_quoted() {
        assert_eq!(
            without_sensitive("/ppp secret add name=vpn password=\"a b\\\" c\" service=l2tp"),
            "/ppp secret add name=vpn service=l2tp"
        );
        assert_eq!(
            without_sensitive("/interface wireless security-profiles add name=site wpa2-pre-shared-key=xyz"),
            "/interface wireless security-profiles add name=site"
        );
        assert_eq!(
            without_sensitive("/ip dns set servers=1.1.1.1"),
            "/ip dns set servers=1.1.1.1"
        );
    }

    #[test]
    fn menus_group_consecutive_commands() {
        assert_eq!(
            split_menu("/ip address add address=192.0.2.1/24"),
            Some(("/ip address", "add address=192.0.2.1/24"))
        );
        assert_eq!(
            split_menu("/system identity set name=x"),
            Some(("/system identity", "set name=x"))
        );
        assert_eq!(split_menu("/ip dns print"), None);
        assert_eq!(split_menu("add name=x"), None);
    }
}
