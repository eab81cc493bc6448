//! Tenant isolation of every inventory page and action (handlers called
//! with a tenant user's session: another tenant's host, site, job or scan is
//! "not found", and nothing of it changes), and the security headers and
//! CSRF tokens of every page, on SQLite and, when `OUTPOST_TEST_DATABASE_URL`
//! is set, PostgreSQL.
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outpost_store::inventory::addr::parse_targets;
use outpost_store::inventory::{HostId, JobId, ScanId};
use outpost_store::scope::Viewer;
use tempfile::TempDir;

use super::test_seed::{Scans, admin_csrf, form, seed, tenant_session};
use crate::devices::tests::consoles;
use crate::session::{ApiSession, PageSession};
use crate::tests::{Console, body, location, post_request};

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
            crate::rate_limit::ClientIp(None),
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

#[tokio::test]
async fn a_tenant_reaches_only_its_own_sites_jobs_and_scans() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let zeta = seed(&c, "zeta").await;
        let scans = Scans::new(&c, &acme);
        let c = c.with_agents(scans.clone());
        let auth = tenant_session(&acme);
        let state = c.state.clone();
        let zeta_scope = zeta.agent.tenant_scope();
        let zeta_site = zeta.agent.site().to_string();
        let zeta_job = c
            .store
            .add_discovery_job(
                &zeta_scope,
                &outpost_store::inventory::jobs::NewJob {
                    id: JobId::random(),
                    site: zeta.agent.site(),
                    targets: parse_targets("10.9.0.0/24").unwrap(),
                    ports: Default::default(),
                    rate_pps: 0,
                    interval_secs: 0,
                    snmp_sealed: None,
                    snmp_summary: String::new(),
                },
            )
            .await
            .unwrap();

        let site_page = |site: String| {
            super::site::page(
                State(state.clone()),
                PageSession(auth.clone()),
                Path(site),
                Query(Default::default()),
            )
        };
        assert_eq!(site_page(acme.agent.site().to_string()).await.status(), StatusCode::OK);
        assert_eq!(site_page(zeta_site.clone()).await.status(), StatusCode::NOT_FOUND);

        let job = serde_json::json!({ "targets": "10.9.1.0/24", "rate": "0", "interval": "0" });
        let res = super::jobs::add(State(state.clone()), Path(zeta_site.clone()), form(&auth, job.clone())).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = super::jobs::delete(
            State(state.clone()),
            Path(zeta_job.to_string()),
            form(&auth, serde_json::json!({})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let zeta_jobs = c.store.assigned_discovery_jobs(&zeta.agent).await.unwrap();
        assert_eq!(
            zeta_jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
            [zeta_job],
            "untouched"
        );

        let profile = serde_json::json!({ "username": "evil", "password": "pw" });
        let res = super::profile::set(
            State(state.clone()),
            Path(zeta_site.clone()),
            form(&auth, profile.clone()),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(
            c.store
                .site_credential(&zeta_scope, zeta.agent.site())
                .await
                .unwrap()
                .is_none()
        );

        let res = super::scans::scan_now(
            State(state.clone()),
            Path(zeta_site.clone()),
            form(&auth, serde_json::json!({})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        // Nor with the other tenant's job on its own site.
        let res = super::scans::scan_now(
            State(state.clone()),
            Path(acme.agent.site().to_string()),
            form(&auth, serde_json::json!({ "job": zeta_job.to_string() })),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(scans.asked().is_empty(), "nothing was asked");

        // Another tenant's scans, agent-reported or requested, are not found.
        let requested = ScanId::random();
        c.store
            .record_scan_request(&zeta_scope, zeta.agent.site(), &requested, None, zeta.agent_id)
            .await
            .unwrap();
        for scan in ["zeta-s4".to_owned(), requested.to_string()] {
            let res = super::scans::page(State(state.clone()), PageSession(auth.clone()), Path(scan.clone())).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{scan}");
            let res = super::scans::api(State(state.clone()), ApiSession(auth.clone()), Path(scan.clone())).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{scan}");
        }
        let res = super::scans::api(State(state.clone()), ApiSession(auth.clone()), Path("acme-s4".into())).await;
        assert_eq!(res.status(), StatusCode::OK);

        // On its own site it acts.
        let res = super::jobs::add(
            State(state.clone()),
            Path(acme.agent.site().to_string()),
            form(&auth, job),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let res = super::profile::set(
            State(state.clone()),
            Path(acme.agent.site().to_string()),
            form(&auth, profile),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let res = super::scans::scan_now(
            State(state.clone()),
            Path(acme.agent.site().to_string()),
            form(&auth, serde_json::json!({})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(scans.asked(), [(acme.agent.tenant(), acme.agent.site(), None)]);
    }
}
