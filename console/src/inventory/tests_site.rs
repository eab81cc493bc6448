//! A site's discovery page through the router (an administrator's session),
//! on SQLite and, when `OUTPOST_TEST_DATABASE_URL` is set, PostgreSQL:
//! discovery jobs with a sealed SNMP community, the credential profile,
//! "scan now" through a recording `AgentControl`, the scan's page and its
//! progress JSON.
use axum::http::StatusCode;
use outpost_certs::SiteId;
use outpost_proto::agent_v1::{DiscoveryJob, snmp_credential};
use outpost_store::inventory::addr::parse_targets;
use outpost_store::inventory::records::{DiscoveryBody, DiscoveryReport, HostsChunk, ScanFinishedRow};
use outpost_store::inventory::{JobId, ScanId};
use outpost_store::now_ms;
use outpost_store::scope::Viewer;
use prost::Message as _;

use super::test_seed::{Scans, admin_csrf, seed};
use crate::agent_control::ScanProgress;
use crate::devices::tests::consoles;
use crate::tests::{body, location, post_request};

fn job_fields<'a>(csrf: &'a str, targets: &'a str, interval: &'a str, community: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("targets", targets),
        ("ports", "22,80,8728-8729"),
        ("rate", "500"),
        ("interval", interval),
        ("community", community),
    ]
}

