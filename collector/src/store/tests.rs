//! The store suite, run against every engine: SQLite always, PostgreSQL when
//! `OUTPOST_TEST_DATABASE_URL` is set (and required when
//! `OUTPOST_REQUIRE_POSTGRES=1`, as the project's test command sets it).
use std::time::Duration;

use outpost_certs::ca::{CertificateAuthority, IssuedCertificate, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentIdentity, TenantId};
use sqlx::Connection as _;

use super::ingest::{HostFactsRow, IngestBatch, MetricRow};
use super::scope::Viewer;
use super::tokens::EnrollError;
use super::*;

/// A throwaway store per engine. Keeps the SQLite directory alive.
struct Engines {
    stores: Vec<Store>,
    _dir: tempfile::TempDir,
}

async fn engines() -> Engines {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stores = vec![Store::open(dir.path(), None).await.expect("sqlite store")];
    match std::env::var("OUTPOST_TEST_DATABASE_URL") {
        Ok(url) => stores.push(fresh_postgres(&url).await),
        Err(_) if std::env::var("OUTPOST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("OUTPOST_REQUIRE_POSTGRES=1 but OUTPOST_TEST_DATABASE_URL is not set")
        }
        Err(_) => eprintln!("OUTPOST_TEST_DATABASE_URL not set: store suite runs on SQLite only"),
    }
    Engines { stores, _dir: dir }
}

/// A new, empty database on the test server, so tests never see each other's rows.
async fn fresh_postgres(url: &str) -> Store {
    let name = format!("outpost_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.ok();
    let base = url.rsplit_once('/').map(|(b, _)| b).expect("database URL has a path");
    Store::open(std::path::Path::new("."), Some(&format!("{base}/{name}")))
        .await
        .expect("postgres store")
}

fn sign_with(ca: &CertificateAuthority) -> impl FnOnce(&AgentIdentity) -> Result<IssuedCertificate, String> + '_ {
    move |id| {
        let req = generate_key_and_csr("test").map_err(|e| e.to_string())?;
        ca.sign_agent_csr(&req.csr_der, id, Validity::starting_now(Duration::from_secs(3600)))
            .map_err(|e| e.to_string())
    }
}

async fn enrolled_agent(store: &Store, ca: &CertificateAuthority, tenant: &str, site: &str) -> AgentScope {
    let admin = AdminScope::verified();
    let s = store.ensure_site(&admin, tenant, site).await.expect("site");
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(&admin, &s, &token, Duration::from_secs(60))
        .await
        .expect("token");
    let e = store
        .enroll(&token, "host", "1.0", sign_with(ca))
        .await
        .expect("enroll");
    AgentScope::verified(e.identity)
}

fn metrics(seqs: std::ops::RangeInclusive<i64>) -> IngestBatch {
    IngestBatch {
        metrics: seqs
            .clone()
            .map(|seq| MetricRow {
                seq,
                observed_at_ms: 1,
                name: "m".into(),
                subject: String::new(),
                value: seq as f64,
            })
            .collect(),
        host_facts: vec![],
        through_seq: *seqs.end(),
        outbox_depth: 0,
    }
}

async fn count(store: &Store, table: &str, tenant: TenantId) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    let (n,): (i64,) = on_pool!(store, pool, _Db => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.to_string()).fetch_one(pool).await.expect("count")
    });
    n
}

#[tokio::test]
async fn sites_are_created_once() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        let a = store.ensure_site(&admin, "acme", "hq").await.expect("first");
        assert!(a.tenant_created && a.site_created, "{store:?}");
        let b = store.ensure_site(&admin, "acme", "hq").await.expect("second");
        assert!(!b.tenant_created && !b.site_created, "{store:?}");
        assert_eq!((a.tenant, a.site), (b.tenant, b.site));
        let c = store.ensure_site(&admin, "acme", "branch").await.expect("third");
        assert!(!c.tenant_created && c.site_created);
        let sites = store.sites(&Viewer::Admin(admin)).await.expect("sites");
        assert_eq!(
            sites.iter().map(|s| s.site_name.as_str()).collect::<Vec<_>>(),
            vec!["branch", "hq"]
        );
    }
}

