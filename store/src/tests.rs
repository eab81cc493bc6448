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
use crate::row_scope::RowScope;

/// A throwaway store per engine. Keeps the SQLite directory alive.
pub(crate) struct Engines {
    pub(crate) stores: Vec<Store>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn engines() -> Engines {
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

/// An enrollment request from a fresh key (so a second use of a token is not a retry).
fn ask() -> super::tokens::EnrollAsk<'static> {
    super::tokens::EnrollAsk {
        hostname: "h",
        version: "1",
        csr_key_sha256: uuid::Uuid::new_v4().simple().to_string(),
        previous: None,
    }
}

async fn enrolled_agent(store: &Store, ca: &CertificateAuthority, tenant: &str, site: &str) -> AgentScope {
    enrolled(store, ca, tenant, site).await.0
}

/// Enrolls an agent; its scope and its certificate's serial.
pub(crate) async fn enrolled(
    store: &Store,
    ca: &CertificateAuthority,
    tenant: &str,
    site: &str,
) -> (AgentScope, String) {
    let admin = AdminScope::verified();
    let s = store.ensure_site(&admin, tenant, site).await.expect("site");
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(
            &admin,
            &s,
            &token,
            Duration::from_secs(60),
            &crate::audit::Actor::local_operator(),
        )
        .await
        .expect("token");
    let e = store.enroll(&token, &ask(), None, sign_with(ca)).await.expect("enroll");
    (AgentScope::verified(e.identity), e.certificate.serial)
}

pub(crate) fn connecting<'a>(serial: &'a str, instance: &'a str) -> agents::Connecting<'a> {
    agents::Connecting {
        version: "1.0",
        outbox_depth: 0,
        serial,
        instance_id: instance,
        remote: "127.0.0.1:5555".parse().expect("addr"),
    }
}

/// A batch of metric observations `seqs`.
pub(crate) fn metrics_batch(seqs: std::ops::RangeInclusive<i64>) -> IngestBatch {
    metrics(seqs)
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
        devices: vec![],
        discovery: vec![],
        through_seq: *seqs.end(),
        outbox_depth: 0,
    }
}

async fn count(store: &Store, table: &str, tenant: TenantId) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    let (n,): (i64,) = on_pool!(store, RowScope::All, pool, _Db => {
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
            .create_token(
                &admin,
                &site,
                &token,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        store
            .enroll(&token, &ask(), None, sign_with(&ca))
            .await
            .expect("first use");
        let again = store.enroll(&token, &ask(), None, sign_with(&ca)).await;
        assert!(matches!(again, Err(EnrollError::AlreadyUsed)), "{store:?}: {again:?}");

        let forged = EnrollmentToken::generate(ca.fingerprint());
        let unknown = store.enroll(&forged, &ask(), None, sign_with(&ca)).await;
        assert!(matches!(unknown, Err(EnrollError::UnknownToken)), "{unknown:?}");

        let expiring = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &site,
                &expiring,
                Duration::from_millis(1),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let expired = store.enroll(&expiring, &ask(), None, sign_with(&ca)).await;
        assert!(matches!(expired, Err(EnrollError::Expired)), "{expired:?}");

        let doomed = store.ensure_site(&admin, "acme", "closing").await.expect("site");
        let orphan = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &doomed,
                &orphan,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        store
            .delete_site(&admin, "acme", "closing", &crate::audit::Actor::local_operator())
            .await
            .expect("delete");
        let deleted = store.enroll(&orphan, &ask(), None, sign_with(&ca)).await;
        assert!(matches!(deleted, Err(EnrollError::SiteDeleted)), "{deleted:?}");

        // A failed signature leaves the token unused.
        let fragile = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &site,
                &fragile,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        let bad = store.enroll(&fragile, &ask(), None, |_| Err("bad CSR".into())).await;
        assert!(matches!(bad, Err(EnrollError::Certificate(_))));
        store
            .enroll(&fragile, &ask(), None, sign_with(&ca))
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
            store.agent_connected(&forged, &connecting("00", "i"), None).await,
            Err(agents::ConnectRefused::UnknownOrRevoked)
        ));
    }
}

