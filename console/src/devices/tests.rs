//! The device pages through the router (an administrator's session) and
//! their handlers called with a tenant's session, on SQLite and, when
//! `OUTPOST_TEST_DATABASE_URL` is set, PostgreSQL.
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures::StreamExt;
use outpost_certs::{AgentCertificate, AgentIdentity};
use outpost_store::devices::reports::{
    BackupRow, DeviceReport, InterfaceRow, NeighborRow, PollRow, ReportBody, SystemRow,
};
use outpost_store::devices::{DeviceId, NewDevice};
use outpost_store::ingest::IngestBatch;
use outpost_store::metrics::{DevicePoll, Sample};
use outpost_store::scope::Viewer;
use outpost_store::users::Session;
use outpost_store::{AdminScope, AgentScope, now_ms};
use sqlx::Connection as _;
use tempfile::TempDir;

use crate::session::{ApiSession, Authenticated, PageSession};
use crate::tests::{Console, body, enroll, get_request, hidden_csrf, location, next_event, post_request};

const EXPORT: &str = "/interface wireless security-profiles\n\
set [ find default=yes ] mode=dynamic-keys wpa2-pre-shared-key=\"s3cret psk\"\n\
/ppp secret\n\
add name=branch password=hunter2 service=l2tp\n";
const DIFF: &str =
    "--- a\n+++ b\n@@ -1,1 +1,1 @@\n-add name=branch password=old\n+add name=branch password=hunter2 service=l2tp\n";

/// One console per engine.
pub(crate) async fn consoles() -> Vec<Console> {
    let mut all = vec![Console::on(TempDir::new().unwrap(), None, false).await];
    if let Ok(url) = std::env::var("OUTPOST_TEST_DATABASE_URL") {
        let name = format!("outpost_c_{}", uuid_like());
        let mut admin = sqlx::PgConnection::connect(&url)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let base = url.rsplit_once('/').map(|(b, _)| b).expect("database URL has a path");
        all.push(Console::on(TempDir::new().unwrap(), Some(&format!("{base}/{name}")), false).await);
    }
    all
}

fn uuid_like() -> String {
    DeviceId::random().to_string().replace('-', "")
}

/// A tenant's agent and a polled device of its site, with one backup.
pub(crate) struct Fleet {
    pub(crate) agent: AgentScope,
    pub(crate) device: DeviceId,
}

pub(crate) async fn fleet(c: &Console, tenant: &str) -> Fleet {
    let store = &c.store;
    let site = store.ensure_site(&AdminScope::for_tests(), tenant, "hq").await.unwrap();
    let agent_id = enroll(store, tenant, "hq", &format!("{tenant}-pc")).await;
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
    let device = DeviceId::random();
    let vault = c.state.vault.tenant(&site.tenant.to_string());
    store
        .add_device(
            &agent.tenant_scope(),
            &NewDevice {
                id: device,
                site: site.site,
                address: format!("{tenant}.example"),
                api_port: 8729,
                api_tls: true,
                ssh_port: 22,
                username: "api".into(),
                password_sealed: vault.seal_device_password(&device.to_string(), "pw").unwrap(),
                poll_interval_secs: 60,
            },
            &outpost_store::audit::Actor::local_operator(),
        )
        .await
        .unwrap();
    let key = vault.backup_key(&device.to_string());
    let id = device.to_string();
    let at = now_ms();
    let poll = PollRow {
        system: Some(SystemRow {
            identity: format!("{tenant}-core"),
            version: "7.16.1".into(),
            channel: "stable".into(),
            uptime_secs: 3 * 604_800 + 2 * 86_400 + 4 * 3_600,
            cpu_load: 7,
            free_memory: 768 << 20,
            total_memory: 1 << 30,
            ..SystemRow::default()
        }),
        interfaces: vec![InterfaceRow {
            name: "ether1".into(),
            running: true,
            rx_bps: Some(12_500_000.0),
            tx_bps: Some(1_000.0),
            ..InterfaceRow::default()
        }],
        neighbors: Some(vec![NeighborRow {
            interface: "ether1".into(),
            identity: "isp-gw".into(),
            address: "198.51.100.1".into(),
            ..NeighborRow::default()
        }]),
        ..PollRow::default()
    };
    let backup = BackupRow {
        ros_version: "7.16.1".into(),
        normalized_hmac: "h".into(),
        sealed_export: key
            .seal(&outpost_vault::backup_context(&id), EXPORT.as_bytes())
            .unwrap(),
        sealed_diff: Some(key.seal(&outpost_vault::diff_context(&id), DIFF.as_bytes()).unwrap()),
        lines_added: 1,
        lines_removed: 1,
        trigger: "schedule".into(),
    };
    let report = |seq, body| DeviceReport {
        seq,
        observed_at_ms: at,
        device,
        body,
    };
    store
        .ingest(
            &agent,
            &IngestBatch {
                devices: vec![
                    report(1, ReportBody::Poll(Box::new(poll))),
                    report(2, ReportBody::Backup(backup)),
                ],
                through_seq: 2,
                ..IngestBatch::default()
            },
        )
        .await
        .unwrap();
    let samples = [
        Sample {
            metric: "if_rx_bps",
            subject: "ether1",
            value: 1e6,
        },
        Sample {
            metric: "cpu_load",
            subject: "",
            value: 7.0,
        },
    ];
    store
        .record_samples(
            &agent,
            &[
                DevicePoll {
                    device_id: &id,
                    at_ms: at - 120_000,
                    samples: &samples,
                },
                DevicePoll {
                    device_id: &id,
                    at_ms: at - 60_000,
                    samples: &samples,
                },
            ],
        )
        .await
        .unwrap();
    Fleet { agent, device }
}

