//! The data behind "Sites & agents": tenants → sites → agents, grouped for
//! display and serialised as the JSON of `/api/overview` and `/events`.
use std::collections::HashMap;

use outpost_certs::{SiteId, TenantId};
use serde::Serialize;

use outpost_store::agents::AgentRow;
use outpost_store::scope::Viewer;
use outpost_store::tenants::SiteRow;
use outpost_store::{Store, StoreError, now_ms};

/// Everything the viewer may see, grouped for display.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Overview {
    /// When this was read, Unix ms: the page computes "x s ago" against this
    /// rather than the browser's clock, which may be off.
    pub(crate) generated_at_ms: i64,
    pub(crate) totals: Totals,
    pub(crate) tenants: Vec<TenantView>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Totals {
    pub(crate) tenants: usize,
    pub(crate) sites: usize,
    pub(crate) agents: usize,
    pub(crate) online: usize,
    pub(crate) revoked: usize,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct TenantView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) sites: Vec<SiteView>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct SiteView {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Deleted sites are not listed unless agents remain enrolled in them.
    pub(crate) deleted: bool,
    pub(crate) agents: Vec<AgentView>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct AgentView {
    pub(crate) id: String,
    pub(crate) short_id: String,
    pub(crate) hostname: String,
    pub(crate) version: String,
    pub(crate) os: String,
    pub(crate) online: bool,
    pub(crate) last_seen_ms: Option<i64>,
    /// `2025-01-31 14:05:09 UTC`, for readers without script.
    pub(crate) last_seen_utc: Option<String>,
    /// RFC 3339, for `<time datetime>`.
    pub(crate) last_seen_iso: Option<String>,
    pub(crate) outbox_depth: i64,
    pub(crate) revoked: bool,
    /// Something an operator must look at: the agent id used by two
    /// instances (a cloned machine), or resends that differed from what was stored.
    pub(crate) warning: Option<String>,
}

impl Overview {
    /// Groups `sites` (every live site, so empty ones show) and `agents` (which
    /// may sit in a deleted site) by tenant and site, ordered by name.
    pub(crate) fn build(sites: Vec<SiteRow>, agents: Vec<AgentRow>, generated_at_ms: i64) -> Self {
        let mut tenants: Vec<TenantView> = Vec::new();
        let mut tenant_index: HashMap<TenantId, usize> = HashMap::new();
        let mut site_index: HashMap<SiteId, (usize, usize)> = HashMap::new();

        let mut slot = |tenants: &mut Vec<TenantView>,
                        tenant: TenantId,
                        tenant_name: &str,
                        site: SiteId,
                        site_name: &str,
                        deleted: bool| {
            if let Some(&at) = site_index.get(&site) {
                return at;
            }
            let t = *tenant_index.entry(tenant).or_insert_with(|| {
                tenants.push(TenantView {
                    id: tenant.to_string(),
                    name: tenant_name.to_owned(),
                    sites: Vec::new(),
                });
                tenants.len() - 1
            });
            let sites = &mut tenants[t].sites;
            sites.push(SiteView {
                id: site.to_string(),
                name: site_name.to_owned(),
                deleted,
                agents: Vec::new(),
            });
            let at = (t, sites.len() - 1);
            site_index.insert(site, at);
            at
        };

        for s in &sites {
            slot(&mut tenants, s.tenant, &s.tenant_name, s.site, &s.site_name, false);
        }
        let mut totals = Totals {
            agents: agents.len(),
            ..Totals::default()
        };
        for a in agents {
            let (t, s) = slot(&mut tenants, a.tenant, &a.tenant_name, a.site, &a.site_name, true);
            totals.online += usize::from(a.online);
            totals.revoked += usize::from(a.revoked);
            tenants[t].sites[s].agents.push(AgentView::from(a));
        }

        // The store already orders both lists; sorting again keeps the
        // order right where the two are merged.
        tenants.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        for t in &mut tenants {
            t.sites.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        }
        totals.tenants = tenants.len();
        totals.sites = tenants.iter().map(|t| t.sites.len()).sum();
        Self {
            generated_at_ms,
            totals,
            tenants,
        }
    }
}

impl AgentView {
    pub(crate) fn seen_iso(&self) -> &str {
        self.last_seen_iso.as_deref().unwrap_or_default()
    }

    pub(crate) fn seen_utc(&self) -> &str {
        self.last_seen_utc.as_deref().unwrap_or("unknown")
    }
}

impl From<AgentRow> for AgentView {
    fn from(a: AgentRow) -> Self {
        let id = a.agent.to_string();
        let seen = a.last_seen_ms.and_then(utc_strings);
        let warning = a.conflict_note().or_else(|| {
            (a.seq_conflicts > 0).then(|| {
                format!(
                    "{} resent observation(s) differed from what was stored under the same sequence number",
                    a.seq_conflicts
                )
            })
        });
        Self {
            short_id: id.chars().take(8).collect(),
            id,
            hostname: a.hostname,
            version: a.version,
            os: a.os,
            online: a.online,
            last_seen_ms: a.last_seen_ms,
            last_seen_iso: seen.as_ref().map(|(iso, _)| iso.clone()),
            last_seen_utc: seen.map(|(_, human)| human),
            outbox_depth: a.outbox_depth,
            revoked: a.revoked,
            warning,
        }
    }
}

/// `(RFC 3339, human)` renderings of a Unix ms time in UTC.
pub(crate) fn utc_strings(ms: i64) -> Option<(String, String)> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let (date, hms) = (
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
    );
    Some((format!("{date}T{hms}Z"), format!("{date} {hms} UTC")))
}

