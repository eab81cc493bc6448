//! The inventory list's query string (`site`, `sort`, `order`, `q`, `gone`),
//! shared by the page and its JSON twin, and the links that change one part
//! of it (the column headers' sort links) while keeping the rest.
use outpost_store::inventory::views::{HostQuery, HostSort};
use outpost_store::tenants::SiteRow;
use serde::{Deserialize, Serialize};

/// Longest filter text taken; a longer one names nothing a host has.
const MAX_FILTER_CHARS: usize = 100;

/// The query string as sent. Every part is optional, and an empty one (what
/// a GET form sends for an untouched field) counts as absent.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    #[serde(default)]
    pub(crate) site: Option<String>,
    #[serde(default)]
    pub(crate) sort: Option<String>,
    #[serde(default)]
    pub(crate) order: Option<String>,
    #[serde(default)]
    pub(crate) q: Option<String>,
    /// `1` (a link) or `on` (the form's checkbox): gone hosts too.
    #[serde(default)]
    pub(crate) gone: Option<String>,
}

/// Why a query string was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// A part has a value no listing has; the message names it.
    Bad(String),
    /// The site is not one of the viewer's.
    UnknownSite,
}

/// The listing asked for, checked.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ListQuery {
    /// The site's id, when only one site's hosts are listed.
    pub(crate) site: Option<String>,
    #[serde(skip)]
    pub(crate) site_row: Option<SiteRow>,
    pub(crate) sort: &'static str,
    /// `asc` or `desc`.
    pub(crate) order: &'static str,
    pub(crate) q: String,
    pub(crate) include_gone: bool,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ListParams {
    /// Checks the parameters against the viewer's `sites`.
    pub(crate) fn check(&self, sites: &[SiteRow]) -> Result<ListQuery, QueryError> {
        let sort = match given(&self.sort) {
            None => HostSort::Address,
            Some(s) => s.parse::<HostSort>().map_err(QueryError::Bad)?,
        };
        let descending = match given(&self.order) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                let shown: String = other.chars().take(20).collect();
                return Err(QueryError::Bad(format!("unknown order {shown:?}: use asc or desc")));
            }
        };
        let site_row = match given(&self.site) {
            None => None,
            Some(raw) => Some(
                sites
                    .iter()
                    .find(|s| s.site.to_string() == raw)
                    .cloned()
                    .ok_or(QueryError::UnknownSite)?,
            ),
        };
        let q: String = given(&self.q)
            .unwrap_or_default()
            .chars()
            .take(MAX_FILTER_CHARS)
            .collect();
        let include_gone = matches!(given(&self.gone), Some("1" | "on" | "true"));
        Ok(ListQuery {
            site: site_row.as_ref().map(|s| s.site.to_string()),
            site_row,
            sort: sort.as_str(),
            order: if descending { "desc" } else { "asc" },
            q,
            include_gone,
        })
    }
}

impl ListQuery {
    /// The store's query for it, at most `limit` hosts.
    pub(crate) fn host_query(&self, limit: u32) -> HostQuery {
        HostQuery {
            site: self.site_row.as_ref().map(|s| s.site),
            // Checked in `ListParams::check`.
            sort: self.sort.parse().unwrap_or_default(),
            descending: self.order == "desc",
            filter: self.q.clone(),
            include_gone: self.include_gone,
            limit: Some(limit),
        }
    }

    /// `/inventory?…` with `sort` and `order` replaced, the rest kept.
    pub(crate) fn href(&self, sort: &str, order: &str) -> String {
        let mut parts = Vec::new();
        if let Some(site) = &self.site {
            parts.push(format!("site={}", encode(site)));
        }
        if !self.q.is_empty() {
            parts.push(format!("q={}", encode(&self.q)));
        }
        if self.include_gone {
            parts.push("gone=1".to_owned());
        }
        parts.push(format!("sort={}", encode(sort)));
        parts.push(format!("order={}", encode(order)));
        format!("/inventory?{}", parts.join("&"))
    }

    /// A column header's link: its sort, ascending, or the other way round
    /// when the list is already sorted by it.
    pub(crate) fn sort_href(&self, column: &str) -> String {
        let order = if self.sort == column && self.order == "asc" {
            "desc"
        } else {
            "asc"
        };
        self.href(column, order)
    }

    /// `aria-sort` of a column header.
    pub(crate) fn aria_sort(&self, column: &str) -> &'static str {
        match (self.sort == column, self.order) {
            (false, _) => "none",
            (true, "desc") => "descending",
            (true, _) => "ascending",
        }
    }
}

/// `s` percent-encoded for a query string value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use outpost_certs::{SiteId, TenantId};

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let map: serde_json::Map<String, serde_json::Value> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
        serde_json::from_value(map.into()).expect("params")
    }

    #[test]
    fn parts_are_checked_and_links_keep_the_rest() {
        let site = SiteRow {
            tenant: TenantId::random(),
            tenant_name: "acme".into(),
            site: SiteId::random(),
            site_name: "hq".into(),
        };
        let sites = [site.clone()];
        let q = params(&[]).check(&sites).expect("defaults");
        assert_eq!((q.sort, q.order, q.include_gone), ("address", "asc", false));
        let id = site.site.to_string();
        let q = params(&[
            ("site", &id),
            ("sort", "vendor"),
            ("order", "desc"),
            ("q", "a b&c"),
            ("gone", "on"),
        ])
        .check(&sites)
        .expect("all parts");
        assert_eq!((q.sort, q.order, q.include_gone), ("vendor", "desc", true));
        assert_eq!(
            q.sort_href("vendor"),
            format!("/inventory?site={id}&q=a%20b%26c&gone=1&sort=vendor&order=asc")
        );
        assert!(q.sort_href("name").ends_with("sort=name&order=asc"));
        assert_eq!((q.aria_sort("vendor"), q.aria_sort("name")), ("descending", "none"));
        assert!(matches!(params(&[("sort", "size")]).check(&sites), Err(QueryError::Bad(m)) if m.contains("size")));
        assert!(matches!(
            params(&[("order", "up")]).check(&sites),
            Err(QueryError::Bad(_))
        ));
        assert_eq!(
            params(&[("site", &SiteId::random().to_string())]).check(&sites).err(),
            Some(QueryError::UnknownSite)
        );
        let blank = params(&[("site", ""), ("sort", ""), ("q", "  ")])
            .check(&sites)
            .expect("blank");
        assert_eq!((blank.site, blank.q.as_str()), (None, ""));
    }
}