#[tokio::test]
async fn jobs_are_added_with_a_sealed_community_refused_by_field_and_deleted() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let csrf = admin_csrf(&c, &cookie).await;
        let site = acme.agent.site();
        let page = format!("/inventory/sites/{site}");
        let res = c.get(&page, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = body(res).await;
        assert!(
            html.contains("Discovery at acme / hq") && html.contains("No jobs"),
            "{html}"
        );
        let add = format!("{page}/jobs");

        for (targets, interval, community, field, words) in [
            (
                "10.0.0.0/8",
                "3600",
                "n0t-public",
                "targets",
                "16777214 addresses, more than the 4096 an agent scans",
            ),
            (
                "10.0.0.0/20, 10.0.16.0/30, 10.0.17.1",
                "3600",
                "n0t-public",
                "targets",
                "4097 addresses, more than the 4096 an agent scans",
            ),
            ("10.0.0.0/33", "3600", "n0t-public", "targets", "prefix length"),
            ("10.0.0.0/24", "5", "n0t-public", "interval", "interval must be 0"),
            (
                "10.0.0.0/24",
                "hourly",
                "n0t-public",
                "interval",
                "interval must be a whole number",
            ),
            ("10.0.0.0/24", "3600", "bad\ncommunity", "community", "printable"),
        ] {
            let res = c
                .send(post_request(
                    &add,
                    Some(&cookie),
                    &job_fields(&csrf, targets, interval, community),
                ))
                .await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{targets} {interval}");
            let html = body(res).await;
            assert!(html.contains(&format!("data-field=\"{field}\"")), "{field}: {html}");
            assert!(html.contains(words), "{words}: {html}");
            assert!(html.contains(&format!("value=\"{targets}\"")), "the values come back");
            assert!(
                !html.contains("n0t-public") && !html.contains("bad\ncommunity"),
                "never the community"
            );
        }
        let res = c
            .send(post_request(
                &add,
                Some(&cookie),
                &job_fields("forged", "10.0.0.0/24", "3600", ""),
            ))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(c.store.assigned_discovery_jobs(&acme.agent).await.unwrap().is_empty());

        let res = c
            .send(post_request(
                &add,
                Some(&cookie),
                &job_fields(&csrf, "10.0.0.0/24, 10.0.1.7", "3600", "n0t-public"),
            ))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), format!("{page}?done=job-added#jobs"));
        let jobs = c.store.assigned_discovery_jobs(&acme.agent).await.unwrap();
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(
            (job.ports.to_string(), job.rate_pps, job.interval_secs),
            ("22,80,8728-8729".to_owned(), 500, 3600)
        );
        // Sealed for this job, in the carrier the agent port opens.
        let sealed = job.snmp_sealed.as_deref().expect("sealed community");
        assert!(!sealed.windows(10).any(|w| w == b"n0t-public"));
        let opened = c
            .state
            .vault
            .tenant(&acme.agent.tenant().to_string())
            .open_discovery_credentials(&job.id.to_string(), sealed)
            .unwrap();
        let carrier = DiscoveryJob::decode(opened.as_slice()).unwrap();
        assert!(matches!(
            &carrier.snmp[0].kind,
            Some(snmp_credential::Kind::Community(c)) if c == "n0t-public"
        ));
        let html = body(c.get(&format!("{page}?done=job-added"), Some(&cookie)).await).await;
        assert!(
            html.contains("id=\"notice\"") && html.contains("Discovery job added"),
            "{html}"
        );
        for want in [
            "10.0.0.0/24, 10.0.1.7",
            "22,80,8728-8729",
            "500 probes/s",
            "every 1h",
            "1 community",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(html.contains(&format!("<option value=\"{}\">Job: 10.0.0.0/24, 10.0.1.7", job.id)));
        // Without a community the job has no SNMP credentials at all.
        let res = c
            .send(post_request(
                &add,
                Some(&cookie),
                &job_fields(&csrf, "192.0.2.0/28", "0", ""),
            ))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let listed = c
            .store
            .list_discovery_jobs(&Viewer::Tenant(acme.agent.tenant_scope()), Some(site))
            .await
            .unwrap();
        let bare = listed.iter().find(|j| j.interval_secs == 0).expect("second job");
        assert!(bare.snmp_summary.is_empty());

        let delete = format!("/inventory/jobs/{}/delete", job.id);
        let res = c
            .send(post_request(&delete, Some(&cookie), &[("csrf", "forged")]))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = c.send(post_request(&delete, Some(&cookie), &[("csrf", &csrf)])).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), format!("{page}?done=job-deleted#jobs"));
        assert_eq!(c.store.assigned_discovery_jobs(&acme.agent).await.unwrap().len(), 1);
        for gone in [
            delete,
            format!("/inventory/jobs/{}/delete", JobId::random()),
            "/inventory/jobs/x/delete".into(),
        ] {
            let res = c.send(post_request(&gone, Some(&cookie), &[("csrf", &csrf)])).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{gone}");
        }
        let res = c
            .send(post_request(
                &format!("/inventory/sites/{}/jobs", SiteId::random()),
                Some(&cookie),
                &job_fields(&csrf, "10.0.0.0/24", "0", ""),
            ))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_job_with_an_snmpv3_user_is_sealed_for_the_agent_and_its_passwords_never_shown() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let csrf = admin_csrf(&c, &cookie).await;
        let page = format!("/inventory/sites/{}", acme.agent.site());
        let html = body(c.get(&page, Some(&cookie)).await).await;
        for want in [
            "name=\"v3_user\"",
            "<option value=\"sha1\" selected>SHA-1</option>",
            "<option value=\"aes256\">AES-256</option>",
            "name=\"v3_priv_password\" type=\"password\"",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        let add = format!("{page}/jobs");
        let fields = |auth_password: &'static str, privacy: &'static str| {
            let mut f = job_fields(&csrf, "10.0.0.0/24", "3600", "");
            f.extend([
                ("v3_user", "outpost"),
                ("v3_auth", "sha256"),
                ("v3_auth_password", auth_password),
                ("v3_priv", privacy),
                ("v3_priv_password", "pr1v-secret"),
            ]);
            f
        };
        for (auth_password, privacy, field, words) in [
            ("short", "aes256", "v3_auth_password", "8 to 128 printable characters"),
            ("auth-s3cret", "rc4", "v3_priv", "unknown SNMPv3 privacy protocol"),
        ] {
            let res = c
                .send(post_request(&add, Some(&cookie), &fields(auth_password, privacy)))
                .await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let html = body(res).await;
            assert!(html.contains(&format!("data-field=\"{field}\"")), "{field}: {html}");
            assert!(html.contains(words), "{words}: {html}");
            assert!(html.contains("value=\"outpost\""), "the user comes back");
            assert!(
                !html.contains("auth-s3cret") && !html.contains("pr1v-secret") && !html.contains("value=\"short\""),
                "never a password"
            );
        }
        assert!(c.store.assigned_discovery_jobs(&acme.agent).await.unwrap().is_empty());

        let res = c
            .send(post_request(&add, Some(&cookie), &fields("auth-s3cret", "aes256")))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let jobs = c.store.assigned_discovery_jobs(&acme.agent).await.unwrap();
        let sealed = jobs[0].snmp_sealed.as_deref().expect("sealed credentials");
        assert!(!sealed.windows(11).any(|w| w == b"auth-s3cret"));
        let opened = c
            .state
            .vault
            .tenant(&acme.agent.tenant().to_string())
            .open_discovery_credentials(&jobs[0].id.to_string(), sealed)
            .unwrap();
        let carrier = DiscoveryJob::decode(opened.as_slice()).unwrap();
        let Some(snmp_credential::Kind::V3(u)) = &carrier.snmp[0].kind else {
            panic!("{:?}", carrier.snmp)
        };
        assert_eq!(
            (
                u.user.as_str(),
                u.auth_protocol.as_str(),
                u.auth_password.as_str(),
                u.priv_protocol.as_str(),
                u.priv_password.as_str()
            ),
            ("outpost", "sha256", "auth-s3cret", "aes256", "pr1v-secret")
        );
        let html = body(c.get(&page, Some(&cookie)).await).await;
        assert!(html.contains("1 v3 user outpost"), "{html}");
        assert!(!html.contains("auth-s3cret") && !html.contains("pr1v-secret"));
    }
}