#[tokio::test]
async fn tokens_are_single_use_expiring_and_site_bound() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let site = store.ensure_site(&admin, "acme", "hq").await.expect("site");

        let token = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &site, &token, Duration::from_secs(60))
            .await
            .expect("token");
        store.enroll(&token, "h", "1", sign_with(&ca)).await.expect("first use");
        let again = store.enroll(&token, "h", "1", sign_with(&ca)).await;
        assert!(matches!(again, Err(EnrollError::AlreadyUsed)), "{store:?}: {again:?}");

        let forged = EnrollmentToken::generate(ca.fingerprint());
        let unknown = store.enroll(&forged, "h", "1", sign_with(&ca)).await;
        assert!(matches!(unknown, Err(EnrollError::UnknownToken)), "{unknown:?}");

        let expiring = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &site, &expiring, Duration::from_millis(1))
            .await
            .expect("token");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let expired = store.enroll(&expiring, "h", "1", sign_with(&ca)).await;
        assert!(matches!(expired, Err(EnrollError::Expired)), "{expired:?}");

        let doomed = store.ensure_site(&admin, "acme", "closing").await.expect("site");
        let orphan = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &doomed, &orphan, Duration::from_secs(60))
            .await
            .expect("token");
        store.delete_site(&admin, "acme", "closing").await.expect("delete");
        let deleted = store.enroll(&orphan, "h", "1", sign_with(&ca)).await;
        assert!(matches!(deleted, Err(EnrollError::SiteDeleted)), "{deleted:?}");

        // A failed signature leaves the token unused.
        let fragile = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &site, &fragile, Duration::from_secs(60))
            .await
            .expect("token");
        let bad = store.enroll(&fragile, "h", "1", |_| Err("bad CSR".into())).await;
        assert!(matches!(bad, Err(EnrollError::Certificate(_))));
        store
            .enroll(&fragile, "h", "1", sign_with(&ca))
            .await
            .expect("token still usable");
    }
}

#[tokio::test]
async fn ingest_is_idempotent_per_agent_and_sequence() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let agent = enrolled_agent(store, &ca, "acme", "hq").await;
        let first = store.ingest(&agent, &metrics(1..=100)).await.expect("ingest");
        assert_eq!(first.inserted, 100);
        assert_eq!(first.acked_seq, 100);
        let resent = store.ingest(&agent, &metrics(50..=150)).await.expect("resend");
        assert_eq!(resent.inserted, 50, "{store:?}");
        assert_eq!(resent.acked_seq, 150);
        // An old batch does not move the high-water mark back.
        let old = store.ingest(&agent, &metrics(1..=10)).await.expect("old");
        assert_eq!((old.inserted, old.acked_seq), (0, 150));
        assert_eq!(count(store, "metric_samples", agent.tenant()).await, 150);

        let facts = IngestBatch {
            host_facts: vec![HostFactsRow {
                seq: 151,
                observed_at_ms: 5,
                hostname: "edge-1".into(),
                os: "Debian GNU/Linux".into(),
                os_version: "12".into(),
                kernel: "6.1".into(),
                arch: "x86_64".into(),
                addresses: "10.0.0.2/eth0".into(),
                agent_version: "9.9.9".into(),
                outbox_depth: 3,
                uptime_seconds: 10,
            }],
            through_seq: 151,
            outbox_depth: 3,
            ..Default::default()
        };
        store.ingest(&agent, &facts).await.expect("facts");
        store.ingest(&agent, &facts).await.expect("facts again");
        assert_eq!(count(store, "host_facts", agent.tenant()).await, 1);
        let rows = store
            .list_agents(&Viewer::Tenant(agent.tenant_scope()))
            .await
            .expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].hostname, "edge-1");
        assert_eq!(rows[0].version, "9.9.9");
        assert_eq!(rows[0].outbox_depth, 3);
        assert_eq!(rows[0].acked_seq, 151);
    }
}

