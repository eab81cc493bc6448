//! Roles through the router: another tenant's objects are "not found" (404)
//! on pages, JSON and actions alike; one's own tenant with too low a role is
//! "permission denied" (403); the route table covers every route.
use axum::http::{Method, StatusCode};

use outpost_certs::TenantId;
use outpost_store::members::Role;

use super::{Console, body, hidden_csrf, post_request};
use crate::access::Need;
use crate::devices::tests::{Fleet, fleet};

const PASSWORD: &str = "password-123";

/// Creates a member of `tenant` with `role`, signs them in; their session
/// cookie and CSRF token.
async fn member(c: &Console, name: &str, tenant: TenantId, role: Role) -> (String, String) {
    let cookie = c.member(name, PASSWORD, tenant, role).await;
    let html = body(c.get("/account", Some(&cookie)).await).await;
    (cookie, hidden_csrf(&html))
}

async fn post(c: &Console, path: &str, (cookie, csrf): &(String, String)) -> (StatusCode, String) {
    let res = c.send(post_request(path, Some(cookie), &[("csrf", csrf)])).await;
    let status = res.status();
    (status, body(res).await)
}

async fn get(c: &Console, path: &str, (cookie, _): &(String, String)) -> (StatusCode, String) {
    let res = c.get(path, Some(cookie)).await;
    let status = res.status();
    (status, body(res).await)
}

struct World {
    c: Console,
    a: Fleet,
    b: Fleet,
}

async fn world() -> World {
    let c = Console::new(false).await;
    let a = fleet(&c, "acme").await;
    let b = fleet(&c, "globex").await;
    World { c, a, b }
}

#[tokio::test]
async fn pages_and_json_of_another_tenant_are_not_found() {
    let w = world().await;
    let vera = member(&w.c, "vera", w.a.agent.tenant(), Role::Viewer).await;
    for (own, other) in [
        (format!("/devices/{}", w.a.device), format!("/devices/{}", w.b.device)),
        (
            format!("/inventory/sites/{}", w.a.agent.site()),
            format!("/inventory/sites/{}", w.b.agent.site()),
        ),
        (
            format!("/api/devices/{}/metrics?metric=cpu_load&range=1h", w.a.device),
            format!("/api/devices/{}/metrics?metric=cpu_load&range=1h", w.b.device),
        ),
    ] {
        assert_eq!(get(&w.c, &own, &vera).await.0, StatusCode::OK, "{own}");
        let (status, text) = get(&w.c, &other, &vera).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
        assert!(text.to_lowercase().contains("not found"), "{other}: {text}");
    }
    // Lists and the overview hold only the own tenant.
    for path in ["/api/devices", "/api/overview", "/devices", "/"] {
        let (status, text) = get(&w.c, path, &vera).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(text.contains("acme") && !text.contains("globex"), "{path}: {text}");
    }
}

#[tokio::test]
async fn actions_answer_not_found_for_other_tenants_and_forbidden_for_low_roles() {
    let w = world().await;
    let vera = member(&w.c, "vera", w.a.agent.tenant(), Role::Viewer).await;
    let otto = member(&w.c, "otto", w.a.agent.tenant(), Role::Operator).await;
    let (a_dev, b_dev) = (w.a.device, w.b.device);
    let (a_site, b_site) = (w.a.agent.site(), w.b.agent.site());
    // Operator actions: a viewer is denied in the own tenant, and finds
    // nothing in the other.
    for (own, other) in [
        (format!("/devices/{a_dev}/delete"), format!("/devices/{b_dev}/delete")),
        (format!("/devices/{a_dev}/backup"), format!("/devices/{b_dev}/backup")),
        (
            format!("/inventory/sites/{a_site}/scan"),
            format!("/inventory/sites/{b_site}/scan"),
        ),
    ] {
        let (status, text) = post(&w.c, &own, &vera).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{own}");
        assert!(text.contains("Permission denied"), "{own}: {text}");
        assert_eq!(post(&w.c, &other, &vera).await.0, StatusCode::NOT_FOUND, "{other}");
        assert_eq!(post(&w.c, &other, &otto).await.0, StatusCode::NOT_FOUND, "{other}");
    }
    assert_eq!(get(&w.c, "/devices/new", &vera).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&w.c, "/devices/new", &otto).await.0, StatusCode::OK);
    // Revealing a backup's secrets needs tenant admin: an operator is denied.
    let reveal = |d| format!("/devices/{d}/config/1/reveal");
    assert_eq!(post(&w.c, &reveal(a_dev), &otto).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&w.c, &reveal(b_dev), &otto).await.0, StatusCode::NOT_FOUND);
    // The operator may act in the own tenant.
    assert_eq!(
        post(&w.c, &format!("/devices/{a_dev}/delete"), &otto).await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn administration_is_for_admins_of_their_tenants() {
    let w = world().await;
    let vera = member(&w.c, "vera", w.a.agent.tenant(), Role::Viewer).await;
    let ada = member(&w.c, "ada", w.a.agent.tenant(), Role::Admin).await;
    for path in ["/admin/users", "/admin/tokens", "/admin/agents", "/admin/tenants"] {
        assert_eq!(get(&w.c, path, &vera).await.0, StatusCode::FORBIDDEN, "{path}");
        let (status, text) = get(&w.c, path, &ada).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!text.contains("globex"), "{path}: {text}");
    }
    // MSP-only: creating tenants.
    assert_eq!(post(&w.c, "/admin/tenants", &ada).await.0, StatusCode::FORBIDDEN);
    // Another tenant's site cannot be deleted; a site of the own one can.
    let b_site = w.b.agent.site();
    assert_eq!(
        post(&w.c, &format!("/admin/sites/{b_site}/delete"), &ada).await.0,
        StatusCode::NOT_FOUND
    );
    let a_site = w.a.agent.site();
    assert_eq!(
        post(&w.c, &format!("/admin/sites/{a_site}/delete"), &vera).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&w.c, &format!("/admin/sites/{a_site}/delete"), &ada).await.0,
        StatusCode::SEE_OTHER
    );
}

