//! The audit chain on every engine: it verifies, and each kind of tampering is
//! found at the right record.
use outpost_certs::TenantId;

use super::*;
use crate::scope::Viewer;
use crate::tests::engines;
use crate::{AdminScope, Store};

fn event(n: i64, tenant: Option<TenantId>) -> AuditEvent {
    AuditEvent::success(tenant, "test.action", format!("object {n}")).with(Details::new().number("n", n))
}

/// Appends `n` records, alternating between `tenant` and MSP-wide.
async fn append(store: &Store, n: i64, tenant: TenantId) {
    for i in 1..=n {
        let t = (i % 2 == 0).then_some(tenant);
        store
            .record_audit(&Actor::user("alice", "127.0.0.1".parse().ok()), event(i, t))
            .await
            .expect("append");
    }
}

/// Tampers with the log as whoever holds the database owner's credentials
/// would: on PostgreSQL the application role may only append.
async fn exec(store: &Store, sql: &str) {
    match &store.pool {
        crate::Pool::Sqlite(p) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .expect(sql);
        }
        crate::Pool::Postgres(p) => {
            let mut owner = p.acquire().await.expect("connection");
            sqlx::query("RESET ROLE")
                .execute(&mut *owner)
                .await
                .expect("reset role");
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut *owner)
                .await
                .expect(sql);
            sqlx::query(crate::row_scope::SET_APP_ROLE)
                .execute(&mut *owner)
                .await
                .expect("set role");
        }
    }
}

async fn broken(store: &Store) -> Option<ChainBreak> {
    store
        .verify_audit_chain(&AdminScope::verified())
        .await
        .expect("verify")
        .broken
}