#[tokio::test]
async fn revoked_agents_cannot_connect() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let (a, serial) = enrolled(store, &ca, "acme", "hq").await;
        let admin = AdminScope::verified();
        let start = store
            .agent_connected(&a, &connecting(&serial, "i1"), None)
            .await
            .expect("connect");
        assert_eq!(start.acked_seq, 0);
        let rows = store.list_agents(&Viewer::Admin(admin)).await.expect("list");
        assert!(rows[0].online);
        // A reconnect overtakes the old stream's teardown: still online.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newer = store
            .agent_connected(&a, &connecting(&serial, "i1"), None)
            .await
            .expect("reconnect");
        store.agent_disconnected(&a, &start).await.expect("old stream ends");
        assert!(store.list_agents(&Viewer::Admin(admin)).await.expect("list")[0].online);
        store.agent_disconnected(&a, &newer).await.expect("new stream ends");
        assert!(!store.list_agents(&Viewer::Admin(admin)).await.expect("list")[0].online);
        assert!(
            store
                .revoke_agent(&admin, a.agent(), &crate::audit::Actor::local_operator())
                .await
                .expect("revoke")
        );
        assert!(
            !store
                .revoke_agent(&admin, a.agent(), &crate::audit::Actor::local_operator())
                .await
                .expect("revoke twice")
        );
        assert!(store.revoked_agents().await.expect("list").contains(&a.agent()));
        assert!(!store.agent_may_renew(&a, &serial).await.expect("check"));
        assert!(matches!(
            store.agent_connected(&a, &connecting(&serial, "i1"), None).await,
            Err(agents::ConnectRefused::UnknownOrRevoked)
        ));
        assert!(matches!(
            store
                .revoke_agent(
                    &admin,
                    outpost_certs::AgentId::random(),
                    &crate::audit::Actor::local_operator()
                )
                .await,
            Err(StoreError::NotFound(_))
        ));
        let rows = store.list_agents(&Viewer::Admin(admin)).await.expect("list");
        assert!(rows[0].revoked && !rows[0].online);
    }
}

/// Signs in the way the console does, without its cap on concurrent hashing.
async fn login(store: &Store, username: &str, password: &str) -> Option<String> {
    let credential = store.credential(username).await.expect("credential");
    let password = password.to_owned();
    let user = tokio::task::spawn_blocking(move || credential.verify(&password))
        .await
        .expect("hashing task")?;
    Some(
        store
            .open_session(user, &crate::audit::Actor::local_operator())
            .await
            .expect("open session"),
    )
}

#[tokio::test]
async fn logins_and_sessions() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        assert!(!store.has_users().await.expect("users"));
        store
            .set_admin_password(&admin, "admin", "correct horse", &crate::audit::Actor::local_operator())
            .await
            .expect("set");
        assert!(login(store, "admin", "wrong").await.is_none());
        assert!(login(store, "nobody", "correct horse").await.is_none());
        let token = login(store, "admin", "correct horse").await.expect("session");
        let session = store.session(&token).await.expect("lookup").expect("live");
        assert_eq!(session.username, "admin");
        assert!(store.session("forged").await.expect("lookup").is_none());
        // A password change ends existing sessions.
        store
            .set_admin_password(&admin, "admin", "new one", &crate::audit::Actor::local_operator())
            .await
            .expect("reset");
        assert!(store.session(&token).await.expect("lookup").is_none());
        let token = login(store, "admin", "new one").await.expect("session");
        store
            .logout(&token, &crate::audit::Actor::local_operator())
            .await
            .expect("logout");
        assert!(store.session(&token).await.expect("lookup").is_none());
    }
}

