//! One API sentence as the router reads it: the command word, `=name=value`
//! attributes, API attributes (`.tag`, `.proplist`) and query words, plus the
//! query evaluation and `.proplist` projection applied to print results.
//!
//! Queries follow the API manual: each query word pushes a boolean per row
//! (`?name=value` or `?=name=value` equal, `?<name=value` / `?>name=value`
//! compare, `?name` has the property, `?-name` lacks it), `?#…` runs stack
//! operations (`|` or, `&` and, `!` not, `.` drop, a digit copies that stack
//! entry), and a row is printed when every value left on the stack is true.

use crate::data::Row;

/// A parsed command sentence.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) command: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) tag: Option<String>,
    pub(crate) proplist: Option<Vec<String>>,
    pub(crate) queries: Vec<String>,
}

impl Request {
    /// Splits a sentence; bytes that are not UTF-8 are replaced, as they can
    /// only reach unknown commands or never-matching queries.
    pub(crate) fn parse(words: &[Vec<u8>]) -> Option<Self> {
        let mut it = words.iter().map(|w| String::from_utf8_lossy(w).into_owned());
        let command = it.next()?;
        let mut req = Request {
            command,
            ..Default::default()
        };
        for word in it {
            if let Some(rest) = word.strip_prefix('?') {
                req.queries.push(rest.to_owned());
            } else if let Some(rest) = word.strip_prefix('=') {
                let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
                if name == ".proplist" {
                    req.proplist = Some(split_list(value));
                } else if name == ".tag" {
                    req.tag = Some(value.to_owned());
                } else {
                    req.attrs.push((name.to_owned(), value.to_owned()));
                }
            } else if let Some(value) = word.strip_prefix(".tag=") {
                req.tag = Some(value.to_owned());
            } else if let Some(value) = word.strip_prefix(".proplist=") {
                req.proplist = Some(split_list(value));
            }
        }
        Some(req)
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn split_list(value: &str) -> Vec<String> {
    value.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Most entries a query stack may hold, so a hostile query cannot grow it.
const MAX_STACK: usize = 1024;

fn value<'r>(row: &'r Row, name: &str) -> Option<&'r str> {
    row.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

fn compare(have: &str, want: &str) -> std::cmp::Ordering {
    match (have.parse::<i128>(), want.parse::<i128>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => have.cmp(want),
    }
}

/// Whether `row` passes the query words.
pub(crate) fn matches(row: &Row, queries: &[String]) -> bool {
    let mut stack: Vec<bool> = Vec::new();
    for q in queries {
        if let Some(ops) = q.strip_prefix('#') {
            for op in ops.chars() {
                match op {
                    '|' | '&' => {
                        let b = stack.pop().unwrap_or(false);
                        let a = stack.pop().unwrap_or(false);
                        stack.push(if op == '|' { a || b } else { a && b });
                    }
                    '!' => {
                        let a = stack.pop().unwrap_or(false);
                        stack.push(!a);
                    }
                    '.' => {
                        stack.pop();
                    }
                    d if d.is_ascii_digit() => {
                        let at = d as usize - '0' as usize;
                        stack.push(stack.get(at).copied().unwrap_or(false));
                    }
                    _ => {}
                }
            }
        } else {
            let result = if let Some(name) = q.strip_prefix('-') {
                value(row, name).is_none()
            } else if let Some(rest) = q.strip_prefix('<').or_else(|| q.strip_prefix('>')) {
                let (name, want) = rest.split_once('=').unwrap_or((rest, ""));
                let want_less = q.starts_with('<');
                value(row, name).is_some_and(|have| {
                    let ord = compare(have, want);
                    if want_less { ord.is_lt() } else { ord.is_gt() }
                })
            } else {
                let body = q.strip_prefix('=').unwrap_or(q);
                match body.split_once('=') {
                    Some((name, want)) => value(row, name) == Some(want),
                    None => value(row, body).is_some(),
                }
            };
            stack.push(result);
        }
        if stack.len() > MAX_STACK {
            return false;
        }
    }
    stack.iter().all(|&b| b)
}

/// Only the listed properties, in the listed order.
pub(crate) fn project(row: &Row, proplist: Option<&[String]>) -> Row {
    match proplist {
        None => row.clone(),
        Some(names) => names
            .iter()
            .filter_map(|n| row.iter().find(|(k, _)| *k == n.as_str()).cloned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<Vec<u8>> {
        ws.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    fn row() -> Row {
        vec![
            (".id", "*1".to_owned()),
            ("name", "ether1".to_owned()),
            ("type", "ether".to_owned()),
            ("mtu", "1500".to_owned()),
            ("running", "true".to_owned()),
        ]
    }

    fn q(qs: &[&str]) -> bool {
        matches(&row(), &qs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_tag_proplist_attributes_and_queries() {
        let r = Request::parse(&words(&[
            "/interface/print",
            "=.proplist=name,rx-byte",
            ".tag=7",
            "=interface=ether1",
            "?type=ether",
        ]))
        .expect("command");
        assert_eq!(r.command, "/interface/print");
        assert_eq!(r.tag.as_deref(), Some("7"));
        assert_eq!(r.proplist, Some(vec!["name".to_owned(), "rx-byte".to_owned()]));
        assert_eq!(r.attr("interface"), Some("ether1"));
        assert_eq!(r.queries, vec!["type=ether".to_owned()]);
        assert!(Request::parse(&[]).is_none());
    }

    #[test]
    fn simple_queries() {
        assert!(q(&[]));
        assert!(q(&["name=ether1"]));
        assert!(q(&["=name=ether1"]));
        assert!(!q(&["name=ether2"]));
        assert!(q(&["running"]));
        assert!(!q(&["comment"]));
        assert!(q(&["-comment"]));
        assert!(q(&[">mtu=1000"]));
        assert!(!q(&["<mtu=1000"]));
        assert!(q(&["type=ether", "name=ether1"]));
        assert!(!q(&["type=ether", "name=ether2"]));
    }

    #[test]
    fn stack_operations() {
        assert!(q(&["name=ether2", "name=ether1", "#|"]));
        assert!(!q(&["name=ether2", "name=ether3", "#|"]));
        assert!(!q(&["name=ether1", "#!"]));
        assert!(q(&["name=ether2", "#!"]));
        assert!(q(&["name=ether1", "type=ether", "#&"]));
        assert!(!q(&["name=ether1", "type=wlan", "#&"]));
        // librouteros' In(): three values or-ed.
        assert!(q(&["=name=a", "=name=ether1", "=name=b", "#|", "#|"]));
        // Several operations in one word; underflow is false, never a panic.
        assert!(q(&["name=x", "name=ether1", "#|!!"]));
        assert!(!q(&["#&"]));
        assert!(q(&["name=x", "#."]));
    }

    #[test]
    fn proplist_keeps_listed_order() {
        let names = vec!["running".to_owned(), "name".to_owned(), "missing".to_owned()];
        assert_eq!(
            project(&row(), Some(&names)),
            vec![("running", "true".to_owned()), ("name", "ether1".to_owned())]
        );
    }
}
