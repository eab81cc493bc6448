//! The audit page and CSV, and `/healthz`, `/readyz`, `/metrics`, through the
//! router against a real SQLite store.
use std::sync::Arc;

use axum::http::{StatusCode, header};

use super::tests::{Console, body};

#[tokio::test]
async fn sign_ins_are_on_the_audit_page_and_in_its_csv() {
    let c = Console::new(true).await;
    let client: std::net::SocketAddr = "192.0.2.9:4444".parse().unwrap();
    assert_eq!(
        c.login_from(Some(client), "admin", "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let session = c.session().await;

    let res = c.get("/audit", Some(&session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body(res).await;
    assert!(html.contains("console.login"), "{html}");
    assert!(
        html.contains("192.0.2.9"),
        "the refused sign-in's client address: {html}"
    );
    assert!(
        html.contains("failure") && html.contains("invalid username or password"),
        "{html}"
    );
    assert!(html.contains("user.set_password"), "{html}");

    let res = c
        .get(
            "/audit.csv?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            Some(&session),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = body(res).await;
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], outpost_store::audit::CSV_HEADER.trim_end());
    // Set password, refused sign-in, sign-in: oldest first.
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[2].contains(",admin,192.0.2.9,console.login,user admin,failure,"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains(",console.login,user admin,success,"), "{}", lines[3]);

    let bad = c.get("/audit?from=yesterday", Some(&session)).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // Without a session: the login page, not the log.
    let anonymous = c.get("/audit.csv", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn health_is_always_ok_and_readiness_follows_the_database_and_the_agent_port() {
    let mut c = Console::new(true).await;
    let res = c.get("/healthz", None).await;
    assert_eq!((res.status(), body(res).await.as_str()), (StatusCode::OK, "ok\n"));

    // A console without a collector behind it has no agent port.
    let res = c.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(res).await.contains("agent port"));

    let up = crate::metrics::AgentPortUp::default();
    up.set(true);
    c.set_state(
        c.state
            .clone()
            .with_operability(Arc::new(crate::metrics::Metrics::default()), up.clone()),
    );
    let res = c.get("/readyz", None).await;
    assert_eq!((res.status(), body(res).await.as_str()), (StatusCode::OK, "ready\n"));

    // The database gone: not ready, and says why.
    c.store.close().await;
    let res = c.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(res).await.contains("database"));
    let res = c.get("/healthz", None).await;
    assert_eq!(res.status(), StatusCode::OK, "alive all the same");
}

#[tokio::test]
async fn metrics_are_openmetrics_and_a_token_can_guard_them() {
    let mut c = Console::new(true).await;
    assert_eq!(c.login("admin", "wrong").await.status(), StatusCode::UNAUTHORIZED);
    let res = c.get("/metrics", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = body(res).await;
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in [
        "# TYPE outpost_console_login_failures counter",
        "outpost_console_login_failures_total 1",
        "# TYPE outpost_batch_commit_seconds histogram",
        "# UNIT outpost_batch_commit_seconds seconds",
        "outpost_agents_online 0",
        "outpost_console_sessions 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
    }
    assert!(!text.contains("_total_total"), "{text}");

    let guarded = Arc::new(crate::metrics::Metrics::new(Some("s3cret-token".into())));
    c.set_state(
        c.state
            .clone()
            .with_operability(guarded, crate::metrics::AgentPortUp::default()),
    );
    assert_eq!(c.get("/metrics", None).await.status(), StatusCode::UNAUTHORIZED);
    let wrong = c
        .send(
            axum::http::Request::get("/metrics")
                .header(header::AUTHORIZATION, "Bearer nope")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = c
        .send(
            axum::http::Request::get("/metrics")
                .header(header::AUTHORIZATION, "Bearer s3cret-token")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(right.status(), StatusCode::OK);
}
