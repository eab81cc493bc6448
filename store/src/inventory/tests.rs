//! Reconciliation on every engine: matching by MAC then by address, address
//! changes, conflicts, ports, SNMP identity, misses and gone hosts, chunked
//! scans, resends, tenancy. Jobs, adoption and the console's queries are in
//! `views_tests.rs`.
use outpost_certs::ca::CertificateAuthority;

use super::addr::{Target, parse_targets};
use super::records::{DiscoveryBody, DiscoveryReport, HostRecord, HostsChunk, PortRecord, ScanFinishedRow, SnmpRecord};
use super::views::{HostQuery, HostRow};
use super::*;
use crate::ingest::{IngestBatch, IngestOutcome};
use crate::scope::{AgentScope, Viewer};
use crate::tests::{engines, enrolled};
use crate::{Store, StoreError};

/// A host record at `address`, with a MAC when given.
pub(super) fn rec(address: &str, mac: Option<&str>) -> HostRecord {
    HostRecord {
        address: address.parse().expect("test address"),
        mac: mac.map(|m| m.parse().expect("test MAC")),
        vendor: String::new(),
        names: Vec::new(),
        open_ports: Vec::new(),
        snmp: None,
        mndp: None,
        seen_by: vec!["icmp".into()],
        rtt_us: Some(300),
        os: None,
    }
}

/// `rec` with open TCP ports.
pub(super) fn with_ports(mut r: HostRecord, ports: &[u16]) -> HostRecord {
    r.open_ports = ports
        .iter()
        .map(|&port| PortRecord {
            port,
            protocol: "tcp".into(),
            service: if port == 22 { "ssh".into() } else { String::new() },
            ..Default::default()
        })
        .collect();
    r
}

/// An agent feeding reports with its own sequence numbers and clock.
pub(super) struct Feed {
    pub(super) scope: AgentScope,
    seq: i64,
    pub(super) clock: i64,
}

impl Feed {
    pub(super) fn new(scope: AgentScope) -> Self {
        Self {
            scope,
            seq: 0,
            clock: 1_000_000,
        }
    }

    fn tick(&mut self) -> (i64, i64) {
        self.seq += 1;
        self.clock += 1_000;
        (self.seq, self.clock)
    }

    /// One chunk of hosts.
    pub(super) fn chunk(&mut self, scan: &str, job: &str, scanned: &[u16], hosts: Vec<HostRecord>) -> DiscoveryReport {
        let (seq, at) = self.tick();
        DiscoveryReport {
            seq,
            observed_at_ms: at,
            body: DiscoveryBody::Hosts(HostsChunk {
                scan_id: scan.parse().expect("scan id"),
                job_id: job.into(),
                scanned_ports: scanned.to_vec(),
                hosts,
            }),
        }
    }

    /// The end of a scan that started at `started_ms`.
    pub(super) fn end(&mut self, scan: &str, targets: &str, started_ms: i64, partial: bool) -> DiscoveryReport {
        let (seq, at) = self.tick();
        DiscoveryReport {
            seq,
            observed_at_ms: at,
            body: DiscoveryBody::Finished(ScanFinishedRow {
                scan_id: scan.parse().expect("scan id"),
                job_id: String::new(),
                source: "scan".into(),
                targets: parse_targets(targets).expect("targets"),
                started_ms,
                finished_ms: at,
                addresses: 256,
                hosts_found: 0,
                partial,
                warnings: Vec::new(),
                icmp: "raw".into(),
                probes_sent: 1_000,
            }),
        }
    }

    pub(super) async fn send(&self, store: &Store, reports: Vec<DiscoveryReport>) -> IngestOutcome {
        store.ingest(&self.scope, &batch(reports)).await.expect("ingest")
    }

    /// A whole scan of `targets` in one chunk, complete or partial.
    pub(super) async fn scan(
        &mut self,
        store: &Store,
        scan: &str,
        targets: &str,
        scanned: &[u16],
        hosts: Vec<HostRecord>,
        partial: bool,
    ) -> IngestOutcome {
        let started = self.clock + 1;
        let chunk = self.chunk(scan, "", scanned, hosts);
        let end = self.end(scan, targets, started, partial);
        self.send(store, vec![chunk, end]).await
    }
}

