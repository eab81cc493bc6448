//! Jobs, the credential profile, adoption, scan requests and the console's
//! queries, on every engine.
use outpost_certs::ca::CertificateAuthority;

use super::addr::parse_targets;
use super::jobs::{NewJob, validate_job};
use super::records::MndpFacts;
use super::tests::{Feed, changes, hosts, rec, with_ports};
use super::views::{HostQuery, HostSort};
use super::*;
use crate::devices::DeviceId;
use crate::scope::Viewer;
use crate::tests::{connecting, engines, enrolled};
use crate::{Store, StoreError};

fn job(site: outpost_certs::SiteId, targets: &str) -> NewJob {
    NewJob {
        id: JobId::random(),
        site,
        targets: parse_targets(targets).expect("targets"),
        ports: "22,80,8728-8729".parse().expect("ports"),
        rate_pps: 500,
        interval_secs: 3600,
        snmp_sealed: Some(vec![9, 9, 9]),
        snmp_summary: "1 community".into(),
    }
}

#[tokio::test]
async fn jobs_are_per_site_and_their_version_moves_with_every_change() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (hq, _) = enrolled(store, &ca, "acme", "hq").await;
        let (branch, _) = enrolled(store, &ca, "acme", "branch").await;
        let (globex, _) = enrolled(store, &ca, "globex", "hq").await;
        let v0 = store.discovery_jobs_version(&hq).await.expect("version");
        let one = store
            .add_discovery_job(&hq.tenant_scope(), &job(hq.site(), "10.0.0.0/24,fd00::/120"))
            .await
            .expect("add");
        let v1 = store.discovery_jobs_version(&hq).await.expect("version");
        assert_ne!(v0, v1);
        assert_eq!(
            store.discovery_jobs_version(&branch).await.expect("version"),
            v0,
            "another site's jobs"
        );
        let assigned = store.assigned_discovery_jobs(&hq).await.expect("assigned");
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].snmp_sealed.as_deref(), Some(&[9u8, 9, 9][..]));
        assert_eq!(assigned[0].ports.to_string(), "22,80,8728-8729");
        assert!(
            store
                .assigned_discovery_jobs(&branch)
                .await
                .expect("assigned")
                .is_empty()
        );
        let listed = store
            .list_discovery_jobs(&Viewer::Tenant(hq.tenant_scope()), None)
            .await
            .expect("list");
        assert_eq!((listed.len(), listed[0].site_name.as_str()), (1, "hq"));
        assert_eq!(listed[0].snmp_summary, "1 community");

        // Another tenant can neither add to this site, see, nor delete the job.
        assert!(matches!(
            store
                .add_discovery_job(&globex.tenant_scope(), &job(hq.site(), "10.0.0.0/24"))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            store
                .list_discovery_jobs(&Viewer::Tenant(globex.tenant_scope()), None)
                .await
                .expect("list")
                .is_empty()
        );
        assert!(matches!(
            store.delete_discovery_job(&globex.tenant_scope(), one).await,
            Err(StoreError::NotFound(_))
        ));
        store
            .delete_discovery_job(&hq.tenant_scope(), one)
            .await
            .expect("delete");
        assert!(store.assigned_discovery_jobs(&hq).await.expect("assigned").is_empty());
        assert_ne!(store.discovery_jobs_version(&hq).await.expect("version"), v1);
        assert!(matches!(
            store.delete_discovery_job(&hq.tenant_scope(), one).await,
            Err(StoreError::NotFound(_))
        ));
        // Settings out of range are refused before anything is stored.
        let mut huge = job(hq.site(), "10.0.0.0/8");
        assert!(matches!(
            store.add_discovery_job(&hq.tenant_scope(), &huge).await,
            Err(StoreError::Conflict(_))
        ));
        huge.targets = parse_targets("10.0.0.0/24").expect("targets");
        huge.interval_secs = 5;
        assert!(validate_job(&huge.targets, huge.rate_pps, huge.interval_secs).is_err());
    }
}

#[test]
fn jobs_hold_at_most_what_an_agent_scans_counted_as_it_counts() {
    let check = |t: &str| validate_job(&parse_targets(t).expect("targets"), 0, 3600);
    // 4094 + 2: exactly the agent's cap of 4096.
    assert_eq!(check("10.0.0.0/20,10.1.0.6/31"), Ok(()));
    assert_eq!(check("fd00::/116,10.0.0.1"), Ok(()), "4095 + 1");
    let e = check("10.0.0.0/20,10.1.0.0/30,10.2.0.1").expect_err("4094 + 2 + 1");
    assert!(e.contains("4097 addresses") && e.contains("4096"), "{e}");
    let e = check("10.0.0.0/16").expect_err("a /16");
    assert!(e.contains("65534 addresses") && e.contains("4096"), "{e}");
    assert!(check("::/0").is_err());
}