#[tokio::test]
async fn expired_sessions_are_pruned_and_live_ones_kept() {
    let e = engines().await;
    for store in &e.stores {
        store
            .set_admin_password(
                &AdminScope::verified(),
                "admin",
                "correct horse",
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("set");
        let old = login(store, "admin", "correct horse").await.expect("session");
        store.expire_all_sessions().await.expect("expire");
        let live = login(store, "admin", "correct horse").await.expect("session");
        assert_eq!(store.session_rows().await.expect("count"), 2, "{store:?}");

        assert_eq!(store.prune_expired_sessions().await.expect("prune"), 1, "{store:?}");
        assert_eq!(store.session_rows().await.expect("count"), 1, "{store:?}");
        assert!(store.session(&old).await.expect("lookup").is_none());
        assert!(store.session(&live).await.expect("lookup").is_some(), "{store:?}");
        assert_eq!(store.prune_expired_sessions().await.expect("prune"), 0, "{store:?}");
    }
}

#[tokio::test]
async fn live_sessions_are_the_sessions_that_open() {
    let e = engines().await;
    for store in &e.stores {
        store
            .set_admin_password(
                &AdminScope::verified(),
                "admin",
                "correct horse",
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("set");
        let expired = login(store, "admin", "correct horse").await.expect("session");
        store.expire_all_sessions().await.expect("expire");
        let live = login(store, "admin", "correct horse").await.expect("session");
        let ended = login(store, "admin", "correct horse").await.expect("session");
        store
            .logout(&ended, &crate::audit::Actor::local_operator())
            .await
            .expect("logout");

        let keys = store.live_sessions().await.expect("keys");
        assert_eq!(keys.len(), 1, "{store:?}");
        assert!(
            matches!(keys.get(&users::SessionKey::of(&live)), Some(Viewer::Admin(_))),
            "{store:?}"
        );
        for gone in [&expired, &ended] {
            assert!(!keys.contains_key(&users::SessionKey::of(gone)), "{store:?}");
            assert!(store.session(gone).await.expect("lookup").is_none());
        }
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
                .create_token(
                    &admin,
                    &site,
                    &token,
                    Duration::from_secs(60),
                    &crate::audit::Actor::local_operator(),
                )
                .await
                .expect("token");
            store
                .enroll(&token, &ask(), None, sign_with(&ca))
                .await
                .unwrap_or_else(|e| panic!("{store:?}: {e}"));
        }
        writer.await.expect("writer");

        let token = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &site,
                &token,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (store, token) = (store.clone(), token.clone());
                let ca_pem = (ca.cert_pem().to_owned(), ca.key_pem());
                tokio::spawn(async move {
                    let ca = CertificateAuthority::from_pem(&ca_pem.0, &ca_pem.1).expect("ca");
                    store.enroll(&token, &ask(), None, sign_with(&ca)).await
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
async fn only_the_current_certificate_and_the_one_before_it_are_accepted() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let (a, s0) = enrolled(store, &ca, "acme", "hq").await;
        let issue = || {
            let req = generate_key_and_csr("t").expect("csr");
            ca.sign_agent_csr(
                &req.csr_der,
                a.identity(),
                Validity::starting_now(Duration::from_secs(3600)),
            )
            .expect("sign")
        };
        // Renewed with s0 → s1; the answer may be lost, so s0 still works.
        let s1 = issue();
        assert!(store.agent_renewed(&a, &s0, &s1).await.expect("renew"));
        assert!(store.agent_may_renew(&a, &s0).await.expect("check"));
        // Renewed again with s0 (the lost answer): s1 is dead, s0 and s2 live.
        let s2 = issue();
        assert!(store.agent_renewed(&a, &s0, &s2).await.expect("renew again"));
        assert!(!store.agent_may_renew(&a, &s1.serial).await.expect("check"));
        assert!(matches!(
            store.agent_connected(&a, &connecting(&s1.serial, "i"), None).await,
            Err(agents::ConnectRefused::CertificateReplaced)
        ));
        // The first connection with s2 retires s0 for good.
        let start = store
            .agent_connected(&a, &connecting(&s2.serial, "i"), None)
            .await
            .expect("connect with the new certificate");
        store.agent_disconnected(&a, &start).await.expect("disconnect");
        assert!(!store.agent_may_renew(&a, &s0).await.expect("check"));
        assert!(!store.agent_renewed(&a, &s0, &issue()).await.expect("old renew refused"));
        assert!(matches!(
            store.agent_connected(&a, &connecting(&s0, "i"), None).await,
            Err(agents::ConnectRefused::CertificateReplaced)
        ));
    }
}

#[tokio::test]
async fn a_second_instance_is_refused_while_the_first_streams() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let (a, serial) = enrolled(store, &ca, "acme", "hq").await;
        let first = store
            .agent_connected(&a, &connecting(&serial, "one"), None)
            .await
            .expect("first instance");
        // Refused on what the database says (the stream may be on another collector)…
        let refused = store.agent_connected(&a, &connecting(&serial, "two"), None).await;
        assert!(
            matches!(&refused, Err(agents::ConnectRefused::OtherInstance { other, .. }) if other == "one"),
            "{refused:?}"
        );
        // …and on what this collector knows.
        let refused = store
            .agent_connected(&a, &connecting(&serial, "two"), Some("one"))
            .await;
        assert!(matches!(refused, Err(agents::ConnectRefused::OtherInstance { .. })));
        let row = &store.list_agents(&Viewer::Admin(admin)).await.expect("list")[0];
        let note = row.conflict_note().expect("conflict recorded");
        assert!(
            note.contains("cloned machine?") && note.contains("instance two"),
            "{note}"
        );
        // The same instance reconnects freely.
        let again = store
            .agent_connected(&a, &connecting(&serial, "one"), None)
            .await
            .expect("same instance");
        store.agent_disconnected(&a, &first).await.expect("old stream ends");
        store.agent_disconnected(&a, &again).await.expect("stream ends");
        // Once the first has gone, another instance may stream.
        store
            .agent_connected(&a, &connecting(&serial, "two"), None)
            .await
            .expect("second instance after the first left");
    }
}

#[tokio::test]
async fn enrollment_retries_get_the_same_certificate_and_nothing_else_reuses_a_token() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let site = store.ensure_site(&admin, "acme", "hq").await.expect("site");
        let token = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &site,
                &token,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        let mine = ask();
        let first = store.enroll(&token, &mine, None, sign_with(&ca)).await.expect("enroll");
        let retry = store
            .enroll(&token, &mine, None, |_| Err("must not sign again".into()))
            .await
            .expect("retry");
        assert!(retry.retried && !first.retried);
        assert_eq!(retry.certificate.der, first.certificate.der);
        assert_eq!(retry.identity, first.identity);
        // Another key with the same token is refused.
        let other = store.enroll(&token, &ask(), None, sign_with(&ca)).await;
        assert!(matches!(other, Err(EnrollError::AlreadyUsed)), "{other:?}");
        // So is the same key once the window has passed.
        on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query("UPDATE enrollment_tokens SET used_at_ms = used_at_ms - $1 WHERE id = $2")
                .bind(tokens::RETRY_WINDOW_MS + 1)
                .bind(token.id())
                .execute(pool)
                .await
                .expect("age the token");
        });
        let late = store.enroll(&token, &mine, None, sign_with(&ca)).await;
        assert!(matches!(late, Err(EnrollError::AlreadyUsed)), "{late:?}");
        assert_eq!(store.list_agents(&Viewer::Admin(admin)).await.expect("list").len(), 1);
    }
}