pub(super) fn batch(reports: Vec<DiscoveryReport>) -> IngestBatch {
    IngestBatch {
        through_seq: reports.iter().map(|r| r.seq).max().unwrap_or(0),
        discovery: reports,
        ..IngestBatch::default()
    }
}

pub(super) async fn hosts(store: &Store, scope: &AgentScope, include_gone: bool) -> Vec<HostRow> {
    let query = HostQuery {
        include_gone,
        ..HostQuery::default()
    };
    store
        .list_hosts(&Viewer::Tenant(scope.tenant_scope()), &query)
        .await
        .expect("list hosts")
}

/// Every change of the agent's tenant, oldest first: (host address now, kind, detail).
pub(super) async fn changes(store: &Store, scope: &AgentScope) -> Vec<(String, ChangeKind, String)> {
    let mut all = store
        .host_changes_since(&Viewer::Tenant(scope.tenant_scope()), None, 0, 1_000)
        .await
        .expect("changes");
    all.reverse();
    all.into_iter().map(|c| (c.host_address, c.kind, c.detail)).collect()
}

fn kinds_of(changes: &[(String, ChangeKind, String)]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.1).collect()
}

const NET: &str = "10.0.0.0/24";
const A: &str = "02:00:00:00:00:0a";
const B: &str = "02:00:00:00:00:0b";
const C: &str = "02:00:00:00:00:0c";

#[tokio::test]
async fn a_mac_at_a_new_address_is_the_same_host_with_its_ip_changed() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let mut first = rec("10.0.0.5", Some(A));
        first.vendor = "Acme Networks".into();
        first.names = vec!["pc1.example".into()];
        let out = feed.scan(store, "s1", NET, &[], vec![first], false).await;
        assert_eq!((out.discovery.stored, out.discovery.new_hosts), (2, 1));
        let listed = hosts(store, &feed.scope, false).await;
        assert_eq!(listed.len(), 1);
        let h = &listed[0];
        assert_eq!(
            (h.address.as_str(), h.mac.as_str(), h.vendor.as_str()),
            ("10.0.0.5", A, "Acme Networks")
        );
        assert_eq!(h.name, "pc1.example");
        assert_eq!(
            changes(store, &feed.scope).await[0].2,
            format!("10.0.0.5 {A} (Acme Networks)")
        );

        feed.scan(store, "s2", NET, &[], vec![rec("10.0.0.9", Some(A))], false)
            .await;
        let listed = hosts(store, &feed.scope, true).await;
        assert_eq!(listed.len(), 1, "the same host, not a new one");
        assert_eq!(listed[0].address, "10.0.0.9");
        assert_eq!(listed[0].name, "pc1.example", "names kept when a scan reports none");
        let all = changes(store, &feed.scope).await;
        assert_eq!(kinds_of(&all), [ChangeKind::NewHost, ChangeKind::IpChanged]);
        assert_eq!(all[1].2, "10.0.0.5 → 10.0.0.9");
        // The complete scan dropped the old address.
        let detail = store
            .host(&Viewer::Tenant(feed.scope.tenant_scope()), listed[0].id)
            .await
            .expect("host");
        let addresses: Vec<&str> = detail.addresses.iter().map(|a| a.address.as_str()).collect();
        assert_eq!(addresses, ["10.0.0.9"]);
        assert_eq!(detail.host.missed_scans, 0);
    }
}

