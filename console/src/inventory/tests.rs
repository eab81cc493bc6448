//! The inventory pages through the router (an administrator's session) and
//! their handlers called with a tenant's session, on SQLite and, when
//! `OUTPOST_TEST_DATABASE_URL` is set, PostgreSQL: the list (sorting,
//! filtering, badges, its JSON), a host's page, adoption, clearing a
//! conflict, what changed, tenant isolation and the security headers. The
//! site page (jobs, profile, scan now and progress) is in `tests_site.rs`.
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outpost_certs::{AgentCertificate, AgentId, AgentIdentity};
use outpost_store::ingest::IngestBatch;
use outpost_store::inventory::HostId;
use outpost_store::inventory::addr::parse_targets;
use outpost_store::inventory::records::{
    DiscoveryBody, DiscoveryReport, HostRecord, HostsChunk, LldpNeighbor, MndpFacts, PortRecord, ScanFinishedRow,
    SnmpInterface, SnmpRecord,
};
use outpost_store::inventory::views::HostQuery;
use outpost_store::scope::Viewer;
use outpost_store::users::Session;
use outpost_store::{AdminScope, AgentScope, now_ms};
use tempfile::TempDir;

use crate::csrf::CsrfForm;
use crate::devices::tests::consoles;
use crate::session::{ApiSession, Authenticated, PageSession};
use crate::tests::{Console, body, enroll, hidden_csrf, location, post_request};

/// A tenant's agent and what its scans found.
pub(super) struct Seeded {
    pub(super) agent: AgentScope,
    pub(super) agent_id: AgentId,
    /// 10.0.0.1: a RouterOS router (API ports, MNDP, MikroTik SNMP).
    pub(super) router: HostId,
    /// 10.0.0.3, flagged: another MAC answered at its address.
    pub(super) pc: HostId,
    /// 10.0.0.20, a printer.
    pub(super) printer: HostId,
    /// 10.0.0.100, gone after three complete scans missed it.
    pub(super) nas: HostId,
    seq: i64,
}

/// A record for `address` with `mac`, seen by echo.
fn rec(address: &str, mac: &str, vendor: &str, name: &str) -> HostRecord {
    HostRecord {
        address: address.parse().expect("test address"),
        mac: Some(mac.parse().expect("test MAC")),
        vendor: vendor.into(),
        names: if name.is_empty() { Vec::new() } else { vec![name.into()] },
        open_ports: Vec::new(),
        snmp: None,
        mndp: None,
        seen_by: vec!["icmp".into()],
        rtt_us: Some(420),
        os: None,
    }
}

fn port(port: u16, service: &str, product: &str, banner: &str) -> PortRecord {
    PortRecord {
        port,
        protocol: "tcp".into(),
        service: service.into(),
        product: product.into(),
        version: if product.is_empty() {
            String::new()
        } else {
            "7.16".into()
        },
        banner: banner.into(),
    }
}

fn router(tenant: &str) -> HostRecord {
    let mut r = rec(
        "10.0.0.1",
        "02:00:00:00:00:01",
        "Routerboard.com",
        &format!("gw.{tenant}.example"),
    );
    r.open_ports = vec![
        port(22, "ssh", "MikroTik RouterOS sshd", "SSH-2.0-ROSSSH"),
        port(8728, "mikrotik-api", "", ""),
        port(8729, "mikrotik-api-ssl", "", ""),
    ];
    r.snmp = Some(SnmpRecord {
        descr: "RouterOS CCR2004-1G-12S+2XS".into(),
        object_id: "1.3.6.1.4.1.14988.1".into(),
        name: format!("{tenant}-gw"),
        location: "rack 1".into(),
        uptime_ticks: 8_640_000,
        interfaces: vec![SnmpInterface {
            index: 1,
            name: "ether1".into(),
            descr: "ether1".into(),
            alias: "uplink".into(),
            if_type: 6,
            mac: "02:00:00:00:00:01".into(),
            oper_up: true,
            speed_mbps: 1000,
        }],
        lldp: vec![LldpNeighbor {
            local_port: "ether1".into(),
            chassis_id: "02:00:00:00:00:50".into(),
            port_id: "Gi0/1".into(),
            port_descr: "uplink to gw".into(),
            sys_name: "core-sw".into(),
        }],
        error: String::new(),
    });
    r.mndp = Some(MndpFacts {
        identity: format!("{tenant}-gw"),
        mac: "02:00:00:00:00:01".into(),
        version: "7.16.1".into(),
        platform: "MikroTik".into(),
        board: "CCR2004-1G-12S+2XS".into(),
        uptime_secs: 86_400,
        software_id: "ABCD-1234".into(),
        interface: "ether1".into(),
        ipv4: "10.0.0.1".into(),
        ipv6: String::new(),
    });
    r.os = Some(("RouterOS 7".into(), 95));
    r
}

