//! How far running discovery scans are, for the console: agents send
//! `ScanProgress` on their Connect stream (not sequenced, not stored: it is
//! worth nothing a minute later), and the console reads the latest one per
//! scan.
//!
//! Entries are kept per tenant (from the reporting agent's certificate) and
//! scan id; the first agent to report a scan owns its entry, so an agent of
//! another site cannot overwrite it, and a reader of another tenant never
//! finds it. Memory is bounded: an entry expires [`EXPIRY`] after its last
//! update, and an agent holds at most [`SCANS_PER_AGENT`] entries (its
//! oldest go first). With several collectors, a console sees the progress
//! of scans whose agents stream to its own collector.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use outpost_certs::{AgentId, SiteId, TenantId};
use outpost_proto::agent_v1::ScanProgress;
use outpost_store::inventory::ScanId;
use outpost_store::{AgentScope, TenantScope, now_ms};

/// How long a scan's progress is kept after its last update.
pub const EXPIRY: Duration = Duration::from_secs(15 * 60);
/// Most scans one agent has progress kept for.
pub const SCANS_PER_AGENT: usize = 16;

/// The latest progress of one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanProgressView {
    /// The scan.
    pub scan_id: ScanId,
    /// Its site.
    pub site: SiteId,
    /// The agent running it.
    pub agent: AgentId,
    /// "icmp", "tcp", "snmp", "names" or "done".
    pub phase: String,
    /// Work done in the phase.
    pub done: u32,
    /// Work the phase has.
    pub total: u32,
    /// Hosts found so far.
    pub hosts_found: u32,
    /// When it was reported, collector clock (Unix ms).
    pub updated_at_ms: i64,
}

struct Entry {
    view: ScanProgressView,
    touched: Instant,
}

/// Progress of the scans of this collector's agents.
#[derive(Default)]
pub struct ScanProgressHub {
    scans: Mutex<HashMap<(TenantId, ScanId), Entry>>,
}

impl std::fmt::Debug for ScanProgressHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanProgressHub").finish_non_exhaustive()
    }
}

impl ScanProgressHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, ScanId), Entry>> {
        // Entries are replaced whole; a panic elsewhere cannot leave one torn.
        self.scans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records what the agent of `scope` reported; a malformed report is
    /// logged and dropped.
    pub fn record(&self, scope: &AgentScope, progress: &ScanProgress) {
        self.record_at(scope, progress, Instant::now());
    }

    fn record_at(&self, scope: &AgentScope, p: &ScanProgress, now: Instant) {
        let Ok(scan_id) = p.scan_id.parse::<ScanId>() else {
            tracing::debug!(agent = %scope.agent(), "scan progress with a malformed scan id dropped");
            return;
        };
        let phase: String = p.phase.chars().take(16).collect();
        let mut scans = self.lock();
        scans.retain(|_, e| now.saturating_duration_since(e.touched) < EXPIRY);
        let key = (scope.tenant(), scan_id.clone());
        if let Some(e) = scans.get(&key)
            && (e.view.site != scope.site() || e.view.agent != scope.agent())
        {
            tracing::debug!(agent = %scope.agent(), scan = %scan_id, "progress of another agent's scan dropped");
            return;
        }
        if !scans.contains_key(&key) {
            let mut own: Vec<(Instant, ScanId)> = scans
                .iter()
                .filter(|((tenant, _), e)| *tenant == scope.tenant() && e.view.agent == scope.agent())
                .map(|((_, id), e)| (e.touched, id.clone()))
                .collect();
            if own.len() >= SCANS_PER_AGENT {
                own.sort();
                for (_, id) in own.iter().take(own.len() + 1 - SCANS_PER_AGENT) {
                    scans.remove(&(scope.tenant(), id.clone()));
                }
            }
        }
        scans.insert(
            key,
            Entry {
                view: ScanProgressView {
                    scan_id,
                    site: scope.site(),
                    agent: scope.agent(),
                    phase,
                    done: p.done,
                    total: p.total,
                    hosts_found: p.hosts_found,
                    updated_at_ms: now_ms(),
                },
                touched: now,
            },
        );
    }