#[tokio::test]
async fn known_hosts_trading_addresses_are_ip_changed_and_mac_moved() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        feed.scan(
            store,
            "s1",
            NET,
            &[],
            vec![rec("10.0.0.5", Some(A)), rec("10.0.0.6", Some(B))],
            false,
        )
        .await;
        // DHCP handed B's old address to A; B is off for now.
        feed.scan(store, "s2", NET, &[], vec![rec("10.0.0.6", Some(A))], false)
            .await;
        let all = changes(store, &feed.scope).await;
        assert_eq!(
            kinds_of(&all),
            [
                ChangeKind::NewHost,
                ChangeKind::NewHost,
                ChangeKind::IpChanged,
                ChangeKind::MacMoved
            ]
        );
        assert_eq!(all[2].2, "10.0.0.5 → 10.0.0.6");
        assert!(
            all[3].2.starts_with(&format!("10.0.0.6 now answers with MAC {A}")),
            "{}",
            all[3].2
        );
        let listed = hosts(store, &feed.scope, false).await;
        assert_eq!(listed.len(), 2);
        let b = listed.iter().find(|h| h.mac == B).expect("B");
        assert_eq!((b.missed_scans, b.conflict.as_deref()), (1, None));
        // A host seen at a second address in the same scan keeps both: no change.
        let mut v6 = rec("fd00::a", Some(A));
        v6.seen_by = vec!["tcp".into()];
        feed.scan(
            store,
            "s3",
            "10.0.0.0/24,fd00::/120",
            &[],
            vec![rec("10.0.0.6", Some(A)), v6],
            false,
        )
        .await;
        let a = hosts(store, &feed.scope, false)
            .await
            .into_iter()
            .find(|h| h.mac == A)
            .expect("A");
        assert_eq!(a.address, "10.0.0.6", "IPv4 stays primary");
        assert_eq!(a.seen_by, ["icmp", "tcp"], "merged within one scan");
        let detail = store
            .host(&Viewer::Tenant(feed.scope.tenant_scope()), a.id)
            .await
            .expect("host");
        assert_eq!(detail.addresses.len(), 2);
        assert_eq!(
            changes(store, &feed.scope).await.last().map(|c| c.2.clone()),
            Some("also at fd00::a".into())
        );
    }
}

#[tokio::test]
async fn a_host_is_gone_after_three_complete_scans_miss_it_and_comes_back() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        feed.scan(
            store,
            "s1",
            NET,
            &[],
            vec![rec("10.0.0.5", Some(A)), rec("10.0.0.6", None)],
            false,
        )
        .await;
        for (n, scan) in ["s2", "s3"].into_iter().enumerate() {
            feed.scan(store, scan, NET, &[], vec![rec("10.0.0.6", None)], false)
                .await;
            let a = hosts(store, &feed.scope, false)
                .await
                .into_iter()
                .find(|h| h.mac == A)
                .expect("A");
            assert_eq!((a.missed_scans, a.gone_at_ms), (n as i64 + 1, None));
        }
        feed.scan(store, "s4", NET, &[], vec![rec("10.0.0.6", None)], false)
            .await;
        let live = hosts(store, &feed.scope, false).await;
        assert_eq!(live.len(), 1, "the gone host is not listed by default");
        let all = hosts(store, &feed.scope, true).await;
        let a = all.iter().find(|h| h.mac == A).expect("A");
        assert!(a.gone_at_ms.is_some());
        assert_eq!(a.missed_scans, MISSES_BEFORE_GONE);
        let history = changes(store, &feed.scope).await;
        assert_eq!(history.last().map(|c| c.1), Some(ChangeKind::HostGone));
        assert_eq!(
            history.last().map(|c| c.2.clone()),
            Some("not seen by 3 complete scans in a row".into())
        );
        // A gone host is not missed again.
        feed.scan(store, "s5", NET, &[], vec![], false).await;
        assert_eq!(
            changes(store, &feed.scope)
                .await
                .iter()
                .filter(|c| c.1 == ChangeKind::HostGone)
                .count(),
            1
        );

        feed.scan(store, "s6", NET, &[], vec![rec("10.0.0.5", Some(A))], false)
            .await;
        let a = hosts(store, &feed.scope, false)
            .await
            .into_iter()
            .find(|h| h.mac == A)
            .expect("A is back");
        assert_eq!((a.missed_scans, a.gone_at_ms), (0, None));
        let history = changes(store, &feed.scope).await;
        assert_eq!(
            history.last().map(|c| (c.1, c.2.clone())),
            Some((ChangeKind::HostBack, "seen again at 10.0.0.5".into()))
        );
    }
}

