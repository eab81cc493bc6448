//! Hides secret values in RouterOS exports and diffs until someone asks to
//! see them (and an event records who did).
//!
//! An export line is a command with `name=value` attributes; a value is a
//! word, or a double-quoted string with backslash escapes. The values of
//! attributes whose names carry secrets are replaced by [`MASK`].

/// What a hidden value shows instead.
pub const MASK: &str = "********";

/// Whether `name` (an attribute name) holds a secret: passwords, shared
/// secrets, pre-shared and authentication keys, passphrases.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with("-key")
        || name == "key"
        || name.contains("secret")
        || name.contains("password")
        || name.contains("passphrase")
        || name.contains("psk")
}

/// `text` (an export or a diff) with secret values masked, line by line, and
/// whether any were.
pub fn mask_text(text: &str) -> (String, bool) {
    let mut any = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let (line, hid) = mask_line(l);
            any |= hid;
            line
        })
        .collect();
    (lines.join("\n"), any)
}

/// `line` with secret values masked, and whether anything was.
pub fn mask_line(line: &str) -> (String, bool) {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut masked = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        // An attribute name starts the line, or follows a space (or a diff's
        // leading `+`/`-`).
        let at_word =
            i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' || (i == 1 && matches!(bytes[0], b'+' | b'-'));
        if !at_word || bytes[i] == b'"' {
            i = skip_token(bytes, i);
            continue;
        }
        let name_end = bytes[i..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
            .map_or(bytes.len(), |p| i + p);
        if name_end < bytes.len() && bytes[name_end] == b'=' && name_end > i && is_secret(&line[i..name_end]) {
            let value_start = name_end + 1;
            let value_end = value_end(bytes, value_start);
            if value_end > value_start {
                out.push_str(&line[copied..value_start]);
                out.push_str(MASK);
                copied = value_end;
                masked = true;
            }
            i = value_end;
        } else {
            i = skip_token(bytes, i);
        }
    }
    out.push_str(&line[copied..]);
    (out, masked)
}

/// Where the value starting at `start` ends: after its closing quote, or at
/// the next blank.
fn value_end(bytes: &[u8], start: usize) -> usize {
    if bytes.get(start) == Some(&b'"') {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        bytes.len()
    } else {
        bytes[start..]
            .iter()
            .position(|b| *b == b' ' || *b == b'\t')
            .map_or(bytes.len(), |p| start + p)
    }
}

/// Past the token at `i` (a quoted string as a whole) and the blank after it.
fn skip_token(bytes: &[u8], i: usize) -> usize {
    let mut j = i;
    let mut quoted = false;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if quoted => j += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => return j + 1,
            _ => {}
        }
        j += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(line: &str) -> String {
        mask_line(line).0
    }

    #[test]
    fn secret_values_are_masked_and_the_rest_kept() {
        assert_eq!(
            masked("/user add name=bob password=hunter2 group=full"),
            "/user add name=bob password=******** group=full"
        );
        assert_eq!(
            masked(r#"set wlan1 wpa2-pre-shared-key="a b\" c" ssid="Lab""#),
            r#"set wlan1 wpa2-pre-shared-key=******** ssid="Lab""#
        );
        assert_eq!(
            masked("add authentication-key=k1 secret=s passphrase=p wpa-pre-shared-key=x ipsec-secret=y private-key=z"),
            "add authentication-key=******** secret=******** passphrase=******** wpa-pre-shared-key=******** \
             ipsec-secret=******** private-key=********"
        );
        assert_eq!(
            masked("+add name=ppp1 password=new"),
            "+add name=ppp1 password=********"
        );
        assert_eq!(
            masked("-add name=ppp1 password=old"),
            "-add name=ppp1 password=********"
        );
        // A secret-looking word inside a quoted value is not an attribute.
        assert_eq!(
            masked(r#"set comment="password=visible" name=x"#),
            r#"set comment="password=visible" name=x"#
        );
        assert_eq!(
            mask_line("/ip address add address=192.0.2.1/24"),
            ("/ip address add address=192.0.2.1/24".into(), false)
        );
        assert!(mask_line("set password=x").1);
        // Empty values stay empty.
        assert_eq!(masked("set password= name=x"), "set password= name=x");
    }
}