#[test]
fn every_route_is_in_the_table_with_a_need() {
    let table = crate::route_table();
    let find = |m: Method, p: &str| table.iter().find(|r| r.method == m && r.path == p).map(|r| r.need);
    assert_eq!(
        find(Method::POST, "/devices/{id}/config/{taken}/reveal"),
        Some(Need::Tenant(Role::Admin))
    );
    assert_eq!(
        find(Method::POST, "/devices/{id}/delete"),
        Some(Need::Tenant(Role::Operator))
    );
    assert_eq!(find(Method::GET, "/devices/{id}"), Some(Need::Tenant(Role::Viewer)));
    assert_eq!(find(Method::POST, "/admin/tenants"), Some(Need::MspAdmin));
    assert_eq!(find(Method::GET, "/events"), Some(Need::Tenant(Role::Viewer)));
    // Only sign-in pages, assets and the operability endpoints (for probes
    // and scrapers; `/metrics` can require its own token) are public.
    for r in table.iter().filter(|r| r.need == Need::Public) {
        assert!(
            r.path.starts_with("/login")
                || r.path.starts_with("/assets/")
                || ["/favicon.ico", "/healthz", "/readyz", "/metrics"].contains(&r.path),
            "{r:?}"
        );
    }
    // No route twice.
    for (i, r) in table.iter().enumerate() {
        assert!(
            !table[i + 1..].iter().any(|o| o.method == r.method && o.path == r.path),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn api_tokens_are_made_and_revoked_by_tenant_admins_of_their_tenant_only() {
    let w = world().await;
    let ada = member(&w.c, "ada", w.a.agent.tenant(), Role::Admin).await;
    let gus = member(&w.c, "gus", w.b.agent.tenant(), Role::Admin).await;
    let vera = member(&w.c, "vera", w.a.agent.tenant(), Role::Viewer).await;
    assert_eq!(get(&w.c, "/admin/api-tokens", &vera).await.0, StatusCode::FORBIDDEN);

    let create = |tenant: String, who: &(String, String)| {
        post_request(
            "/admin/api-tokens",
            Some(&who.0),
            &[
                ("csrf", &who.1),
                ("name", "psa-sync"),
                ("scope", "read"),
                ("tenant", &tenant),
                ("days", "30"),
            ],
        )
    };
    // Another tenant: not found; every tenant: only MSP administrators.
    let res = w.c.send(create(w.b.agent.tenant().to_string(), &ada)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = w.c.send(create(String::new(), &ada)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = w.c.send(create(w.a.agent.tenant().to_string(), &ada)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body(res).await;
    let secret = html
        .split("<code id=\"new-api-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the token is shown once")
        .to_owned();
    let (principal, token) = w.c.store.api_token_principal(&secret).await.expect("a working token");
    assert_eq!(principal.role_in(w.a.agent.tenant()), Some(Role::Viewer), "read scope");
    assert_eq!(principal.role_in(w.b.agent.tenant()), None);
    let listed = get(&w.c, "/admin/api-tokens", &ada).await.1;
    assert!(
        listed.contains(&token.id) && !listed.contains(&secret),
        "listed, never shown again"
    );
    assert!(!get(&w.c, "/admin/api-tokens", &gus).await.1.contains(&token.id));

    // Another tenant's admin cannot revoke it; its own admin can.
    let revoke = format!("/admin/api-tokens/{}/revoke", token.id);
    assert_eq!(post(&w.c, &revoke, &gus).await.0, StatusCode::NOT_FOUND);
    assert_eq!(post(&w.c, &revoke, &ada).await.0, StatusCode::SEE_OTHER);
    assert!(w.c.store.api_token_principal(&secret).await.is_err());
}