#[tokio::test]
async fn partial_scans_and_scans_elsewhere_never_count_as_misses() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        feed.scan(store, "s1", NET, &[], vec![rec("10.0.0.5", Some(A))], false)
            .await;
        for i in 0..4 {
            feed.scan(store, &format!("partial{i}"), NET, &[], vec![], true).await;
            feed.scan(store, &format!("other{i}"), "10.0.1.0/24,192.0.2.5", &[], vec![], false)
                .await;
        }
        let a = &hosts(store, &feed.scope, false).await[0];
        assert_eq!((a.missed_scans, a.gone_at_ms), (0, None));
        let scans = store
            .list_scans(&Viewer::Tenant(feed.scope.tenant_scope()), None, 100)
            .await
            .expect("scans");
        assert_eq!(scans.iter().filter(|s| s.state == scans::ScanState::Partial).count(), 4);

        // A scan that covers the host but started before a concurrent scan
        // saw it does not count it as missed either.
        let started = feed.clock + 1;
        let other = feed.chunk("job-b", "", &[], vec![rec("10.0.0.5", Some(A))]);
        let end = feed.end("job-a", NET, started, false);
        feed.send(store, vec![other, end]).await;
        assert_eq!(hosts(store, &feed.scope, false).await[0].missed_scans, 0);
        // The same end resent under a new sequence number counts nothing twice.
        feed.scan(store, "s9", NET, &[], vec![], false).await;
        let again = feed.end("s9", NET, started, false);
        feed.send(store, vec![again]).await;
        assert_eq!(hosts(store, &feed.scope, false).await[0].missed_scans, 1);
    }
}

#[tokio::test]
async fn another_mac_at_a_known_address_is_flagged_as_a_conflict() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let (globex, _) = enrolled(store, &ca, "globex", "hq").await;
        feed.scan(
            store,
            "s1",
            NET,
            &[],
            vec![rec("10.0.0.5", Some(A)), rec("10.0.0.7", None)],
            false,
        )
        .await;
        feed.scan(
            store,
            "s2",
            NET,
            &[],
            vec![rec("10.0.0.5", Some(B)), rec("10.0.0.7", Some(C))],
            false,
        )
        .await;
        let listed = hosts(store, &feed.scope, true).await;
        assert_eq!(listed.len(), 3, "B is a new host; 10.0.0.7 learnt its MAC C");
        let a = listed.iter().find(|h| h.mac == A).expect("A");
        let conflict = a.conflict.clone().expect("A flagged");
        assert!(conflict.contains(B) && conflict.contains(A), "{conflict}");
        assert_eq!(
            listed.iter().find(|h| h.address == "10.0.0.7").map(|h| h.mac.as_str()),
            Some(C)
        );
        let history = changes(store, &feed.scope).await;
        assert_eq!(
            kinds_of(&history),
            [
                ChangeKind::NewHost,
                ChangeKind::NewHost,
                ChangeKind::MacConflict,
                ChangeKind::NewHost
            ]
        );
        // Another tenant cannot clear it; the owner can, history stays.
        assert!(matches!(
            store.clear_host_conflict(&globex.tenant_scope(), a.id).await,
            Err(StoreError::NotFound(_))
        ));
        store
            .clear_host_conflict(&feed.scope.tenant_scope(), a.id)
            .await
            .expect("clear");
        let a = hosts(store, &feed.scope, true)
            .await
            .into_iter()
            .find(|h| h.mac == A)
            .expect("A");
        assert_eq!(a.conflict, None);
        assert_eq!(changes(store, &feed.scope).await.len(), history.len());
        // B answering there again is B's own address now: nothing new.
        feed.scan(store, "s3", NET, &[], vec![rec("10.0.0.5", Some(B))], false)
            .await;
        assert_eq!(changes(store, &feed.scope).await.len(), history.len());
    }
}