/// A tenant user's session, as the session check will hand it out once
/// tenant users can sign in.
fn tenant_session(f: &Fleet) -> Authenticated {
    Authenticated {
        token: "tenant cookie".into(),
        session: Session {
            username: "tenant-user".into(),
            csrf_token: "t".repeat(43),
            viewer: Viewer::Tenant(f.agent.tenant_scope()),
            principal: outpost_store::members::Principal::for_tests(
                "tenant-user",
                false,
                vec![(f.agent.tenant(), outpost_store::members::Role::Admin)],
            ),
            totp_due: false,
        },
        need: outpost_store::members::Role::Viewer,
    }
}

async fn status_and_body(res: axum::response::Response) -> (StatusCode, String) {
    (res.status(), body(res).await)
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_devices() {
    for c in consoles().await {
        let acme = fleet(&c, "acme").await;
        let zeta = fleet(&c, "zeta").await;
        let auth = tenant_session(&acme);
        let state = c.state.clone();

        let (status, html) =
            status_and_body(super::list::page(State(state.clone()), PageSession(auth.clone())).await).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("acme-core") && !html.contains("zeta-core"), "{html}");

        let (status, html) = status_and_body(
            super::page::page(
                State(state.clone()),
                PageSession(auth.clone()),
                Path(acme.device.to_string()),
                Query(Default::default()),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("3w2d4h") && html.contains("12.5 Mbps"), "{html}");

        let res = super::page::page(
            State(state.clone()),
            PageSession(auth.clone()),
            Path(zeta.device.to_string()),
            Query(Default::default()),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        let query =
            |metric: &str| serde_json::from_value(serde_json::json!({ "metric": metric, "range": "1h" })).unwrap();
        let res = super::metrics::api(
            State(state.clone()),
            ApiSession(auth.clone()),
            Path(zeta.device.to_string()),
            Query(query("if_rx_bps")),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = super::metrics::api(
            State(state.clone()),
            ApiSession(auth.clone()),
            Path(acme.device.to_string()),
            Query(query("if_rx_bps")),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);

        let res = super::live::events(
            State(state.clone()),
            ApiSession(auth.clone()),
            Path(zeta.device.to_string()),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        let res = super::config::page(
            State(state.clone()),
            PageSession(auth.clone()),
            Path((zeta.device.to_string(), "1".into())),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        let (_, html) = status_and_body(super::topology::page(State(state.clone()), PageSession(auth)).await).await;
        assert!(
            html.contains("acme-core") && html.contains("isp-gw") && !html.contains("zeta-core"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_device_list_page_and_json_show_every_column() {
    for c in consoles().await {
        let acme = fleet(&c, "acme").await;
        let session = c.session().await;
        let res = c.get("/devices", Some(&session)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        for want in [
            "acme-core",
            "3w2d4h",
            "7%",
            "256 MiB / 1.0 GiB (25%)",
            "7.16.1 (stable)",
            "href=\"/devices/new\"",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(html.contains(&format!("href=\"/devices/{}\"", acme.device)));
        let res = c.get("/api/devices", Some(&session)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
        assert_eq!(json["groups"][0]["devices"][0]["name"], "acme-core");
        assert_eq!(json["groups"][0]["devices"][0]["state"], "pending");
        assert_eq!(c.get("/api/devices", None).await.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn adding_a_device_seals_the_password_and_names_a_bad_field() {
    for c in consoles().await {
        let acme = fleet(&c, "acme").await;
        let session = c.session().await;
        let res = c.get("/devices/new", Some(&session)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        let csrf = hidden_csrf(&html);
        let site = acme.agent.site().to_string();
        assert!(html.contains(&site));
        let form = |address: &'static str, csrf: &str| {
            let site = site.clone();
            let csrf = csrf.to_owned();
            move |cookie: &str| {
                post_request(
                    "/devices",
                    Some(cookie),
                    &[
                        ("csrf", &csrf),
                        ("site", &site),
                        ("address", address),
                        ("api_port", "8729"),
                        ("api_tls", "on"),
                        ("ssh_port", "22"),
                        ("username", "api"),
                        ("password", "Very-Secret-Pw-42"),
                        ("interval", "60"),
                    ],
                )
            }
        };

        let res = c.send(form("10.0.0.1 bad", &csrf)(&session)).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = body(res).await;
        assert!(html.contains("data-field=\"address\""), "{html}");
        assert!(
            html.contains("address &#34;10.0.0.1 bad&#34; is not an IP address or host name"),
            "{html}"
        );
        assert!(!html.contains("Very-Secret-Pw-42"), "the password is never echoed");

        let res = c.send(form("192.0.2.7", "wrong")(&session)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        let res = c.send(form("192.0.2.7", &csrf)(&session)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let id: DeviceId = location(&res).trim_start_matches("/devices/").parse().unwrap();
        let devices = c
            .store
            .list_devices(&Viewer::Tenant(acme.agent.tenant_scope()))
            .await
            .unwrap();
        assert!(
            devices
                .iter()
                .any(|d| d.id == id && d.address == "192.0.2.7" && d.api_tls)
        );
        c.store.claim_devices(&acme.agent).await.unwrap();
        let assigned = c.store.assigned_devices(&acme.agent).await.unwrap();
        let row = assigned
            .iter()
            .find(|d| d.id == id)
            .expect("assigned to the site's agent");
        assert!(
            !row.password_sealed.windows(17).any(|w| w == b"Very-Secret-Pw-42"),
            "stored sealed"
        );
        let opened = c
            .state
            .vault
            .tenant(&acme.agent.tenant().to_string())
            .open_device_password(&id.to_string(), &row.password_sealed)
            .unwrap();
        assert_eq!(opened.as_str(), "Very-Secret-Pw-42");

        // Delete needs the token too.
        let res = c
            .send(post_request(
                &format!("/devices/{id}/delete"),
                Some(&session),
                &[("csrf", "x")],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = c
            .send(post_request(
                &format!("/devices/{id}/delete"),
                Some(&session),
                &[("csrf", &csrf)],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            c.get(&format!("/devices/{id}"), Some(&session)).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn configuration_secrets_are_masked_until_revealed_and_revealing_is_recorded() {
    for c in consoles().await {
        let acme = fleet(&c, "acme").await;
        let session = c.session().await;
        let html = body(c.get(&format!("/devices/{}", acme.device), Some(&session)).await).await;
        let marker = format!("/devices/{}/config/", acme.device);
        let start = html.find(&marker).expect("a version link") + marker.len();
        let taken: String = html[start..].chars().take_while(char::is_ascii_digit).collect();
        let path = format!("{marker}{taken}");

        let res = c.get(&path, Some(&session)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        assert!(
            !html.contains("hunter2") && !html.contains("s3cret") && !html.contains("password=old"),
            "{html}"
        );
        assert!(
            html.contains("password=********") && html.contains("wpa2-pre-shared-key=********"),
            "{html}"
        );
        assert!(html.contains("class=\"added\""), "{html}");
        let csrf = hidden_csrf(&html);

        let res = c
            .send(post_request(&format!("{path}/reveal"), Some(&session), &[]))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = c
            .send(post_request(
                &format!("{path}/reveal"),
                Some(&session),
                &[("csrf", &csrf)],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        assert!(
            html.contains("password=hunter2") && html.contains("s3cret psk"),
            "{html}"
        );

        let details = c
            .store
            .device_details(&Viewer::Tenant(acme.agent.tenant_scope()), acme.device)
            .await
            .unwrap();
        let event = details
            .events
            .iter()
            .find(|e| e.kind == "config_revealed")
            .expect("recorded");
        assert!(event.detail.starts_with("admin revealed"), "{event:?}");
    }
}

#[tokio::test]
async fn the_metrics_api_returns_points() {
    for c in consoles().await {
        let acme = fleet(&c, "acme").await;
        let session = c.session().await;
        let url = format!("/api/devices/{}/metrics?metric=if_rx_bps&range=1h", acme.device);
        let res = c.get(&url, Some(&session)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
        assert_eq!(json["series"][0]["subject"], "ether1");
        let points = json["series"][0]["points"].as_array().unwrap();
        // Two samples recorded directly, then the poll's own rate.
        assert_eq!(points.len(), 3, "{json}");
        assert_eq!(points[0][1], 1e6);
        assert_eq!(points[2][1], 12.5e6);

        let url = format!("/api/devices/{}/metrics?metric=cpu_load&range=30d", acme.device);
        assert_eq!(c.get(&url, Some(&session)).await.status(), StatusCode::OK);
        let url = format!("/api/devices/{}/metrics?metric=nope&range=1h", acme.device);
        assert_eq!(c.get(&url, Some(&session)).await.status(), StatusCode::BAD_REQUEST);
        let url = format!("/api/devices/{}/metrics?metric=cpu_load&range=2y", acme.device);
        assert_eq!(c.get(&url, Some(&session)).await.status(), StatusCode::BAD_REQUEST);
        let url = format!("/api/devices/{}/metrics?metric=cpu_load&range=1h", DeviceId::random());
        assert_eq!(c.get(&url, Some(&session)).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(c.get(&url, None).await.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_live_stream_says_why_when_there_is_no_live_traffic() {
    let c = Console::on(TempDir::new().unwrap(), None, false).await;
    let acme = fleet(&c, "acme").await;
    let session = c.session().await;
    let res = c
        .send(get_request(&format!("/devices/{}/live", acme.device), Some(&session)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.into_body().into_data_stream();
    let mut buf = String::new();
    let event = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("an event");
    assert!(event.starts_with("event: unavailable\n"), "{event}");
    assert!(event.contains("not available"), "{event}");
    assert!(stream.next().await.is_none(), "then the stream ends");
}

#[tokio::test]
async fn every_device_page_has_the_security_headers_and_forms_carry_the_token() {
    let c = Console::on(TempDir::new().unwrap(), None, false).await;
    let acme = fleet(&c, "acme").await;
    let session = c.session().await;
    let csrf = hidden_csrf(&body(c.get("/devices/new", Some(&session)).await).await);
    let html = body(c.get(&format!("/devices/{}", acme.device), Some(&session)).await).await;
    let start = html.find("/config/").unwrap() + "/config/".len();
    let taken: String = html[start..].chars().take_while(char::is_ascii_digit).collect();
    for path in [
        "/devices".to_owned(),
        "/devices/new".to_owned(),
        "/topology".to_owned(),
        "/api/devices".to_owned(),
        format!("/devices/{}", acme.device),
        format!("/devices/{}/config/{taken}", acme.device),
        format!("/api/devices/{}/metrics?metric=cpu_load&range=1h", acme.device),
        "/assets/uplot.js".to_owned(),
        "/assets/uplot.css".to_owned(),
    ] {
        let res = c.get(&path, Some(&session)).await;
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
        let html = body(res).await;
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "{path}: no inline script or style"
        );
        // Every form of these pages posts the session's token.
        let forms = html.matches("<form").count();
        assert_eq!(
            html.matches(&format!("name=\"csrf\" value=\"{csrf}\"")).count(),
            forms,
            "{path}"
        );
    }
    // Signed out, pages redirect and data is refused.
    assert_eq!(c.get("/devices", None).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.get("/topology", None).await.status(), StatusCode::SEE_OTHER);
    let live = format!("/devices/{}/live", acme.device);
    assert_eq!(c.get(&live, None).await.status(), StatusCode::UNAUTHORIZED);
}

/// Records the backups asked for.
#[derive(Debug, Default)]
struct Requests(std::sync::Mutex<Vec<(String, DeviceId)>>);

impl crate::agent_control::AgentControl for Requests {
    fn watch(&self, _scope: outpost_store::TenantScope, _device: DeviceId) -> crate::agent_control::WatchFuture<'_> {
        Box::pin(async { Err("not in this test".to_owned()) })
    }

    fn backup_now(
        &self,
        scope: outpost_store::TenantScope,
        device: DeviceId,
    ) -> crate::agent_control::RequestFuture<'_> {
        self.0.lock().unwrap().push((scope.tenant().to_string(), device));
        Box::pin(async { Ok(()) })
    }

    fn scan_now(
        &self,
        _scope: outpost_store::TenantScope,
        _site: outpost_certs::SiteId,
        _job: Option<outpost_store::inventory::JobId>,
    ) -> crate::agent_control::ScanFuture<'_> {
        Box::pin(async { Err("not in this test".to_owned()) })
    }

    fn scan_progress(
        &self,
        _scope: &outpost_store::TenantScope,
        _scan: &outpost_store::inventory::ScanId,
    ) -> Option<crate::agent_control::ScanProgress> {
        None
    }
}

#[tokio::test]
async fn back_up_now_asks_the_agent_of_the_device_and_says_why_when_it_cannot() {
    let c = Console::on(TempDir::new().unwrap(), None, false).await;
    let acme = fleet(&c, "acme").await;
    let session = c.session().await;
    let csrf = hidden_csrf(&body(c.get("/devices/new", Some(&session)).await).await);
    let path = format!("/devices/{}/backup", acme.device);

    // No agent reachable: the reason, not a silent redirect.
    let (status, html) = status_and_body(c.send(post_request(&path, Some(&session), &[("csrf", &csrf)])).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(html.contains("no agent is reachable"), "{html}");

    let requests = std::sync::Arc::new(Requests::default());
    let c = c.with_agents(requests.clone());
    let res = c.send(post_request(&path, Some(&session), &[("csrf", "forged")])).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a forged token asks nothing");
    let res = c.send(post_request(&path, None, &[("csrf", &csrf)])).await;
    assert!(
        res.headers().get("location").is_none_or(|l| l == "/login"),
        "signed out: {:?}",
        res.headers()
    );
    assert!(requests.0.lock().unwrap().is_empty());
    let unknown = format!("/devices/{}/backup", DeviceId::random());
    let res = c.send(post_request(&unknown, Some(&session), &[("csrf", &csrf)])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = c.send(post_request(&path, Some(&session), &[("csrf", &csrf)])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, format!("/devices/{}?backup=requested#config", acme.device));
    let asked = requests.0.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![(acme.agent.tenant().to_string(), acme.device)],
        "the device's own tenant"
    );
    let html = body(c.get(to.trim_end_matches("#config"), Some(&session)).await).await;
    assert!(html.contains("id=\"backup-notice\""), "{html}");
}