fn printer() -> HostRecord {
    let mut r = rec("10.0.0.20", "02:00:00:00:00:14", "Hewlett Packard", "printer");
    r.open_ports = vec![port(80, "http", "", ""), port(9100, "jetdirect", "", "")];
    r
}

fn pc() -> HostRecord {
    rec("10.0.0.3", "02:00:00:00:00:03", "Dell", "pc-3")
}

impl Seeded {
    /// One complete scan of 10.0.0.0/24 seen at `at` (agent clock).
    async fn scan(&mut self, c: &Console, scan: &str, at: i64, hosts: Vec<HostRecord>, warnings: &[&str]) {
        let found = hosts.len() as i64;
        self.seq += 2;
        let chunk = DiscoveryReport {
            seq: self.seq - 1,
            observed_at_ms: at,
            body: DiscoveryBody::Hosts(HostsChunk {
                scan_id: scan.parse().expect("scan id"),
                job_id: String::new(),
                scanned_ports: vec![22, 80, 8728, 8729, 9100],
                hosts,
            }),
        };
        let end = DiscoveryReport {
            seq: self.seq,
            observed_at_ms: at + 1_000,
            body: DiscoveryBody::Finished(ScanFinishedRow {
                scan_id: scan.parse().expect("scan id"),
                job_id: String::new(),
                source: "scan".into(),
                targets: parse_targets("10.0.0.0/24").expect("targets"),
                started_ms: at - 5_000,
                finished_ms: at + 1_000,
                addresses: 254,
                hosts_found: found,
                partial: false,
                warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
                icmp: "raw".into(),
                probes_sent: 1_270,
            }),
        };
        self.ingest(c, vec![chunk, end]).await;
    }

    /// Stores `reports` as the agent's next batch.
    pub(super) async fn ingest(&mut self, c: &Console, reports: Vec<DiscoveryReport>) {
        let through = reports.iter().map(|r| r.seq).max().unwrap_or(self.seq);
        self.seq = self.seq.max(through);
        let batch = IngestBatch {
            discovery: reports,
            through_seq: through,
            ..IngestBatch::default()
        };
        c.store.ingest(&self.agent, &batch).await.expect("ingest");
    }

    /// The agent's next sequence number.
    pub(super) fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }
}