#[tokio::test]
async fn ports_open_and_close_only_among_the_scanned_ones() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let probed = [22, 80, 443];
        feed.scan(
            store,
            "s1",
            NET,
            &probed,
            vec![with_ports(rec("10.0.0.5", Some(A)), &[22, 80])],
            false,
        )
        .await;
        assert_eq!(
            kinds_of(&changes(store, &feed.scope).await),
            [ChangeKind::NewHost],
            "ports are part of new_host"
        );
        feed.scan(
            store,
            "s2",
            NET,
            &probed,
            vec![with_ports(rec("10.0.0.5", Some(A)), &[22, 443])],
            false,
        )
        .await;
        let history = changes(store, &feed.scope).await;
        assert_eq!(
            &history[1..],
            [
                ("10.0.0.5".to_owned(), ChangeKind::PortOpened, "443/tcp".to_owned()),
                ("10.0.0.5".to_owned(), ChangeKind::PortClosed, "80/tcp".to_owned()),
            ]
        );
        // Unknown probed ports (an nmap import) close nothing.
        feed.scan(store, "s3", NET, &[], vec![rec("10.0.0.5", Some(A))], false)
            .await;
        // 443 was not probed this time: still open; 22 was and is closed.
        feed.scan(store, "s4", NET, &[22, 8080], vec![rec("10.0.0.5", Some(A))], false)
            .await;
        let history = changes(store, &feed.scope).await;
        assert_eq!(history.len(), 4);
        assert_eq!(history[3].1, ChangeKind::PortClosed);
        assert_eq!(history[3].2, "22/tcp ssh");
        let a = &hosts(store, &feed.scope, false).await[0];
        assert_eq!(a.tcp_ports(), [443]);
    }
}

#[tokio::test]
async fn a_changed_snmp_identity_is_recorded_and_a_failed_query_keeps_the_facts() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let snmp = |name: &str, error: &str| {
            let mut r = rec("10.0.0.1", Some(A));
            r.snmp = Some(SnmpRecord {
                descr: "RouterOS RB5009".into(),
                object_id: "1.3.6.1.4.1.14988.1".into(),
                name: name.into(),
                error: error.into(),
                ..Default::default()
            });
            r
        };
        feed.scan(store, "s1", NET, &[], vec![snmp("core", "")], false).await;
        feed.scan(store, "s2", NET, &[], vec![snmp("core", "")], false).await;
        feed.scan(store, "s3", NET, &[], vec![snmp("edge", "")], false).await;
        feed.scan(store, "s4", NET, &[], vec![snmp("", "no answer within 2 s")], false)
            .await;
        let history = changes(store, &feed.scope).await;
        assert_eq!(
            kinds_of(&history),
            [ChangeKind::NewHost, ChangeKind::SnmpIdentityChanged]
        );
        assert_eq!(history[1].2, r#"sysName "core" → "edge""#);
        let h = &hosts(store, &feed.scope, false).await[0];
        assert_eq!(
            (h.name.as_str(), h.snmp_name.as_str()),
            ("edge", "edge"),
            "sysName names the host"
        );
        let detail = store
            .host(&Viewer::Tenant(feed.scope.tenant_scope()), h.id)
            .await
            .expect("host");
        assert_eq!(detail.snmp.map(|s| s.name), Some("edge".into()));
        assert_eq!(detail.snmp_error, "no answer within 2 s");
    }
}

#[tokio::test]
async fn one_scan_in_two_chunks_is_reconciled_as_one() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        feed.scan(store, "s0", NET, &[], vec![rec("10.0.0.99", Some(C))], false)
            .await;
        let started = feed.clock + 1;
        let mut one = with_ports(rec("10.0.0.1", Some(A)), &[22]);
        one.names = vec!["gw".into()];
        let first = feed.chunk("s1", "", &[22, 443], vec![one, rec("10.0.0.2", None)]);
        feed.send(store, vec![first]).await;
        // Misses are counted only when the scan ends.
        assert!(
            hosts(store, &feed.scope, false)
                .await
                .iter()
                .all(|h| h.missed_scans == 0)
        );
        let mut v6 = with_ports(rec("fd00::1", Some(A)), &[443]);
        v6.names = vec!["gw6".into()];
        let second = feed.chunk("s1", "", &[22, 443], vec![v6, rec("10.0.0.3", Some(B))]);
        let end = feed.end("s1", "10.0.0.0/24,fd00::/120", started, false);
        let out = feed.send(store, vec![second, end]).await;
        assert_eq!(out.discovery.new_hosts, 1);
        let listed = hosts(store, &feed.scope, false).await;
        assert_eq!(listed.len(), 4);
        let a = listed.iter().find(|h| h.mac == A).expect("A");
        assert_eq!(a.names, ["gw", "gw6"]);
        assert_eq!(
            a.tcp_ports(),
            [22, 443],
            "the second address's port did not close the first's"
        );
        let c = listed.iter().find(|h| h.mac == C).expect("C");
        assert_eq!(c.missed_scans, 1);
        let history = changes(store, &feed.scope).await;
        assert_eq!(kinds_of(&history), [ChangeKind::NewHost; 4], "{history:?}");
        let scan = store
            .scan(&Viewer::Tenant(feed.scope.tenant_scope()), &"s1".parse().expect("id"))
            .await
            .expect("scan");
        assert_eq!((scan.hosts_reported, scan.state), (4, scans::ScanState::Finished));
        assert_eq!(
            scan.targets.iter().map(Target::to_string).collect::<Vec<_>>(),
            ["10.0.0.0/24", "fd00::/120"]
        );
    }
}

