//! The inventory pages through the router (an administrator's session), on
//! SQLite and, when `OUTPOST_TEST_DATABASE_URL` is set, PostgreSQL: the list
//! (sorting, filtering, badges, its JSON), a host's page, adoption, clearing
//! a conflict, what changed. The site page is in `tests_site.rs`; tenant
//! isolation and the security headers of every page in `tests_isolation.rs`.
use axum::http::StatusCode;
use outpost_store::inventory::HostId;
use outpost_store::scope::Viewer;

use super::test_seed::{admin_csrf, seed};
use crate::devices::tests::consoles;
use crate::tests::{body, location, post_request};

/// The addresses of the list's rows, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("data-field=\"address\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .map(str::to_owned)
        .collect()
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