/// A tenant with site "hq", one agent, and four scans (`<tenant>-s1` to
/// `-s4`, as scan ids are unique across tenants): the first two hours
/// ago finds everything; three in the last half hour miss the NAS (gone),
/// and the first of them sees another MAC at the PC's address (conflict).
pub(super) async fn seed(c: &Console, tenant: &str) -> Seeded {
    let site = c
        .store
        .ensure_site(&AdminScope::for_tests(), tenant, "hq")
        .await
        .expect("site");
    let agent_id = enroll(&c.store, tenant, "hq", &format!("{tenant}-agent")).await;
    let agent = AgentScope::from_certificate(&AgentCertificate {
        identity: AgentIdentity {
            tenant: site.tenant,
            site: site.site,
            agent: agent_id,
        },
        serial: String::new(),
        not_before: 0,
        not_after: 0,
    });
    let mut s = Seeded {
        agent,
        agent_id,
        router: HostId::random(),
        pc: HostId::random(),
        printer: HostId::random(),
        nas: HostId::random(),
        seq: 0,
    };
    let now = now_ms();
    let nas = rec("10.0.0.100", "02:00:00:00:00:64", "Synology", "nas");
    s.scan(
        c,
        &format!("{tenant}-s1"),
        now - 2 * 3_600_000,
        vec![router(tenant), pc(), printer(), nas],
        &[],
    )
    .await;
    let intruder = rec("10.0.0.3", "02:00:00:00:00:99", "", "");
    s.scan(
        c,
        &format!("{tenant}-s2"),
        now - 1_800_000,
        vec![router(tenant), pc(), printer(), intruder],
        &[],
    )
    .await;
    s.scan(
        c,
        &format!("{tenant}-s3"),
        now - 1_200_000,
        vec![router(tenant), pc(), printer()],
        &[],
    )
    .await;
    s.scan(
        c,
        &format!("{tenant}-s4"),
        now - 600_000,
        vec![router(tenant), pc(), printer()],
        &["SNMP timed out on 10.0.0.20"],
    )
    .await;
    let hosts = c
        .store
        .list_hosts(
            &Viewer::Tenant(s.agent.tenant_scope()),
            &HostQuery {
                include_gone: true,
                ..HostQuery::default()
            },
        )
        .await
        .expect("hosts");
    let by_mac = |mac: &str| hosts.iter().find(|h| h.mac == mac).map(|h| h.id).expect(mac);
    s.router = by_mac("02:00:00:00:00:01");
    s.pc = by_mac("02:00:00:00:00:03");
    s.printer = by_mac("02:00:00:00:00:14");
    s.nas = by_mac("02:00:00:00:00:64");
    s
}

/// A session of the seeded tenant's user.
pub(super) fn tenant_session(s: &Seeded) -> Authenticated {
    Authenticated {
        token: "tenant cookie".into(),
        session: Session {
            username: "tenant-user".into(),
            csrf_token: "t".repeat(43),
            viewer: Viewer::Tenant(s.agent.tenant_scope()),
        },
    }
}

/// A form for a handler called directly, with the session's token.
pub(super) fn form<T: serde::de::DeserializeOwned>(auth: &Authenticated, mut fields: serde_json::Value) -> CsrfForm<T> {
    fields["csrf"] = auth.session.csrf_token.clone().into();
    CsrfForm {
        auth: auth.clone(),
        form: serde_json::from_value(fields).expect("form"),
    }
}

/// The addresses of the list's rows, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("data-field=\"address\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .map(str::to_owned)
        .collect()
}

/// The token of the signed-in administrator (any page's forms carry it).
pub(super) async fn admin_csrf(c: &Console, cookie: &str) -> String {
    hidden_csrf(&body(c.get("/devices/new", Some(cookie)).await).await)
}