fn reseal_ok(r: &adopt::Resealing<'_>) -> Result<Vec<u8>, String> {
    let mut v = r.sealed.to_vec();
    v.extend_from_slice(r.device.to_string().as_bytes());
    Ok(v)
}

#[tokio::test]
async fn routers_are_adopted_once_with_the_site_profile() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let (globex, _) = enrolled(store, &ca, "globex", "hq").await;
        let tenant = feed.scope.tenant_scope();
        let mut mndp_only = rec("10.0.0.3", Some("02:00:00:00:00:03"));
        mndp_only.mndp = Some(MndpFacts {
            identity: "ap-3".into(),
            ..Default::default()
        });
        feed.scan(
            store,
            "s1",
            "10.0.0.0/24",
            &[],
            vec![
                with_ports(rec("10.0.0.1", Some("02:00:00:00:00:01")), &[22, 8728, 8729]),
                with_ports(rec("10.0.0.2", Some("02:00:00:00:00:02")), &[22, 80]),
                mndp_only,
                with_ports(rec("10.0.0.4", Some("02:00:00:00:00:04")), &[8728]),
            ],
            false,
        )
        .await;
        // 10.0.0.4 is already a managed device.
        store
            .add_device(
                &tenant,
                &crate::devices::NewDevice {
                    id: DeviceId::random(),
                    site: feed.scope.site(),
                    address: "10.0.0.4".into(),
                    api_port: 8728,
                    api_tls: false,
                    ssh_port: 22,
                    username: "admin".into(),
                    password_sealed: vec![1],
                    poll_interval_secs: 60,
                },
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("device");
        let candidates = store
            .adoption_candidates(&Viewer::Tenant(tenant), None)
            .await
            .expect("candidates");
        let summary: Vec<(&str, u16, bool)> = candidates
            .iter()
            .map(|c| (c.host.address.as_str(), c.api_port, c.api_tls))
            .collect();
        assert_eq!(summary, [("10.0.0.1", 8729, true), ("10.0.0.3", 8728, false)]);
        assert_eq!(candidates[1].why, ["announces itself by MNDP"]);
        assert!(
            store
                .adoption_candidates(&Viewer::Tenant(globex.tenant_scope()), None)
                .await
                .expect("candidates")
                .is_empty()
        );
        let router = candidates[0].host.id;
        let plain = hosts(store, &feed.scope, false)
            .await
            .into_iter()
            .find(|h| h.address == "10.0.0.2")
            .expect("plain host")
            .id;

        // No profile yet.
        let err = store
            .adopt_host(&tenant, router, &crate::audit::Actor::local_operator(), reseal_ok)
            .await
            .expect_err("no profile");
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("credential profile")),
            "{err:?}"
        );
        assert!(matches!(
            store
                .set_site_credential(&globex.tenant_scope(), feed.scope.site(), "admin", b"x")
                .await,
            Err(StoreError::NotFound(_))
        ));
        store
            .set_site_credential(&tenant, feed.scope.site(), "netops", b"sealed-for-site")
            .await
            .expect("profile");
        assert_eq!(
            store
                .site_credential(&tenant, feed.scope.site())
                .await
                .expect("profile")
                .map(|p| p.username),
            Some("netops".into())
        );

        // Another tenant cannot adopt it; a host that is not a router is refused.
        assert!(matches!(
            store
                .adopt_host(
                    &globex.tenant_scope(),
                    router,
                    &crate::audit::Actor::local_operator(),
                    reseal_ok
                )
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store
                .adopt_host(&tenant, plain, &crate::audit::Actor::local_operator(), reseal_ok)
                .await,
            Err(StoreError::Conflict(_))
        ));
        // A vault that cannot reseal adopts nothing.
        let refused = store
            .adopt_host(&tenant, router, &crate::audit::Actor::local_operator(), |_| {
                Err("wrong vault key".into())
            })
            .await
            .expect_err("reseal failed");
        assert!(matches!(refused, StoreError::Vault(_)), "{refused:?}");

        let device = store
            .adopt_host(&tenant, router, &crate::audit::Actor::local_operator(), reseal_ok)
            .await
            .expect("adopt");
        let d = store.device(&Viewer::Tenant(tenant), device).await.expect("device");
        assert_eq!((d.address.as_str(), d.api_port, d.api_tls), ("10.0.0.1", 8729, true));
        let detail = store.host(&Viewer::Tenant(tenant), router).await.expect("host");
        assert_eq!(detail.host.device, Some(device));
        assert_eq!(detail.changes[0].kind, ChangeKind::Adopted);
        let again = store
            .adopt_host(&tenant, router, &crate::audit::Actor::local_operator(), reseal_ok)
            .await
            .expect_err("twice");
        assert!(
            matches!(&again, StoreError::Conflict(m) if m.contains("already managed")),
            "{again:?}"
        );
        let left: Vec<String> = store
            .adoption_candidates(&Viewer::Tenant(tenant), Some(feed.scope.site()))
            .await
            .expect("candidates")
            .into_iter()
            .map(|c| c.host.address)
            .collect();
        assert_eq!(left, ["10.0.0.3"]);
        assert_eq!(
            changes(store, &feed.scope).await.last().map(|c| c.1),
            Some(ChangeKind::Adopted)
        );
    }
}