pub(crate) async fn load(store: &Store, viewer: &Viewer) -> Result<Overview, StoreError> {
    let sites = store.sites(viewer).await?;
    let agents = store.list_agents(viewer).await?;
    Ok(Overview::build(sites, agents, now_ms()))
}

#[cfg(test)]
mod tests {

    use super::*;

    fn site(tenant: (TenantId, &str), site: (SiteId, &str)) -> SiteRow {
        SiteRow {
            tenant: tenant.0,
            tenant_name: tenant.1.into(),
            site: site.0,
            site_name: site.1.into(),
        }
    }

    fn agent(tenant: (TenantId, &str), site: (SiteId, &str), host: &str, online: bool) -> AgentRow {
        AgentRow {
            online,
            last_seen_ms: Some(1_700_000_000_123),
            outbox_depth: 3,
            ..AgentRow::sample(&self::site(tenant, site), host)
        }
    }

    #[test]
    fn a_cloned_agent_is_flagged_for_the_operator() {
        let site = (SiteId::random(), "hq");
        let mut row = agent((TenantId::random(), "acme"), site, "clone", true);
        assert_eq!(AgentView::from(row.clone()).warning, None);
        row.instance_conflict = Some((
            1,
            "instance b from 10.0.0.2:5000 refused while instance a was streaming".into(),
        ));
        let warning = AgentView::from(row.clone()).warning.expect("flagged");
        assert!(
            warning.contains("agent id used by two instances (cloned machine?)"),
            "{warning}"
        );
        row.instance_conflict = None;
        row.seq_conflicts = 3;
        let warning = AgentView::from(row).warning.expect("flagged");
        assert!(warning.starts_with("3 resent observation(s) differed"), "{warning}");
    }

    #[test]
    fn groups_by_tenant_and_site_keeping_empty_and_deleted_sites() {
        let acme = (TenantId::random(), "acme");
        let zeta = (TenantId::random(), "zeta");
        let hq = (SiteId::random(), "hq");
        let lab = (SiteId::random(), "lab");
        let gone = (SiteId::random(), "gone");
        let o = Overview::build(
            vec![site(acme, hq), site(acme, lab), site(zeta, (SiteId::random(), "z"))],
            vec![
                agent(acme, gone, "old", false),
                agent(acme, hq, "a", true),
                agent(acme, hq, "b", false),
            ],
            42,
        );
        assert_eq!(
            o.tenants.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["acme", "zeta"]
        );
        let acme_sites = &o.tenants[0].sites;
        assert_eq!(
            acme_sites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["gone", "hq", "lab"]
        );
        assert!(acme_sites[0].deleted && !acme_sites[1].deleted);
        assert_eq!(
            acme_sites[1]
                .agents
                .iter()
                .map(|a| a.hostname.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(acme_sites[2].agents.is_empty());
        assert_eq!(
            (o.totals.tenants, o.totals.sites, o.totals.agents, o.totals.online),
            (2, 4, 3, 1)
        );
        let a = &acme_sites[1].agents[0];
        assert_eq!(a.short_id.len(), 8);
        assert!(a.id.starts_with(&a.short_id));
        assert_eq!(a.last_seen_utc.as_deref(), Some("2023-11-14 22:13:20 UTC"));
        assert_eq!(a.last_seen_iso.as_deref(), Some("2023-11-14T22:13:20Z"));
    }
}