#[tokio::test]
async fn the_list_sorts_numerically_filters_and_marks_what_needs_an_operator() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let res = c.get("/inventory", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        // Numeric address order (text order would put .100 and .20 before .3).
        assert_eq!(
            listed(&html),
            ["10.0.0.1", "10.0.0.3", "10.0.0.3", "10.0.0.20"],
            "{html}"
        );
        assert!(
            html.contains("aria-sort=\"ascending\"><a href=\"/inventory?sort=address&#38;order=desc\""),
            "{html}"
        );
        let row = |id: HostId| {
            let start = html.find(&format!("data-host-id=\"{id}\"")).expect("row");
            html[start..start + html[start..].find("</tr>").expect("row end")].to_owned()
        };
        assert!(
            row(acme.router).contains("data-badge=\"adopt\""),
            "{}",
            row(acme.router)
        );
        assert!(row(acme.router).contains("API-SSL port 8729 open"));
        assert!(row(acme.pc).contains("data-badge=\"conflict\""), "{}", row(acme.pc));
        assert!(!row(acme.printer).contains("data-badge="), "{}", row(acme.printer));
        assert!(row(acme.printer).contains("80,9100"));
        assert!(!html.contains("10.0.0.100"), "gone hosts only when asked for");

        let html = body(c.get("/inventory?gone=1&sort=address&order=desc", Some(&cookie)).await).await;
        assert_eq!(
            listed(&html),
            ["10.0.0.100", "10.0.0.20", "10.0.0.3", "10.0.0.3", "10.0.0.1"]
        );
        let start = html.find(&format!("data-host-id=\"{}\"", acme.nas)).expect("gone row");
        assert!(html[start..].contains("data-badge=\"gone\""));
        assert!(html.contains("aria-sort=\"descending\""), "{html}");
        assert!(
            html.contains("name=\"gone\" value=\"1\" checked"),
            "the toggle stays on"
        );

        let html = body(c.get("/inventory?sort=name", Some(&cookie)).await).await;
        assert_eq!(
            listed(&html),
            ["10.0.0.1", "10.0.0.3", "10.0.0.20", "10.0.0.3"],
            "gw, pc-3, printer, unnamed last"
        );
        let html = body(c.get("/inventory?sort=vendor&order=desc", Some(&cookie)).await).await;
        assert_eq!(
            listed(&html),
            ["10.0.0.1", "10.0.0.20", "10.0.0.3", "10.0.0.3"],
            "{html}"
        );
        let html = body(c.get("/inventory?sort=first_seen&order=desc", Some(&cookie)).await).await;
        assert_eq!(listed(&html)[0], "10.0.0.3", "the intruder came last");
        let html = body(c.get("/inventory?sort=last_seen", Some(&cookie)).await).await;
        assert_eq!(
            listed(&html)[0],
            "10.0.0.3",
            "the intruder was seen once, in the second scan"
        );

        for (q, want) in [
            ("10.0.0.2", vec!["10.0.0.20"]),
            ("hewlett", vec!["10.0.0.20"]),
            ("02:00:00:00:00:01", vec!["10.0.0.1"]),
            ("GW.ACME", vec!["10.0.0.1"]),
            ("0.0.1", vec![]),
        ] {
            let html = body(c.get(&format!("/inventory?q={q}"), Some(&cookie)).await).await;
            assert_eq!(listed(&html), want, "filter {q}");
            assert!(
                html.contains(&format!("value=\"{q}\"")),
                "the filter stays in its field"
            );
        }
        let html = body(c.get("/inventory?q=nothing-like-it", Some(&cookie)).await).await;
        assert!(html.contains("id=\"no-hosts\""), "{html}");
        let site = acme.agent.site();
        let html = body(c.get(&format!("/inventory?site={site}&sort=name"), Some(&cookie)).await).await;
        assert_eq!(listed(&html).len(), 4);
        assert!(
            html.contains(&format!(
                "href=\"/inventory?site={site}&#38;sort=address&#38;order=asc\""
            )),
            "{html}"
        );

        // The JSON twin takes the same parameters.
        let res = c
            .get("/api/inventory?sort=address&order=desc&gone=1", Some(&cookie))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
        let hosts = json["groups"][0]["hosts"].as_array().expect("hosts");
        let addresses: Vec<&str> = hosts.iter().map(|h| h["address"].as_str().unwrap()).collect();
        assert_eq!(
            addresses,
            ["10.0.0.100", "10.0.0.20", "10.0.0.3", "10.0.0.3", "10.0.0.1"]
        );
        assert_eq!(json["query"]["sort"], "address");
        assert_eq!(json["query"]["order"], "desc");
        assert_eq!(json["groups"][0]["site_name"], "hq");
        let gw = hosts.iter().find(|h| h["address"] == "10.0.0.1").unwrap();
        assert_eq!(gw["adoptable"], true);
        assert_eq!(gw["ports"], "22,8728-8729");
        assert_eq!(gw["mac"], "02:00:00:00:00:01");
        assert_eq!(hosts[0]["gone"], true);
        let json: serde_json::Value =
            serde_json::from_str(&body(c.get("/api/inventory?q=printer", Some(&cookie)).await).await).unwrap();
        assert_eq!(json["groups"][0]["hosts"].as_array().unwrap().len(), 1);

        // What no listing has is refused, naming it; an unknown site is not found.
        for path in ["/inventory?sort=size", "/inventory?order=up"] {
            let res = c.get(path, Some(&cookie)).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        }
        let res = c.get("/api/inventory?sort=size", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(body(res).await.contains("unknown sort \\\"size\\\""));
        let other = outpost_certs::SiteId::random();
        assert_eq!(
            c.get(&format!("/inventory?site={other}"), Some(&cookie)).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            c.get(&format!("/api/inventory?site={other}"), Some(&cookie))
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(c.get("/api/inventory", None).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(c.get("/inventory", None).await.status(), StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn a_host_page_shows_its_facts_ports_snmp_mndp_and_history() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let res = c.get(&format!("/inventory/hosts/{}", acme.router), Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        for want in [
            "gw.acme.example (10.0.0.1)",
            "02:00:00:00:00:01",
            "Routerboard.com",
            "22,8728-8729",
            "RouterOS 7 (95% accuracy)",
            "0.4 ms",
            "MikroTik RouterOS sshd",
            "SSH-2.0-ROSSSH",
            "RouterOS CCR2004-1G-12S+2XS",
            "1.3.6.1.4.1.14988.1",
            "rack 1",
            "1d",
            "ether1 · uplink",
            "1.0 Gbps",
            "core-sw",
            "Gi0/1",
            "ABCD-1234",
            "7.16.1",
            "data-kind=\"new_host\"",
            "href=\"/inventory/scans/acme-s4\"",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        // A router, but the site has no profile yet: say so and link to the form.
        assert!(html.contains("id=\"no-profile\""), "{html}");
        assert!(html.contains(&format!("href=\"/inventory/sites/{}#profile\"", acme.agent.site())));
        assert!(!html.contains("/adopt\""), "no adopt button without a profile");
        assert!(!html.contains("clear-conflict"));

        let html = body(c.get(&format!("/inventory/hosts/{}", acme.pc), Some(&cookie)).await).await;
        assert!(
            html.contains("id=\"conflict\"") && html.contains("02:00:00:00:00:99"),
            "{html}"
        );
        assert!(html.contains("data-kind=\"mac_conflict\""));
        assert!(!html.contains("id=\"adopt\""), "not a router");
        let html = body(c.get(&format!("/inventory/hosts/{}", acme.nas), Some(&cookie)).await).await;
        assert!(
            html.contains("data-kind=\"host_gone\"") && html.contains("gone since"),
            "{html}"
        );

        for missing in [HostId::random().to_string(), "not-an-id".to_owned()] {
            let res = c.get(&format!("/inventory/hosts/{missing}"), Some(&cookie)).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND);
        }
    }
}

#[tokio::test]
async fn adopting_a_router_creates_its_device_and_links_it() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let csrf = admin_csrf(&c, &cookie).await;
        let host_path = format!("/inventory/hosts/{}", acme.router);
        let adopt = format!("{host_path}/adopt");

        // Without a profile: refused, saying why.
        let res = c.send(post_request(&adopt, Some(&cookie), &[("csrf", &csrf)])).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(body(res).await.contains("no credential profile"));

        let profile = format!("/inventory/sites/{}/profile", acme.agent.site());
        let res = c
            .send(post_request(
                &profile,
                Some(&cookie),
                &[("csrf", &csrf), ("username", "outpost"), ("password", "Adopt-Pw-9")],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let html = body(c.get(&host_path, Some(&cookie)).await).await;
        assert!(html.contains(&format!("action=\"{adopt}\"")), "{html}");
        assert!(html.contains("<strong>outpost</strong>") && html.contains("API-SSL on port 8729"));

        let res = c.send(post_request(&adopt, Some(&cookie), &[("csrf", "forged")])).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = c.send(post_request(&adopt, None, &[("csrf", &csrf)])).await;
        assert_eq!(location(&res), "/login");
        let res = c.send(post_request(&adopt, Some(&cookie), &[("csrf", &csrf)])).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = location(&res).to_owned();
        let device: outpost_store::devices::DeviceId =
            to.strip_prefix("/devices/").expect("a device page").parse().unwrap();
        assert_eq!(
            c.get(&to, Some(&cookie)).await.status(),
            StatusCode::OK,
            "its device page exists"
        );

        // The device has the profile's login, its password sealed for it.
        let tenant = acme.agent.tenant_scope();
        let row = c.store.device(&Viewer::Tenant(tenant), device).await.unwrap();
        assert_eq!(
            (row.address.as_str(), row.api_port, row.api_tls),
            ("10.0.0.1", 8729, true)
        );
        c.store.claim_devices(&acme.agent).await.unwrap();
        let assigned = c.store.assigned_devices(&acme.agent).await.unwrap();
        let d = assigned
            .iter()
            .find(|d| d.id == device)
            .expect("assigned to the site's agent");
        assert_eq!(d.username, "outpost");
        let opened = c
            .state
            .vault
            .tenant(&acme.agent.tenant().to_string())
            .open_device_password(&device.to_string(), &d.password_sealed)
            .unwrap();
        assert_eq!(opened.as_str(), "Adopt-Pw-9");

        // The host links to it, the list says managed, and it is adopted once.
        let html = body(c.get(&host_path, Some(&cookie)).await).await;
        assert!(
            html.contains(&format!("href=\"/devices/{device}\" id=\"device-link\"")),
            "{html}"
        );
        assert!(html.contains("data-kind=\"adopted\"") && !html.contains("id=\"adopt\""));
        let html = body(c.get("/inventory", Some(&cookie)).await).await;
        let start = html.find(&format!("data-host-id=\"{}\"", acme.router)).unwrap();
        let row = &html[start..start + html[start..].find("</tr>").unwrap()];
        assert!(
            row.contains("data-badge=\"managed\"") && !row.contains("data-badge=\"adopt\""),
            "{row}"
        );
        let res = c.send(post_request(&adopt, Some(&cookie), &[("csrf", &csrf)])).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(body(res).await.contains("already managed"));
        // A printer is no router.
        let res = c
            .send(post_request(
                &format!("/inventory/hosts/{}/adopt", acme.printer),
                Some(&cookie),
                &[("csrf", &csrf)],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = c
            .send(post_request(
                &format!("/inventory/hosts/{}/adopt", HostId::random()),
                Some(&cookie),
                &[("csrf", &csrf)],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn clearing_a_conflict_needs_the_token_and_keeps_the_history() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let csrf = admin_csrf(&c, &cookie).await;
        let path = format!("/inventory/hosts/{}/clear-conflict", acme.pc);
        let res = c.send(post_request(&path, Some(&cookie), &[])).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = c.send(post_request(&path, Some(&cookie), &[("csrf", &csrf)])).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), format!("/inventory/hosts/{}", acme.pc));
        let html = body(c.get(location(&res), Some(&cookie)).await).await;
        assert!(!html.contains("id=\"conflict\""), "{html}");
        assert!(
            html.contains("data-kind=\"mac_conflict\""),
            "the change stays in the history"
        );
        let html = body(c.get("/inventory", Some(&cookie)).await).await;
        assert!(!html.contains("data-badge=\"conflict\""));
    }
}

#[tokio::test]
async fn changes_since_a_preset_or_a_moment_link_to_their_hosts() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        // The first scan, two hours ago, found every host; later ones flagged
        // the conflict and the NAS gone.
        let html = body(c.get("/inventory/changes?since=1h", Some(&cookie)).await).await;
        assert!(
            html.contains("data-kind=\"mac_conflict\"") && html.contains("data-kind=\"host_gone\""),
            "{html}"
        );
        assert_eq!(
            html.matches("data-change-id").count(),
            3,
            "the conflict, the intruder, the NAS gone: {html}"
        );
        assert!(html.contains(&format!("href=\"/inventory/hosts/{}\"", acme.nas)));
        assert!(html.contains("aria-current=\"true\">1 h<"), "{html}");
        let day = body(c.get("/inventory/changes", Some(&cookie)).await).await;
        assert!(
            day.contains(&format!("href=\"/inventory/hosts/{}\"", acme.router)),
            "24 h by default"
        );
        assert!(day.contains("aria-current=\"true\">24 h<"));
        let week = body(c.get("/inventory/changes?since=7d", Some(&cookie)).await).await;
        assert_eq!(
            week.matches("data-change-id").count(),
            day.matches("data-change-id").count()
        );
        assert_eq!(day.matches("data-change-id").count(), 7, "and four new hosts: {day}");
        assert!(
            !html.contains(&format!("href=\"/inventory/hosts/{}\"", acme.router)),
            "{html}"
        );

        let html = body(c.get("/inventory/changes?since=2000-01-01T00:00", Some(&cookie)).await).await;
        assert_eq!(
            html.matches("data-change-id").count(),
            day.matches("data-change-id").count()
        );
        assert!(html.contains("value=\"2000-01-01T00:00\"") && html.contains("2000-01-01 00:00:00 UTC"));
        let html = body(c.get("/inventory/changes?since=2999-01-01T00:00", Some(&cookie)).await).await;
        assert!(html.contains("id=\"no-changes\""));
        let site = acme.agent.site();
        let html = body(
            c.get(&format!("/inventory/changes?site={site}&since=7d"), Some(&cookie))
                .await,
        )
        .await;
        assert!(
            html.contains("at acme / hq") && html.contains(&format!("since=1h&#38;site={site}")),
            "{html}"
        );

        let res = c.get("/inventory/changes?since=yesterday", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(body(res).await.contains("must be 1h, 24h, 7d"));
        let other = outpost_certs::SiteId::random();
        let res = c.get(&format!("/inventory/changes?site={other}"), Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_tenant_sees_and_acts_on_only_its_own_hosts() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let zeta = seed(&c, "zeta").await;
        let auth = tenant_session(&acme);
        let state = c.state.clone();

        let html = body(
            super::list::page(
                State(state.clone()),
                PageSession(auth.clone()),
                Query(Default::default()),
            )
            .await,
        )
        .await;
        assert!(
            html.contains("gw.acme.example") && !html.contains("gw.zeta.example"),
            "{html}"
        );
        let res = super::list::api(
            State(state.clone()),
            ApiSession(auth.clone()),
            Query(Default::default()),
        )
        .await;
        let json = body(res).await;
        assert!(json.contains("gw.acme.example") && !json.contains("zeta"), "{json}");
        // Another tenant's site is not a filter this tenant can use.
        let foreign_site: super::query::ListParams =
            serde_json::from_value(serde_json::json!({ "site": zeta.agent.site().to_string() })).unwrap();
        let res = super::list::page(
            State(state.clone()),
            PageSession(auth.clone()),
            Query(foreign_site.clone()),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = super::list::api(State(state.clone()), ApiSession(auth.clone()), Query(foreign_site)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        let host =
            |id: HostId| super::host::page(State(state.clone()), PageSession(auth.clone()), Path(id.to_string()));
        assert_eq!(host(acme.router).await.status(), StatusCode::OK);
        assert_eq!(host(zeta.router).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(host(zeta.pc).await.status(), StatusCode::NOT_FOUND);

        let html = body(
            super::changes::page(
                State(state.clone()),
                PageSession(auth.clone()),
                Query(serde_json::from_value(serde_json::json!({ "since": "7d" })).unwrap()),
            )
            .await,
        )
        .await;
        assert!(html.contains(&format!("/inventory/hosts/{}", acme.nas)), "{html}");
        assert!(!html.contains(&format!("/inventory/hosts/{}", zeta.nas)), "{html}");
        let res = super::changes::page(
            State(state.clone()),
            PageSession(auth.clone()),
            Query(serde_json::from_value(serde_json::json!({ "site": zeta.agent.site().to_string() })).unwrap()),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        // Acting on another tenant's host: not found, and nothing changes.
        let zeta_scope = zeta.agent.tenant_scope();
        c.store
            .set_site_credential(&zeta_scope, zeta.agent.site(), "x", b"sealed")
            .await
            .unwrap();
        let res = super::actions::adopt(
            State(state.clone()),
            Path(zeta.router.to_string()),
            form(&auth, serde_json::json!({})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = super::actions::clear_conflict(
            State(state.clone()),
            Path(zeta.pc.to_string()),
            form(&auth, serde_json::json!({})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let zeta_view = Viewer::Tenant(zeta_scope);
        let pc = c.store.host(&zeta_view, zeta.pc).await.unwrap();
        assert!(pc.host.conflict.is_some(), "still flagged");
        assert!(
            c.store
                .host(&zeta_view, zeta.router)
                .await
                .unwrap()
                .host
                .device
                .is_none()
        );

        // Its own conflict it may clear.
        let res = super::actions::clear_conflict(
            State(state.clone()),
            Path(acme.pc.to_string()),
            form(&auth, serde_json::json!({})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn every_inventory_page_has_the_security_headers_and_forms_carry_the_token() {
    let c = Console::on(TempDir::new().unwrap(), None, false).await;
    let acme = seed(&c, "acme").await;
    let cookie = c.session().await;
    let csrf = admin_csrf(&c, &cookie).await;
    let site = acme.agent.site();
    // A profile, so the router's page has its adopt form too.
    let res = c
        .send(post_request(
            &format!("/inventory/sites/{site}/profile"),
            Some(&cookie),
            &[("csrf", &csrf), ("username", "outpost"), ("password", "pw")],
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = c
        .send(post_request(
            &format!("/inventory/sites/{site}/jobs"),
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("targets", "10.0.0.0/24"),
                ("rate", "0"),
                ("interval", "0"),
            ],
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mut seen_forms = 0;
    for path in [
        "/inventory".to_owned(),
        "/inventory?gone=1&sort=vendor&order=desc&q=10.0".to_owned(),
        "/api/inventory".to_owned(),
        format!("/inventory/hosts/{}", acme.router),
        format!("/inventory/hosts/{}", acme.pc),
        "/inventory/changes?since=7d".to_owned(),
        format!("/inventory/sites/{site}"),
        "/inventory/scans/acme-s4".to_owned(),
        "/api/scans/acme-s4".to_owned(),
    ] {
        let res = c.get(&path, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'"),
            "{path}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let html = body(res).await;
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "{path}: no inline script or style"
        );
        // Every POST form carries the session's token; GET forms (filters)
        // never do, so it stays out of URLs.
        let posts = html.matches("method=\"post\"").count();
        assert_eq!(
            html.matches("<form").count(),
            posts + html.matches("method=\"get\"").count(),
            "{path}"
        );
        assert_eq!(
            html.matches(&format!("name=\"csrf\" value=\"{csrf}\"")).count(),
            posts,
            "{path}"
        );
        seen_forms += posts;
    }
    assert!(seen_forms >= 10, "the pages' forms were looked at: {seen_forms}");
    // Signed out, pages redirect, data is refused, and forms do nothing.
    for path in [
        "/inventory",
        "/inventory/changes",
        &format!("/inventory/sites/{site}"),
        "/inventory/scans/acme-s4",
    ] {
        assert_eq!(c.get(path, None).await.status(), StatusCode::SEE_OTHER, "{path}");
    }
    assert_eq!(
        c.get("/api/scans/acme-s4", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for path in [
        format!("/inventory/sites/{site}/scan"),
        format!("/inventory/sites/{site}/jobs"),
        format!("/inventory/sites/{site}/profile"),
        format!("/inventory/hosts/{}/adopt", acme.router),
    ] {
        let res = c.send(post_request(&path, None, &[("csrf", &csrf)])).await;
        assert_eq!(location(&res), "/login", "{path}");
    }
}

#[tokio::test]
async fn the_navigation_links_the_inventory() {
    let c = Console::on(TempDir::new().unwrap(), None, false).await;
    let cookie = c.session().await;
    let html = body(c.get("/devices", Some(&cookie)).await).await;
    assert!(html.contains("<a href=\"/inventory\">Inventory</a>"), "{html}");
    let html = body(c.get("/inventory", Some(&cookie)).await).await;
    assert!(html.contains("There is no site yet"), "{html}");
}