#[test]
fn the_canonical_encoding_and_hash_are_fixed() {
    let details = Details::new()
        .text("z", "a\"b\n")
        .number("a", -3)
        .flag("m", true)
        .canonical();
    assert_eq!(details, r#"{"a":-3,"m":true,"z":"a\"b\n"}"#);
    let f = Fields {
        seq: 7,
        at_ms: 1_700_000_000_123,
        tenant: Some("0b6f4a2e-9a51-4c43-8d1e-4f2b2a5d9c11"),
        actor: "local operator",
        source: None,
        action: "device.add",
        object: "device ü\u{1}",
        outcome: "success",
        details: &details,
    };
    assert_eq!(
        canonical(&f),
        r#"["outpost-audit-1",7,1700000000123,"0b6f4a2e-9a51-4c43-8d1e-4f2b2a5d9c11","local operator",null,"device.add","device ü\u0001","success",{"a":-3,"m":true,"z":"a\"b\n"}]"#
    );
    // From Python: hashlib.sha256(bytes(32) + canonical.encode()).hexdigest()
    assert_eq!(
        chain_hash(GENESIS_HASH, &f).as_deref(),
        Some("55f87e93db0b54f00525f1d18c6be8ebe37a5f0883584044e70e02a3f86c91c1")
    );
    assert_eq!(chain_hash("zz", &f), None);
}

#[tokio::test]
async fn an_untouched_chain_verifies_and_names_its_head() {
    for store in &engines().await.stores {
        let report = store.verify_audit_chain(&AdminScope::verified()).await.expect("verify");
        assert_eq!(
            (report.checked, report.head.seq, report.broken),
            (0, 0, None),
            "{store:?}"
        );
        append(store, 5, TenantId::random()).await;
        let report = store.verify_audit_chain(&AdminScope::verified()).await.expect("verify");
        assert_eq!(
            (report.checked, report.head.seq, &report.broken),
            (5, 5, &None),
            "{store:?}"
        );
        let newest = store
            .audit_records(
                &Viewer::Admin(AdminScope::verified()),
                &AuditQuery {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    tenant: None,
                    after_seq: 0,
                    limit: 1,
                    newest_first: true,
                },
            )
            .await
            .expect("read");
        assert_eq!(newest[0].hash, report.head.hash, "{store:?}");
    }
}

#[tokio::test]
async fn an_edited_record_is_named() {
    for store in &engines().await.stores {
        append(store, 5, TenantId::random()).await;
        exec(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3").await;
        assert_eq!(broken(store).await, Some(ChainBreak::Edited { seq: 3 }), "{store:?}");
    }
    for store in &engines().await.stores {
        append(store, 5, TenantId::random()).await;
        // Details re-serialised with other whitespace: the same JSON, not the same record.
        exec(store, "UPDATE audit_log SET details = '{ \"n\": 4 }' WHERE seq = 4").await;
        assert_eq!(broken(store).await, Some(ChainBreak::Edited { seq: 4 }), "{store:?}");
    }
}

#[tokio::test]
async fn a_deleted_record_is_named_in_the_middle_and_at_the_end() {
    for store in &engines().await.stores {
        append(store, 5, TenantId::random()).await;
        exec(store, "DELETE FROM audit_log WHERE seq = 2").await;
        let b = broken(store).await;
        assert_eq!(b, Some(ChainBreak::Missing { from: 2, to: 2 }), "{store:?}");
        assert_eq!(b.map(|b| b.seq()), Some(2));
    }
    for store in &engines().await.stores {
        append(store, 5, TenantId::random()).await;
        exec(store, "DELETE FROM audit_log WHERE seq >= 4").await;
        assert_eq!(
            broken(store).await,
            Some(ChainBreak::Missing { from: 4, to: 5 }),
            "{store:?}"
        );
    }
}

#[tokio::test]
async fn swapped_records_are_named() {
    for store in &engines().await.stores {
        append(store, 5, TenantId::random()).await;
        exec(store, "UPDATE audit_log SET seq = -1 WHERE seq = 2").await;
        exec(store, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
        exec(store, "UPDATE audit_log SET seq = 3 WHERE seq = -1").await;
        let b = broken(store).await;
        assert_eq!(b, Some(ChainBreak::Reordered { seq: 2, follows: 3 }), "{store:?}");
        assert!(b.is_some_and(|b| b.to_string().contains("record 2 is out of order")));
    }
}

#[tokio::test]
async fn a_rewritten_link_and_an_edited_head_are_found() {
    for store in &engines().await.stores {
        append(store, 3, TenantId::random()).await;
        exec(
            store,
            &format!("UPDATE audit_log SET prev_hash = '{}' WHERE seq = 2", "ab".repeat(32)),
        )
        .await;
        exec(store, "UPDATE audit_log SET object = 'x' WHERE seq = 2").await;
        assert_eq!(broken(store).await, Some(ChainBreak::Relinked { seq: 2 }), "{store:?}");
    }
    for store in &engines().await.stores {
        append(store, 3, TenantId::random()).await;
        exec(store, &format!("UPDATE audit_head SET hash = '{}'", "cd".repeat(32))).await;
        assert!(
            matches!(broken(store).await, Some(ChainBreak::HeadMismatch { .. })),
            "{store:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_make_one_valid_chain() {
    for store in &engines().await.stores {
        let tenant = TenantId::random();
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        let actor = Actor::user(&format!("user{task}"), None);
                        store
                            .record_audit(&actor, event(task * 100 + i, Some(tenant)))
                            .await
                            .expect("append");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let report = store.verify_audit_chain(&AdminScope::verified()).await.expect("verify");
        assert_eq!(
            (report.checked, report.head.seq, report.broken),
            (160, 160, None),
            "{store:?}"
        );
    }
}

#[tokio::test]
async fn a_tenant_reads_only_its_own_records_and_ranges_are_half_open() {
    for store in &engines().await.stores {
        let (mine, other) = (TenantId::random(), TenantId::random());
        append(store, 4, mine).await;
        store
            .record_audit(&Actor::local_operator(), event(9, Some(other)))
            .await
            .expect("append");
        let all = AuditQuery {
            from_ms: 0,
            to_ms: i64::MAX,
            tenant: None,
            after_seq: 0,
            limit: 100,
            newest_first: false,
        };
        let scope = AdminScope::verified().tenant_scope(mine);
        let seen = store.audit_records(&Viewer::Tenant(scope), &all).await.expect("read");
        assert_eq!(seen.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 4], "{store:?}");
        let admin = Viewer::Admin(AdminScope::verified());
        assert_eq!(store.audit_records(&admin, &all).await.expect("read").len(), 5);
        let filtered = AuditQuery {
            tenant: Some(other),
            ..all
        };
        let seen = store.audit_records(&admin, &filtered).await.expect("read");
        assert_eq!((seen.len(), seen[0].actor.as_str()), (1, Actor::LOCAL_OPERATOR));
        let at = seen[0].at_ms;
        let empty = AuditQuery {
            from_ms: at + 1,
            ..filtered
        };
        assert!(store.audit_records(&admin, &empty).await.expect("read").is_empty());
        let until = AuditQuery { to_ms: at, ..filtered };
        assert!(store.audit_records(&admin, &until).await.expect("read").is_empty());
        let paged = AuditQuery { after_seq: 3, ..all };
        let seen = store.audit_records(&admin, &paged).await.expect("read");
        assert_eq!(seen.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);
    }
}

#[tokio::test]
async fn actions_commit_with_their_record_and_refused_ones_leave_none() {
    let ca = outpost_certs::ca::CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let admin = AdminScope::verified();
        let (agent, _) = crate::tests::enrolled(store, &ca, "acme", "hq").await;
        let scope = agent.tenant_scope();
        let device = crate::devices::NewDevice {
            id: crate::devices::DeviceId::random(),
            site: agent.site(),
            address: "10.0.0.1".into(),
            api_port: 8728,
            api_tls: false,
            ssh_port: 22,
            username: "admin".into(),
            password_sealed: vec![1],
            poll_interval_secs: 60,
        };
        let alice = Actor::user("alice", "192.0.2.7".parse().ok());
        store.add_device(&scope, &device, &alice).await.expect("add");
        let twin = crate::devices::NewDevice {
            id: crate::devices::DeviceId::random(),
            ..device.clone()
        };
        assert!(
            store.add_device(&scope, &twin, &alice).await.is_err(),
            "same address and port"
        );
        assert!(
            store
                .revoke_agent(&admin, agent.agent(), &Actor::local_operator())
                .await
                .expect("revoke")
        );
        assert!(
            !store
                .revoke_agent(&admin, agent.agent(), &Actor::local_operator())
                .await
                .expect("again")
        );

        let all = AuditQuery {
            from_ms: 0,
            to_ms: i64::MAX,
            tenant: None,
            after_seq: 0,
            limit: 100,
            newest_first: false,
        };
        let records = store.audit_records(&Viewer::Admin(admin), &all).await.expect("read");
        let seen: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| (r.action.as_str(), r.actor.as_str(), r.outcome.as_str()))
            .collect();
        let enrolled_by = format!("agent {}", agent.agent());
        assert_eq!(
            seen,
            [
                ("token.create", Actor::LOCAL_OPERATOR, "success"),
                ("agent.enroll", enrolled_by.as_str(), "success"),
                ("device.add", "alice", "success"),
                ("agent.revoke", Actor::LOCAL_OPERATOR, "success"),
            ],
            "{store:?}"
        );
        let add = &records[2];
        assert_eq!(add.object, format!("device {}", device.id));
        assert_eq!(add.source.as_deref(), Some("192.0.2.7"));
        assert_eq!(add.tenant_id, Some(agent.tenant().to_string()));
        assert_eq!(add.tenant_name.as_deref(), Some("acme"));
        assert!(add.details.contains("\"address\":\"10.0.0.1\""), "{}", add.details);
        let report = store.verify_audit_chain(&admin).await.expect("verify");
        assert_eq!((report.head.seq, report.broken), (4, None));
    }
}