#[tokio::test]
async fn re_enrollment_keeps_the_id_only_for_a_live_agent_of_the_same_site() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let (a, old_serial) = enrolled(store, &ca, "acme", "hq").await;
        let ca = &ca;
        let token_for = |tenant: &'static str, site: &'static str| async move {
            let s = store.ensure_site(&admin, tenant, site).await.expect("site");
            let t = EnrollmentToken::generate(ca.fingerprint());
            store
                .create_token(
                    &admin,
                    &s,
                    &t,
                    Duration::from_secs(60),
                    &crate::audit::Actor::local_operator(),
                )
                .await
                .expect("token");
            t
        };
        let proving = tokens::EnrollAsk {
            previous: Some(*a.identity()),
            ..ask()
        };
        // Same tenant and site: same id, and the old certificate stops working.
        let same = store
            .enroll(&token_for("acme", "hq").await, &proving, None, sign_with(ca))
            .await
            .expect("re-enroll");
        assert!(same.kept_id);
        assert_eq!(same.identity, *a.identity());
        assert!(!store.agent_may_renew(&a, &old_serial).await.expect("check"));
        assert!(
            store
                .agent_may_renew(&a, &same.certificate.serial)
                .await
                .expect("check")
        );
        // Another site of the same tenant, or another tenant: a new id.
        for (tenant, site) in [("acme", "branch"), ("globex", "hq")] {
            let moved = store
                .enroll(&token_for(tenant, site).await, &proving, None, sign_with(ca))
                .await
                .expect("enroll elsewhere");
            assert!(!moved.kept_id);
            assert_ne!(moved.identity.agent, a.agent());
        }
        // A revoked agent cannot come back under its id.
        store
            .revoke_agent(&admin, a.agent(), &crate::audit::Actor::local_operator())
            .await
            .expect("revoke");
        let back = store
            .enroll(&token_for("acme", "hq").await, &proving, None, sign_with(ca))
            .await
            .expect("enroll after revocation");
        assert!(!back.kept_id);
        assert_ne!(back.identity.agent, a.agent());
    }
}