    /// The latest progress of a scan of the viewer's tenant.
    pub fn get(&self, scope: &TenantScope, scan_id: &ScanId) -> Option<ScanProgressView> {
        let now = Instant::now();
        self.lock()
            .get(&(scope.tenant(), scan_id.clone()))
            .filter(|e| now.saturating_duration_since(e.touched) < EXPIRY)
            .map(|e| e.view.clone())
    }

    /// The progress of every scan of a site of the viewer's tenant, newest
    /// report first.
    pub fn of_site(&self, scope: &TenantScope, site: SiteId) -> Vec<ScanProgressView> {
        let now = Instant::now();
        let mut out: Vec<ScanProgressView> = self
            .lock()
            .iter()
            .filter(|((tenant, _), e)| {
                *tenant == scope.tenant() && e.view.site == site && now.saturating_duration_since(e.touched) < EXPIRY
            })
            .map(|(_, e)| e.view.clone())
            .collect();
        out.sort_by(|a, b| {
            b.updated_at_ms
                .cmp(&a.updated_at_ms)
                .then_with(|| a.scan_id.cmp(&b.scan_id))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_certs::{AgentCertificate, AgentIdentity};

    fn agent(tenant: TenantId, site: SiteId) -> AgentScope {
        AgentScope::from_certificate(&AgentCertificate {
            identity: AgentIdentity {
                tenant,
                site,
                agent: AgentId::random(),
            },
            serial: String::new(),
            not_before: 0,
            not_after: 0,
        })
    }

    fn progress(scan: &str, done: u32) -> ScanProgress {
        ScanProgress {
            scan_id: scan.into(),
            phase: "tcp".into(),
            done,
            total: 254,
            hosts_found: 3,
        }
    }

    fn id(s: &str) -> ScanId {
        s.parse().expect("scan id")
    }

    #[test]
    fn progress_is_kept_per_tenant_and_owned_by_its_agent() {
        let hub = ScanProgressHub::default();
        let (acme, globex) = (TenantId::random(), TenantId::random());
        let hq = agent(acme, SiteId::random());
        let branch = agent(acme, SiteId::random());
        hub.record(&hq, &progress("s1", 10));
        hub.record(&hq, &progress("s1", 20));
        // Another site's agent cannot overwrite it; a bad id is dropped.
        hub.record(&branch, &progress("s1", 99));
        hub.record(&hq, &progress("not a scan id", 1));
        let seen = hub.get(&hq.tenant_scope(), &id("s1")).expect("progress");
        assert_eq!((seen.done, seen.total, seen.phase.as_str()), (20, 254, "tcp"));
        assert_eq!(hub.of_site(&hq.tenant_scope(), hq.site()).len(), 1);
        assert!(hub.of_site(&hq.tenant_scope(), branch.site()).is_empty());
        // Another tenant sees nothing, and its own scan of that id is its own.
        let other = agent(globex, SiteId::random());
        assert_eq!(hub.get(&other.tenant_scope(), &id("s1")), None);
        hub.record(&other, &progress("s1", 5));
        assert_eq!(hub.get(&other.tenant_scope(), &id("s1")).map(|p| p.done), Some(5));
        assert_eq!(hub.get(&hq.tenant_scope(), &id("s1")).map(|p| p.done), Some(20));
    }

    #[test]
    fn entries_expire_and_an_agent_holds_a_bounded_number() {
        let hub = ScanProgressHub::default();
        let a = agent(TenantId::random(), SiteId::random());
        let start = Instant::now();
        for i in 0..(SCANS_PER_AGENT + 4) {
            hub.record_at(
                &a,
                &progress(&format!("s{i}"), 1),
                start + Duration::from_secs(i as u64),
            );
        }
        let kept = hub.lock().len();
        assert_eq!(kept, SCANS_PER_AGENT);
        assert!(
            hub.lock().keys().all(|(_, id)| id.as_str() != "s0"),
            "the oldest went first"
        );
        hub.record_at(&a, &progress("late", 1), start + EXPIRY + Duration::from_secs(60));
        assert_eq!(hub.lock().len(), 1, "expired entries are dropped");
    }
}