#[tokio::test]
async fn scan_requests_go_to_connected_agents_of_the_tenants_own_sites() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (hq, serial) = enrolled(store, &ca, "acme", "hq").await;
        let (globex, _) = enrolled(store, &ca, "globex", "hq").await;
        let tenant = hq.tenant_scope();
        assert!(
            store
                .connected_site_agents(&tenant, hq.site())
                .await
                .expect("agents")
                .is_empty()
        );
        store
            .agent_connected(&hq, &connecting(&serial, "i1"), None)
            .await
            .expect("connected");
        assert_eq!(
            store.connected_site_agents(&tenant, hq.site()).await.expect("agents"),
            [hq.agent()]
        );
        assert!(
            store
                .connected_site_agents(&globex.tenant_scope(), hq.site())
                .await
                .expect("agents")
                .is_empty()
        );
        let scan = ScanId::random();
        assert!(matches!(
            store
                .record_scan_request(&globex.tenant_scope(), hq.site(), &scan, None, hq.agent())
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store
                .record_scan_request(&tenant, hq.site(), &scan, Some(JobId::random()), hq.agent())
                .await,
            Err(StoreError::NotFound(_))
        ));
        store
            .record_scan_request(&tenant, hq.site(), &scan, None, hq.agent())
            .await
            .expect("request");
        assert!(matches!(
            store
                .record_scan_request(&tenant, hq.site(), &scan, None, hq.agent())
                .await,
            Err(StoreError::Conflict(_))
        ));
        let row = store.scan(&Viewer::Tenant(tenant), &scan).await.expect("scan");
        assert_eq!((row.state, row.agent), (scans::ScanState::Requested, Some(hq.agent())));
        // The agent's first chunk turns it into a running scan.
        let mut feed = Feed::new(hq);
        let chunk = feed.chunk(scan.as_str(), "", &[], vec![rec("10.0.0.1", None)]);
        feed.send(store, vec![chunk]).await;
        let row = store.scan(&Viewer::Tenant(tenant), &scan).await.expect("scan");
        assert_eq!((row.state, row.hosts_reported), (scans::ScanState::Running, 1));
        // Forgetting applies only to scans nothing was reported about.
        store.forget_scan_request(&tenant, &scan).await.expect("forget");
        assert!(store.scan(&Viewer::Tenant(tenant), &scan).await.is_ok());
        let idle = ScanId::random();
        store
            .record_scan_request(&tenant, feed.scope.site(), &idle, None, feed.scope.agent())
            .await
            .expect("request");
        store.forget_scan_request(&tenant, &idle).await.expect("forget");
        assert!(matches!(
            store.scan(&Viewer::Tenant(tenant), &idle).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

async fn addresses(store: &Store, viewer: &Viewer, query: HostQuery) -> Vec<String> {
    store
        .list_hosts(viewer, &query)
        .await
        .expect("list")
        .into_iter()
        .map(|h| h.address)
        .collect()
}

#[tokio::test]
async fn the_console_sorts_filters_and_follows_changes() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let mut feed = Feed::new(enrolled(store, &ca, "acme", "hq").await.0);
        let mut branch = Feed::new(enrolled(store, &ca, "acme", "branch").await.0);
        let viewer = Viewer::Tenant(feed.scope.tenant_scope());
        let host = |address: &str, mac: &str, vendor: &str, name: &str| {
            let mut r = rec(address, Some(mac));
            r.vendor = vendor.into();
            r.names = if name.is_empty() { vec![] } else { vec![name.into()] };
            r
        };
        feed.scan(
            store,
            "s1",
            "10.0.0.0/24",
            &[],
            vec![
                host("10.0.0.10", "02:00:00:00:00:10", "MikroTik", "core"),
                host("10.0.0.9", "02:00:00:00:00:09", "Acme_Corp", "printer"),
            ],
            false,
        )
        .await;
        let since = feed.clock + 1;
        feed.scan(
            store,
            "s2",
            "10.0.0.0/24",
            &[],
            vec![
                host("10.0.0.10", "02:00:00:00:00:10", "MikroTik", "core"),
                host("10.0.0.9", "02:00:00:00:00:09", "Acme_Corp", "printer"),
                host("10.0.0.21", "aa:bb:cc:00:00:21", "", "Backup-NAS"),
            ],
            false,
        )
        .await;
        branch.clock = feed.clock;
        branch
            .scan(
                store,
                "b1",
                "10.0.0.0/24",
                &[],
                vec![host("10.0.0.1", "02:00:00:00:00:01", "", "")],
                false,
            )
            .await;

        let all = |sort, descending| HostQuery {
            sort,
            descending,
            ..HostQuery::default()
        };
        assert_eq!(
            addresses(store, &viewer, all(HostSort::Address, false)).await,
            ["10.0.0.1", "10.0.0.9", "10.0.0.10", "10.0.0.21"]
        );
        assert_eq!(
            addresses(store, &viewer, all(HostSort::Vendor, false)).await,
            ["10.0.0.9", "10.0.0.10", "10.0.0.1", "10.0.0.21"]
        );
        assert_eq!(
            addresses(store, &viewer, all(HostSort::Name, true)).await,
            ["10.0.0.9", "10.0.0.10", "10.0.0.21", "10.0.0.1"]
        );
        let newest = addresses(store, &viewer, all(HostSort::FirstSeen, true)).await;
        assert_eq!(newest[0], "10.0.0.1");
        let filtered = |filter: &str| HostQuery {
            filter: filter.into(),
            ..HostQuery::default()
        };
        assert_eq!(
            addresses(store, &viewer, filtered("10.0.0.1")).await,
            ["10.0.0.1", "10.0.0.10"]
        );
        assert_eq!(addresses(store, &viewer, filtered("AA:BB")).await, ["10.0.0.21"]);
        assert_eq!(addresses(store, &viewer, filtered("nas")).await, ["10.0.0.21"]);
        assert_eq!(addresses(store, &viewer, filtered("mikro")).await, ["10.0.0.10"]);
        assert_eq!(
            addresses(store, &viewer, filtered("_")).await,
            ["10.0.0.9"],
            "wildcards are literal"
        );
        let one_site = HostQuery {
            site: Some(branch.scope.site()),
            ..HostQuery::default()
        };
        assert_eq!(addresses(store, &viewer, one_site).await, ["10.0.0.1"]);
        let limited = HostQuery {
            limit: Some(2),
            ..HostQuery::default()
        };
        assert_eq!(addresses(store, &viewer, limited).await.len(), 2);

        let recent = store
            .host_changes_since(&viewer, None, since, 100)
            .await
            .expect("changes");
        let recent: Vec<(&str, ChangeKind)> = recent.iter().map(|c| (c.host_address.as_str(), c.kind)).collect();
        assert_eq!(
            recent,
            [("10.0.0.1", ChangeKind::NewHost), ("10.0.0.21", ChangeKind::NewHost)]
        );
        let hq_only = store
            .host_changes_since(&viewer, Some(feed.scope.site()), since, 100)
            .await
            .expect("changes");
        assert_eq!(hq_only.len(), 1);

        let scans = store
            .list_scans(&viewer, Some(feed.scope.site()), 10)
            .await
            .expect("scans");
        let ids: Vec<&str> = scans.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s2", "s1"]);
        let admin = Viewer::Admin(crate::AdminScope::verified());
        assert_eq!(store.list_scans(&admin, None, 10).await.expect("scans").len(), 3);
    }
}