#[tokio::test]
async fn deleting_a_site_revokes_its_agents() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let admin = AdminScope::verified();
        let (a, serial) = enrolled(store, &ca, "acme", "closing").await;
        let (b, _) = enrolled(store, &ca, "acme", "staying").await;
        let (_, revoked) = store
            .delete_site(&admin, "acme", "closing", &crate::audit::Actor::local_operator())
            .await
            .expect("delete");
        assert_eq!(revoked, 1);
        let set = store.revoked_agents().await.expect("revoked");
        assert!(set.contains(&a.agent()) && !set.contains(&b.agent()));
        assert!(matches!(
            store.agent_connected(&a, &connecting(&serial, "i"), None).await,
            Err(agents::ConnectRefused::UnknownOrRevoked)
        ));
    }
}

#[tokio::test]
async fn a_resend_with_a_different_payload_is_counted_not_silent() {
    let e = engines().await;
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &e.stores {
        let a = enrolled_agent(store, &ca, "acme", "hq").await;
        let first = store.ingest(&a, &metrics(1..=10)).await.expect("ingest");
        assert_eq!((first.inserted, first.conflicts), (10, 0));
        // An honest resend: nothing new, no conflict.
        let resend = store.ingest(&a, &metrics(1..=10)).await.expect("resend");
        assert_eq!((resend.inserted, resend.conflicts), (0, 0));
        // A clone's different data under the same numbers: kept out, counted.
        let mut clone = metrics(5..=12);
        for m in &mut clone.metrics {
            if m.seq <= 7 {
                m.value += 0.5;
            }
        }
        let mixed = store.ingest(&a, &clone).await.expect("conflicting");
        assert_eq!((mixed.inserted, mixed.conflicts), (2, 3));
        let row = &store
            .list_agents(&Viewer::Admin(AdminScope::verified()))
            .await
            .expect("list")[0];
        assert_eq!(row.seq_conflicts, 3);
        assert_eq!(count(store, "metric_samples", a.tenant()).await, 12);
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
            .create_token(
                &admin,
                &site,
                &token,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");

        // The check reads only: it answers while another transaction holds
        // SQLite's write lock or the token row's lock on PostgreSQL, where a
        // redemption (which claims the token first) would wait.
        on_pool!(store, RowScope::All, pool, _Db => {
            let mut writer = pool.begin().await.expect("begin");
            sqlx::query("UPDATE enrollment_tokens SET expires_at_ms = expires_at_ms WHERE id = $1")
                .bind(token.id())
                .execute(&mut *writer)
                .await
                .expect("take the lock");
            tokio::time::timeout(Duration::from_secs(5), store.check_enrollment_token(&token, ""))
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
        let wrong = store.check_enrollment_token(&wrong_secret, "").await;
        assert!(matches!(wrong, Err(EnrollError::UnknownToken)), "{store:?}: {wrong:?}");
        let forged = EnrollmentToken::generate(ca.fingerprint());
        let unknown = store.check_enrollment_token(&forged, "").await;
        assert!(matches!(unknown, Err(EnrollError::UnknownToken)), "{unknown:?}");

        // Checking did not use the token up; redeeming does.
        let mine = ask();
        store.enroll(&token, &mine, None, sign_with(&ca)).await.expect("redeem");
        let used = store.check_enrollment_token(&token, "").await;
        assert!(matches!(used, Err(EnrollError::AlreadyUsed)), "{used:?}");
        // A retry with the redeeming key passes the check (and gets its
        // certificate again from `enroll`).
        store
            .check_enrollment_token(&token, &mine.csr_key_sha256)
            .await
            .expect("a retry is let through");

        let expiring = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &site,
                &expiring,
                Duration::from_millis(1),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let expired = store.check_enrollment_token(&expiring, "").await;
        assert!(matches!(expired, Err(EnrollError::Expired)), "{expired:?}");

        let doomed = store.ensure_site(&admin, "acme", "closing").await.expect("site");
        let orphan = EnrollmentToken::generate(ca.fingerprint());
        store
            .create_token(
                &admin,
                &doomed,
                &orphan,
                Duration::from_secs(60),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("token");
        store.check_enrollment_token(&orphan, "").await.expect("live site");
        store
            .delete_site(&admin, "acme", "closing", &crate::audit::Actor::local_operator())
            .await
            .expect("delete");
        let deleted = store.check_enrollment_token(&orphan, "").await;
        assert!(matches!(deleted, Err(EnrollError::SiteDeleted)), "{deleted:?}");
    }
}
