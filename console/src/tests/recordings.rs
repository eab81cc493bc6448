//! Terminal recordings in the console: a tenant admin lists, replays and
//! downloads them, and every read of a recording's text is audited; an
//! operator of the same tenant is refused (403), another tenant's admin
//! finds nothing (404), and a recording is only reachable through its own
//! device.
use axum::http::{StatusCode, header};

use outpost_certs::TenantId;
use outpost_store::audit::AuditQuery;
use outpost_store::members::Role;
use outpost_store::scope::Viewer;
use outpost_store::{AdminScope, Store};

use super::{Console, body};
use crate::devices::tests::fleet;

const PASSWORD: &str = "password-123";
const HEADER: &str = r#"{"version":2,"width":80,"height":24}"#;

async fn member(c: &Console, name: &str, tenant: TenantId, role: Role) -> String {
    c.member(name, PASSWORD, tenant, role).await
}

async fn views(store: &Store) -> Vec<(String, String)> {
    let query = AuditQuery {
        from_ms: 0,
        to_ms: i64::MAX,
        tenant: None,
        after_seq: 0,
        limit: 10_000,
        newest_first: false,
    };
    store
        .audit_records(&Viewer::Admin(AdminScope::for_tests()), &query)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "recording.view")
        .map(|r| (r.actor, r.object))
        .collect()
}

#[tokio::test]
async fn admins_replay_their_tenants_recordings_and_every_read_is_audited() {
    let c = Console::new(false).await;
    let a = fleet(&c, "acme").await;
    let b = fleet(&c, "globex").await;
    let scope = a.agent.tenant_scope();
    let id = c
        .store
        .start_recording(&scope, a.device, "tech", "t1", HEADER)
        .await
        .unwrap();
    let events = "[0.25,\"o\",\"[admin@core] > \"]\n[1.5,\"i\",\"/system identity print\\r\"]\n";
    c.store.append_recording(&scope, &id, events).await.unwrap();
    c.store.finish_recording(&scope, &id).await.unwrap();

    let admin = member(&c, "acme-admin", a.agent.tenant(), Role::Admin).await;
    let operator = member(&c, "acme-ops", a.agent.tenant(), Role::Operator).await;
    let other = member(&c, "globex-admin", b.agent.tenant(), Role::Admin).await;
    let (list, replay, cast) = (
        format!("/devices/{}/recordings", a.device),
        format!("/devices/{}/recordings/{id}", a.device),
        format!("/devices/{}/recordings/{id}/cast", a.device),
    );

    let res = c.get(&list, Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body(res).await;
    assert!(
        html.contains(&format!("data-recording-id=\"{id}\"")) && html.contains("tech"),
        "{html}"
    );
    let page = body(c.get(&format!("/devices/{}", a.device), Some(&admin)).await).await;
    assert!(page.contains("id=\"terminal-recordings\""), "admins are shown the link");

    let res = c.get(&replay, Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(body(res).await.contains(&format!("data-cast=\"{cast}\"")));
    assert!(
        views(&c.store).await.is_empty(),
        "the player page alone reads no recording"
    );

    let res = c.get(&cast, Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/x-asciicast");
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(body(res).await, format!("{HEADER}\n{events}"));
    assert_eq!(
        views(&c.store).await,
        vec![("acme-admin".to_owned(), format!("recording {id}"))]
    );

    // An operator of the tenant: refused, and no link on the device page.
    for path in [&list, &replay, &cast] {
        assert_eq!(
            c.get(path, Some(&operator)).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let page = body(c.get(&format!("/devices/{}", a.device), Some(&operator)).await).await;
    assert!(
        !page.contains("id=\"terminal-recordings\""),
        "operators are not shown the link"
    );

    // Another tenant's admin: nothing there, also through their own device.
    for path in [
        list.clone(),
        replay.clone(),
        cast.clone(),
        format!("/devices/{}/recordings/{id}", b.device),
        format!("/devices/{}/recordings/{id}/cast", b.device),
    ] {
        assert_eq!(
            c.get(&path, Some(&other)).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // The right tenant, the wrong device or id: not found either.
    let b_as_a = format!("/devices/{}/recordings/{id}/cast", b.device);
    assert_eq!(c.get(&b_as_a, Some(&admin)).await.status(), StatusCode::NOT_FOUND);
    let unknown = format!("/devices/{}/recordings/no-such-recording", a.device);
    assert_eq!(c.get(&unknown, Some(&admin)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(views(&c.store).await.len(), 1, "refused reads leave no record");
}