#[tokio::test]
async fn a_resent_batch_is_stored_once() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let started = feed.clock + 1;
        let chunk = feed.chunk("s1", "", &[22], vec![with_ports(rec("10.0.0.5", Some(A)), &[22])]);
        let end = feed.end("s1", NET, started, false);
        let reports = vec![chunk, end];
        let first = feed.send(store, reports.clone()).await;
        assert_eq!((first.discovery.stored, first.discovery.duplicates), (2, 0));
        let again = feed.send(store, reports).await;
        assert_eq!((again.discovery.stored, again.discovery.duplicates), (0, 2));
        assert_eq!(changes(store, &feed.scope).await.len(), 1);
        let scan = store
            .scan(&Viewer::Tenant(feed.scope.tenant_scope()), &"s1".parse().expect("id"))
            .await
            .expect("scan");
        assert_eq!(scan.hosts_reported, 1);
    }
}

#[tokio::test]
async fn reports_about_another_sites_scan_or_job_are_refused() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut hq = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let mut branch = Feed::new(enrolled(store, &ca, "acme", "branch").await.0);
        let mut globex = Feed::new(enrolled(store, &ca, "globex", "hq").await.0);
        hq.scan(store, "s1", NET, &[], vec![rec("10.0.0.5", Some(A))], false)
            .await;
        let job = JobId::random();
        store
            .add_discovery_job(
                &hq.scope.tenant_scope(),
                &jobs::NewJob {
                    id: job,
                    site: hq.scope.site(),
                    targets: parse_targets(NET).expect("targets"),
                    ports: Default::default(),
                    rate_pps: 0,
                    interval_secs: 3600,
                    snmp_sealed: None,
                    snmp_summary: String::new(),
                },
            )
            .await
            .expect("job");
        for feed in [&mut branch, &mut globex] {
            let mine = feed.chunk("s1", "", &[], vec![rec("10.0.0.5", Some(B))]);
            let theirs = feed.chunk("s2", &job.to_string(), &[], vec![rec("10.0.0.5", Some(B))]);
            let out = feed.send(store, vec![mine, theirs]).await;
            assert_eq!(out.discovery.stored, 0);
            let reasons: Vec<&str> = out.discovery.refused.iter().map(|(_, r)| r.as_str()).collect();
            assert_eq!(
                reasons,
                [
                    "scan s1 is not a scan of this agent's site",
                    &format!("job {job} is not a job of this agent's site"),
                ]
            );
            assert_eq!(out.acked_seq, 2, "refused reports are acknowledged");
            let own_site = HostQuery {
                site: Some(feed.scope.site()),
                include_gone: true,
                ..HostQuery::default()
            };
            let viewer = Viewer::Tenant(feed.scope.tenant_scope());
            assert!(store.list_hosts(&viewer, &own_site).await.expect("list").is_empty());
        }
        // Nothing of acme/hq changed, and globex sees none of it.
        assert_eq!(changes(store, &hq.scope).await.len(), 1);
        let h = hosts(store, &hq.scope, true).await[0].id;
        assert!(matches!(
            store.host(&Viewer::Tenant(globex.scope.tenant_scope()), h).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            store
                .host_changes_since(&Viewer::Tenant(globex.scope.tenant_scope()), None, 0, 100)
                .await
                .expect("changes")
                .is_empty()
        );
        assert!(matches!(
            store
                .scan(&Viewer::Tenant(globex.scope.tenant_scope()), &"s1".parse().expect("id"))
                .await,
            Err(StoreError::NotFound(_))
        ));
    }
}