#[tokio::test]
async fn tenants_do_not_see_each_other() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let a = enrolled_agent(store, &ca, "alpha", "a1").await;
        let b = enrolled_agent(store, &ca, "beta", "b1").await;
        store.ingest(&a, &metrics(1..=5)).await.expect("ingest a");
        let seen_by_b = store
            .list_agents(&Viewer::Tenant(b.tenant_scope()))
            .await
            .expect("list");
        assert_eq!(seen_by_b.iter().map(|r| r.agent).collect::<Vec<_>>(), vec![b.agent()]);
        let sites_b = store.sites(&Viewer::Tenant(b.tenant_scope())).await.expect("sites");
        assert!(sites_b.iter().all(|s| s.tenant == b.tenant()));
        assert_eq!(count(store, "metric_samples", b.tenant()).await, 0);
        let all = store
            .list_agents(&Viewer::Admin(AdminScope::verified()))
            .await
            .expect("all");
        assert_eq!(all.len(), 2);
        // A scope whose site does not match the record cannot open a session.
        let forged = AgentScope::verified(AgentIdentity {
            site: b.site(),
            ..*a.identity()
        });
        assert!(matches!(
            store.agent_connected(&forged, "1", 0).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn revoked_agents_cannot_connect() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let a = enrolled_agent(store, &ca, "acme", "hq").await;
        let admin = AdminScope::verified();
        let start = store.agent_connected(&a, "1.0", 7).await.expect("connect");
        assert_eq!(start.acked_seq, 0);
        let rows = store.list_agents(&Viewer::Admin(admin)).await.expect("list");
        assert!(rows[0].online);
        // A reconnect overtakes the old stream's teardown: still online.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newer = store.agent_connected(&a, "1.0", 7).await.expect("reconnect");
        store.agent_disconnected(&a, &start).await.expect("old stream ends");
        assert!(store.list_agents(&Viewer::Admin(admin)).await.expect("list")[0].online);
        store.agent_disconnected(&a, &newer).await.expect("new stream ends");
        assert!(!store.list_agents(&Viewer::Admin(admin)).await.expect("list")[0].online);
        assert!(store.revoke_agent(&admin, a.agent()).await.expect("revoke"));
        assert!(!store.revoke_agent(&admin, a.agent()).await.expect("revoke twice"));
        assert!(store.revoked_agents().await.expect("list").contains(&a.agent()));
        assert!(store.agent_is_revoked(&a).await.expect("check"));
        assert!(matches!(
            store.agent_connected(&a, "1.0", 0).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.revoke_agent(&admin, outpost_certs::AgentId::random()).await,
            Err(StoreError::NotFound(_))
        ));
        let rows = store.list_agents(&Viewer::Admin(admin)).await.expect("list");
        assert!(rows[0].revoked && !rows[0].online);
    }
}

#[tokio::test]
async fn logins_and_sessions() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        assert!(!store.has_users().await.expect("users"));
        store
            .set_admin_password(&admin, "admin", "correct horse")
            .await
            .expect("set");
        assert!(store.login("admin", "wrong").await.expect("login").is_none());
        assert!(store.login("nobody", "correct horse").await.expect("login").is_none());
        let token = store
            .login("admin", "correct horse")
            .await
            .expect("login")
            .expect("session");
        let session = store.session(&token).await.expect("lookup").expect("live");
        assert_eq!(session.username, "admin");
        assert!(store.session("forged").await.expect("lookup").is_none());
        // A password change ends existing sessions.
        store
            .set_admin_password(&admin, "admin", "new one")
            .await
            .expect("reset");
        assert!(store.session(&token).await.expect("lookup").is_none());
        let token = store.login("admin", "new one").await.expect("login").expect("session");
        store.logout(&token).await.expect("logout");
        assert!(store.session(&token).await.expect("lookup").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enrollment_succeeds_while_other_agents_write_and_a_token_wins_once() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let busy = enrolled_agent(store, &ca, "acme", "hq").await;
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..200i64 {
                    store
                        .ingest(&busy, &metrics(i * 10 + 1..=i * 10 + 10))
                        .await
                        .expect("ingest");
                }
            })
        };
        let site = store.ensure_site(&admin, "acme", "hq").await.expect("site");
        for _ in 0..15 {
            let token = EnrollmentToken::generate(ca.fingerprint());
            store
                .create_token(&admin, &site, &token, Duration::from_secs(60))
                .await
                .expect("token");
            store
                .enroll(&token, "h", "1", sign_with(&ca))
                .await
                .unwrap_or_else(|e| panic!("{store:?}: {e}"));
        }
        writer.await.expect("writer");

        let token = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &site, &token, Duration::from_secs(60))
            .await
            .expect("token");
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (store, token) = (store.clone(), token.clone());
                let ca_pem = (ca.cert_pem().to_owned(), ca.key_pem());
                tokio::spawn(async move {
                    let ca = CertificateAuthority::from_pem(&ca_pem.0, &ca_pem.1).expect("ca");
                    store.enroll(&token, "h", "1", sign_with(&ca)).await
                })
            })
            .collect();
        let mut won = 0;
        for r in racers {
            match r.await.expect("task") {
                Ok(_) => won += 1,
                Err(EnrollError::AlreadyUsed) => {}
                Err(other) => panic!("{store:?}: a racing redemption failed with {other}"),
            }
        }
        assert_eq!(won, 1, "{store:?}");
    }
}