#[tokio::test]
async fn the_credential_profile_is_refused_by_field_and_its_password_never_shown() {
    for c in consoles().await {
        let acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let csrf = admin_csrf(&c, &cookie).await;
        let page = format!("/inventory/sites/{}", acme.agent.site());
        let set = format!("{page}/profile");
        let html = body(c.get(&page, Some(&cookie)).await).await;
        assert!(html.contains("No profile yet"), "{html}");

        for (user, password, field) in [
            ("", "Secret-Profile-Pw", "username"),
            ("tab\tname", "Secret-Profile-Pw", "username"),
            ("outpost", "", "password"),
        ] {
            let res = c
                .send(post_request(
                    &set,
                    Some(&cookie),
                    &[("csrf", &csrf), ("username", user), ("password", password)],
                ))
                .await;
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{user:?}");
            let html = body(res).await;
            assert!(html.contains(&format!("data-field=\"{field}\"")), "{html}");
            assert!(!html.contains("Secret-Profile-Pw"));
        }
        let res = c
            .send(post_request(
                &set,
                Some(&cookie),
                &[("username", "outpost"), ("password", "pw")],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = c
            .send(post_request(
                &set,
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("username", "outpost"),
                    ("password", "Secret-Profile-Pw"),
                ],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), format!("{page}?done=profile-saved#profile"));
        let html = body(c.get(location(&res).trim_end_matches("#profile"), Some(&cookie)).await).await;
        assert!(html.contains("Credential profile saved"), "{html}");
        assert!(
            html.contains("Routers are adopted as <strong>outpost</strong>"),
            "{html}"
        );
        assert!(
            html.contains("name=\"username\" value=\"outpost\""),
            "the form shows the user"
        );
        assert!(!html.contains("Secret-Profile-Pw"), "never the password");
        let profile = c
            .store
            .site_credential(&acme.agent.tenant_scope(), acme.agent.site())
            .await
            .unwrap()
            .expect("set");
        assert_eq!(profile.username, "outpost");
        // (That the password was sealed for the site and opens for an adopted
        // device is checked by adopting: `tests::adopting_a_router_…`.)
    }
}

#[tokio::test]
async fn scan_now_asks_an_agent_of_the_site_and_the_scan_page_follows_it() {
    for c in consoles().await {
        let mut acme = seed(&c, "acme").await;
        let cookie = c.session().await;
        let csrf = admin_csrf(&c, &cookie).await;
        let site = acme.agent.site();
        let path = format!("/inventory/sites/{site}/scan");

        // No agent reachable: the reason, not a silent redirect.
        let res = c.send(post_request(&path, Some(&cookie), &[("csrf", &csrf)])).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(res).await.contains("no agent is reachable"));

        let scans = Scans::new(&c, &acme);
        let c = c.with_agents(scans.clone());
        let res = c.send(post_request(&path, Some(&cookie), &[("csrf", "forged")])).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "a forged token asks nothing");
        let res = c.send(post_request(&path, None, &[("csrf", &csrf)])).await;
        assert_eq!(location(&res), "/login");
        for job in [JobId::random().to_string(), "not-a-job".into()] {
            let res = c
                .send(post_request(&path, Some(&cookie), &[("csrf", &csrf), ("job", &job)]))
                .await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{job}");
        }
        let res = c
            .send(post_request(
                &format!("/inventory/sites/{}/scan", SiteId::random()),
                Some(&cookie),
                &[("csrf", &csrf)],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(scans.asked().is_empty());

        // A job of the site.
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
        let job = c.store.assigned_discovery_jobs(&acme.agent).await.unwrap()[0].id;
        let res = c
            .send(post_request(
                &path,
                Some(&cookie),
                &[("csrf", &csrf), ("job", &job.to_string())],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = location(&res).to_owned();
        let scan: ScanId = to
            .strip_prefix("/inventory/scans/")
            .expect("the scan's page")
            .parse()
            .unwrap();
        assert_eq!(
            scans.asked(),
            vec![(acme.agent.tenant(), site, Some(job))],
            "the site's own tenant"
        );

        // Asked, nothing reported yet.
        let html = body(c.get(&to, Some(&cookie)).await).await;
        assert!(
            html.contains("data-running=\"true\"") && html.contains("waiting for the agent"),
            "{html}"
        );
        assert!(html.contains("<dt>What</dt><dd>10.0.0.0/24</dd>"), "{html}");
        let api = format!("/api/scans/{scan}");
        let json: serde_json::Value = serde_json::from_str(&body(c.get(&api, Some(&cookie)).await).await).unwrap();
        assert_eq!(
            (json["state"].as_str(), json["running"].as_bool()),
            (Some("requested"), Some(true))
        );
        assert!(json["progress"].is_null());

        // The agent reports progress, then hosts: running.
        *scans.progress.lock().unwrap() = Some(ScanProgress {
            phase: "tcp".into(),
            done: 100,
            total: 254,
            hosts_found: 3,
            updated_at_ms: now_ms(),
        });
        let seq = acme.next_seq();
        let chunk = DiscoveryReport {
            seq,
            observed_at_ms: now_ms(),
            body: DiscoveryBody::Hosts(HostsChunk {
                scan_id: scan.clone(),
                job_id: job.to_string(),
                scanned_ports: vec![22],
                hosts: Vec::new(),
            }),
        };
        acme.ingest(&c, vec![chunk]).await;
        let json: serde_json::Value = serde_json::from_str(&body(c.get(&api, Some(&cookie)).await).await).unwrap();
        assert_eq!(json["state"], "running", "{json}");
        assert_eq!(json["progress"]["phase"], "tcp");
        assert_eq!(
            (json["progress"]["done"].as_u64(), json["progress"]["total"].as_u64()),
            (Some(100), Some(254))
        );
        assert_eq!(json["progress"]["hosts_found"], 3);
        let html = body(c.get(&to, Some(&cookie)).await).await;
        assert!(
            html.contains("<progress id=\"scan-bar\" max=\"254\" value=\"100\">"),
            "{html}"
        );
        let site_page = body(c.get(&format!("/inventory/sites/{site}"), Some(&cookie)).await).await;
        assert!(site_page.contains("tcp 100/254, 3 hosts found"), "{site_page}");

        // Finished: the summary from the scans table, progress no longer asked.
        let seq = acme.next_seq();
        let end = DiscoveryReport {
            seq,
            observed_at_ms: now_ms(),
            body: DiscoveryBody::Finished(ScanFinishedRow {
                scan_id: scan.clone(),
                job_id: job.to_string(),
                source: "scan".into(),
                targets: parse_targets("10.0.0.0/24").unwrap(),
                started_ms: now_ms() - 4_000,
                finished_ms: now_ms(),
                addresses: 254,
                hosts_found: 3,
                partial: false,
                warnings: vec!["no permission to send echo requests; TCP only".into()],
                icmp: "none".into(),
                probes_sent: 762,
            }),
        };
        acme.ingest(&c, vec![end]).await;
        let json: serde_json::Value = serde_json::from_str(&body(c.get(&api, Some(&cookie)).await).await).unwrap();
        assert_eq!(
            (json["state"].as_str(), json["running"].as_bool()),
            (Some("finished"), Some(false))
        );
        assert!(json["progress"].is_null(), "{json}");
        assert_eq!(
            (json["hosts_found"].as_i64(), json["probes_sent"].as_i64()),
            (Some(3), Some(762))
        );
        assert_eq!(json["warnings"][0], "no permission to send echo requests; TCP only");
        let html = body(c.get(&to, Some(&cookie)).await).await;
        assert!(
            html.contains("id=\"scan-summary\"") && !html.contains("id=\"scan-progress\""),
            "{html}"
        );
        for want in [
            "data-field=\"hosts_found\">3<",
            "762",
            "TCP only",
            "none (no permission",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }

        for missing in ["/api/scans/no-such-scan", "/api/scans/bad%20id"] {
            let res = c.get(missing, Some(&cookie)).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{missing}");
        }
        assert_eq!(
            c.get("/inventory/scans/no-such-scan", Some(&cookie)).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(c.get(&api, None).await.status(), StatusCode::UNAUTHORIZED);
    }
}