#[tokio::test]
async fn tokens_are_checked_with_a_read_before_redemption() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let site = store.ensure_site(&admin, "acme", "hq").await.expect("site");
        let token = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &site, &token, Duration::from_secs(60))
            .await
            .expect("token");

        // The check reads only: it answers while another transaction holds
        // SQLite's write lock or the token row's lock on PostgreSQL, where a
        // redemption (which claims the token first) would wait.
        on_pool!(store, pool, _Db => {
            let mut writer = pool.begin().await.expect("begin");
            sqlx::query("UPDATE enrollment_tokens SET expires_at_ms = expires_at_ms WHERE id = $1")
                .bind(token.id())
                .execute(&mut *writer)
                .await
                .expect("take the lock");
            tokio::time::timeout(Duration::from_secs(5), store.check_enrollment_token(&token))
                .await
                .unwrap_or_else(|_| panic!("{store:?}: the check waited for a writer"))
                .expect("a valid token");
            writer.rollback().await.expect("rollback");
        });

        // Right id, wrong secret; unknown id.
        let text = token.to_string();
        let other = EnrollmentToken::generate(ca.fingerprint()).to_string();
        let mut parts: Vec<&str> = text.split('.').collect();
        parts[2] = other.split('.').nth(2).expect("a secret part");
        let wrong_secret: EnrollmentToken = parts.join(".").parse().expect("well-formed");
        let wrong = store.check_enrollment_token(&wrong_secret).await;
        assert!(matches!(wrong, Err(EnrollError::UnknownToken)), "{store:?}: {wrong:?}");
        let forged = EnrollmentToken::generate(ca.fingerprint());
        let unknown = store.check_enrollment_token(&forged).await;
        assert!(matches!(unknown, Err(EnrollError::UnknownToken)), "{unknown:?}");

        // Checking did not use the token up; redeeming does.
        store.enroll(&token, "h", "1", sign_with(&ca)).await.expect("redeem");
        let used = store.check_enrollment_token(&token).await;
        assert!(matches!(used, Err(EnrollError::AlreadyUsed)), "{used:?}");

        let expiring = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &site, &expiring, Duration::from_millis(1))
            .await
            .expect("token");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let expired = store.check_enrollment_token(&expiring).await;
        assert!(matches!(expired, Err(EnrollError::Expired)), "{expired:?}");

        let doomed = store.ensure_site(&admin, "acme", "closing").await.expect("site");
        let orphan = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(&admin, &doomed, &orphan, Duration::from_secs(60))
            .await
            .expect("token");
        store.check_enrollment_token(&orphan).await.expect("live site");
        store.delete_site(&admin, "acme", "closing").await.expect("delete");
        let deleted = store.check_enrollment_token(&orphan).await;
        assert!(matches!(deleted, Err(EnrollError::SiteDeleted)), "{deleted:?}");
    }
}
