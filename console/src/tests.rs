//! End-to-end tests of the console router against a real SQLite store.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use outpost_certs::AgentId;
use outpost_certs::ca::{CertificateAuthority, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::token::EnrollmentToken;
use outpost_store::{AdminScope, Store};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::feed::Feed;
use super::hashing::HashGate;
use super::{ConsoleState, router, spawn_maintenance_every};

mod isolation_matrix;
mod recordings;
mod roles;
mod second_factor;

pub(crate) const USER: &str = "admin";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct Console {
    _dir: TempDir,
    pub(crate) store: Store,
    pub(crate) state: ConsoleState,
    app: Router,
}

impl Console {
    pub(crate) async fn new(secure_cookies: bool) -> Self {
        let dir = TempDir::new().unwrap();
        Self::on(dir, None, secure_cookies).await
    }

    /// A console on the database at `url` (SQLite in `dir` without one).
    pub(crate) async fn on(dir: TempDir, url: Option<&str>, secure_cookies: bool) -> Self {
        let (store, admin) = Store::open_as_operator(dir.path(), url).await.unwrap();
        store
            .set_admin_password(&admin, USER, PASSWORD, &outpost_store::audit::Actor::local_operator())
            .await
            .unwrap();
        let state = ConsoleState::new(
            store.clone(),
            admin,
            std::sync::Arc::new(outpost_vault::Vault::generate().expect("random vault key")),
            secure_cookies,
        );
        let app = router(state.clone());
        Self {
            _dir: dir,
            store,
            state,
            app,
        }
    }

    /// The same console reaching agents through `agents`.
    pub(crate) fn with_agents(mut self, agents: std::sync::Arc<dyn crate::agent_control::AgentControl>) -> Self {
        self.state = self.state.with_agent_control(agents);
        self.app = router(self.state.clone());
        self
    }

    /// Serves `state` from now on.
    pub(crate) fn set_state(&mut self, state: ConsoleState) {
        self.state = state;
        self.app = router(self.state.clone());
    }

    pub(crate) async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(req).await.unwrap()
    }

    async fn send_from(&self, client: SocketAddr, req: Request<Body>) -> Response<Body> {
        self.app
            .clone()
            .layer(MockConnectInfo(client))
            .oneshot(req)
            .await
            .unwrap()
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        self.send(get_request(path, cookie)).await
    }

    /// A login form's token, as both the cookie and the hidden field carry it.
    async fn login_token(&self) -> String {
        let res = self.get("/login", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = cookie_value(&res, "outpost_login_csrf").expect("login CSRF cookie");
        let field = hidden_csrf(&body(res).await);
        assert_eq!(cookie, field);
        cookie
    }

    pub(crate) async fn login_from(
        &self,
        client: Option<SocketAddr>,
        username: &str,
        password: &str,
    ) -> Response<Body> {
        let token = self.login_token().await;
        let req = post_request(
            "/login",
            Some(&format!("outpost_login_csrf={token}")),
            &[("username", username), ("password", password), ("csrf", &token)],
        );
        match client {
            Some(addr) => self.send_from(addr, req).await,
            None => self.send(req).await,
        }
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> Response<Body> {
        self.login_from(None, username, password).await
    }

    /// Creates a member of `tenant` with `role` and signs them in; the
    /// `Cookie` header value for their session.
    pub(crate) async fn member(
        &self,
        name: &str,
        password: &str,
        tenant: outpost_certs::TenantId,
        role: outpost_store::members::Role,
    ) -> String {
        let operator = outpost_store::members::Principal::local_operator(&outpost_store::AdminScope::for_tests());
        self.store
            .create_user(
                &operator,
                name,
                password,
                outpost_store::members::NewUser::Member(tenant, role),
                &outpost_store::audit::Actor::local_operator(),
            )
            .await
            .expect("create the member");
        let res = self.login(name, password).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{name} signs in");
        format!(
            "outpost_session={}",
            cookie_value(&res, "outpost_session").expect("session cookie")
        )
    }

    /// Signs in; returns the `Cookie` header value for the session.
    pub(crate) async fn session(&self) -> String {
        let res = self.login(USER, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        format!(
            "outpost_session={}",
            cookie_value(&res, "outpost_session").expect("session cookie")
        )
    }
}

pub(crate) fn get_request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::empty()).unwrap()
}

pub(crate) fn post_request(path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::from(form_encode(fields))).unwrap()
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) async fn body(res: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn set_cookies(res: &Response<Body>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn set_cookie(res: &Response<Body>, name: &str) -> Option<String> {
    set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

pub(crate) fn cookie_value(res: &Response<Body>, name: &str) -> Option<String> {
    let c = set_cookie(res, name)?;
    let value = c.split(';').next()?.split_once('=')?.1.to_owned();
    (!value.is_empty()).then_some(value)
}

pub(crate) fn hidden_csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub(crate) fn location(res: &Response<Body>) -> &str {
    res.headers().get(header::LOCATION).expect("Location").to_str().unwrap()
}

pub(crate) async fn enroll(store: &Store, tenant: &str, site: &str, host: &str) -> AgentId {
    let admin = AdminScope::for_tests();
    let ensured = store.ensure_site(&admin, tenant, site).await.unwrap();
    let ca = CertificateAuthority::generate("console test CA").unwrap();
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(
            &admin,
            &ensured,
            &token,
            Duration::from_secs(600),
            &outpost_store::audit::Actor::local_operator(),
        )
        .await
        .unwrap();
    let key = generate_key_and_csr(host).unwrap();
    let enrolled = store
        .enroll(
            &token,
            &outpost_store::tokens::EnrollAsk {
                hostname: host,
                version: "1.2.3",
                csr_key_sha256: String::new(),
                previous: None,
            },
            None,
            |id| {
                ca.sign_agent_csr(&key.csr_der, id, Validity::starting_now(Duration::from_secs(3600)))
                    .map_err(|e| e.to_string())
            },
        )
        .await
        .unwrap();
    enrolled.identity.agent
}

/// The next complete SSE event from a body stream, within `wait`.
pub(crate) async fn next_event(
    stream: &mut axum::body::BodyDataStream,
    buf: &mut String,
    wait: Duration,
) -> Option<String> {
    tokio::time::timeout(wait, async {
        loop {
            // Keep-alive comments are not events.
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                if !event.starts_with(':') {
                    return Some(event);
                }
            }
            let chunk = stream.next().await?.unwrap();
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .expect("timed out waiting for an event")
}

#[tokio::test]
async fn unauthenticated_requests_are_refused() {
    let c = Console::new(false).await;

    let res = c.get("/", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");

    for path in ["/api/overview", "/events"] {
        let res = c.get(path, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(body(res).await.contains("not signed in"), "{path}");
    }

    let res = c.get("/api/overview", Some("outpost_session=forged")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stale_session_cookie_redirects_and_is_cleared() {
    let c = Console::new(true).await;
    let res = c.get("/", Some("outpost_session=stale")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&res, "outpost_session").expect("cookie cleared");
    assert!(
        cleared.starts_with("outpost_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let c = Console::new(false).await;
    let session = c.session().await;
    let responses = [
        ("/login", c.get("/login", None).await),
        ("/", c.get("/", Some(&session)).await),
        ("/ unauthenticated", c.get("/", None).await),
        ("/api/overview", c.get("/api/overview", Some(&session)).await),
        ("/nowhere", c.get("/nowhere", None).await),
        ("/assets/console.css", c.get("/assets/console.css", None).await),
        ("/assets/console.js", c.get("/assets/console.js", None).await),
    ];
    for (what, res) in &responses {
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(directives.contains(&directive), "{what}: {csp} lacks {directive}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        if what.starts_with("/assets/") {
            assert_eq!(res.status(), StatusCode::OK, "{what}");
            assert!(h["cache-control"].to_str().unwrap().contains("max-age"), "{what}");
        } else {
            assert_eq!(h["cache-control"], "no-store", "{what}");
        }
    }
    let [_, _, _, _, (_, not_found), (_, css), (_, js)] = responses;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert!(
        css.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        js.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(body(js).await.contains("EventSource"));
}

#[tokio::test]
async fn login_form_sets_csrf_cookie() {
    for secure in [false, true] {
        let c = Console::new(secure).await;
        let res = c.get("/login", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = set_cookie(&res, "outpost_login_csrf").expect("login CSRF cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        let token = cookie_value(&res, "outpost_login_csrf").unwrap();
        let html = body(res).await;
        assert_eq!(hidden_csrf(&html), token);
        assert!(html.contains(r#"name="username""#) && html.contains(r#"name="password""#));

        // The token survives a reload so a second open tab keeps working.
        let again = c.get("/login", Some(&format!("outpost_login_csrf={token}"))).await;
        assert_eq!(
            cookie_value(&again, "outpost_login_csrf").as_deref(),
            Some(token.as_str())
        );
    }
}

#[tokio::test]
async fn login_with_wrong_password_is_refused() {
    let c = Console::new(false).await;
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        let res = c.login(user, password).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(cookie_value(&res, "outpost_session").is_none());
        let html = body(res).await;
        assert!(html.contains("Invalid username or password."));
        assert!(
            html.contains(&format!(r#"value="{user}""#)),
            "user name kept in the form"
        );
    }
}

#[tokio::test]
async fn login_requires_matching_csrf() {
    let c = Console::new(false).await;
    let token = c.login_token().await;
    let other = c.login_token().await;
    let creds = [("username", USER), ("password", PASSWORD)];
    let cases = [
        (
            "mismatch",
            Some(format!("outpost_login_csrf={token}")),
            Some(other.as_str()),
        ),
        ("no cookie", None, Some(token.as_str())),
        ("no field", Some(format!("outpost_login_csrf={token}")), None),
        ("both empty", Some("outpost_login_csrf=".to_owned()), Some("")),
    ];
    for (what, cookie, field) in cases {
        let mut fields = creds.to_vec();
        if let Some(f) = field {
            fields.push(("csrf", f));
        }
        let res = c.send(post_request("/login", cookie.as_deref(), &fields)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(cookie_value(&res, "outpost_session").is_none(), "{what}");
        assert!(
            body(res).await.contains("expired or did not come from this console"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn login_sets_a_strict_session_cookie() {
    for secure in [false, true] {
        let c = Console::new(secure).await;
        let res = c.login(USER, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/");
        let cookie = set_cookie(&res, "outpost_session").expect("session cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        // The pre-login token is spent.
        let csrf = set_cookie(&res, "outpost_login_csrf").expect("login CSRF cookie cleared");
        assert!(csrf.contains("Max-Age=0"), "{csrf}");

        let session = format!("outpost_session={}", cookie_value(&res, "outpost_session").unwrap());
        assert_eq!(c.get("/", Some(&session)).await.status(), StatusCode::OK);
        // Already signed in: the login page sends you home.
        let res = c.get("/login", Some(&session)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/");
    }
}

#[tokio::test]
async fn overview_shows_tenants_sites_and_agents() {
    let c = Console::new(false).await;
    let agent = enroll(&c.store, "Acme Dental", "Main Street", "reception-pc").await;
    c.store
        .ensure_site(&AdminScope::for_tests(), "Acme Dental", "Warehouse")
        .await
        .unwrap();
    let session = c.session().await;

    let res = c.get("/", Some(&session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = body(res).await;
    assert!(html.contains("Sites &amp; agents"));
    for text in [
        "Acme Dental",
        "Main Street",
        "Warehouse",
        "reception-pc",
        "1.2.3",
        "No agents enrolled.",
    ] {
        assert!(html.contains(text), "page lacks {text:?}");
    }
    let row_start = html.find(&format!(r#"data-agent-id="{agent}""#)).expect("agent row");
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    assert!(row.contains(r#"class="status offline""#), "{row}");
    assert!(row.contains(&agent.to_string()[..8]), "{row}");
    assert!(row.contains("never"), "never connected: {row}");
    // The sign-out form carries the session's token.
    let csrf = c
        .store
        .session(session.trim_start_matches("outpost_session="))
        .await
        .unwrap()
        .unwrap()
        .csrf_token;
    assert_eq!(hidden_csrf(&html), csrf);
    assert!(html.contains(r#"<script src="/assets/console.js?v="#));
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "no inline styles under the CSP"
    );

    let res = c.get("/api/overview", Some(&session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
    let tenant = &json["tenants"][0];
    assert_eq!(tenant["name"], "Acme Dental");
    let sites = tenant["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    assert_eq!(sites[0]["name"], "Main Street");
    assert_eq!(sites[1]["name"], "Warehouse");
    assert_eq!(sites[1]["agents"].as_array().unwrap().len(), 0);
    let a = &sites[0]["agents"][0];
    assert_eq!(a["id"], agent.to_string());
    assert_eq!(a["hostname"], "reception-pc");
    assert_eq!(a["online"], false);
    assert_eq!(a["revoked"], false);
    assert_eq!(json["totals"]["agents"], 1);
    assert_eq!(json["totals"]["online"], 0);
}

#[tokio::test]
async fn events_stream_the_overview_until_sign_out() {
    let c = Console::new(false).await;
    let agent = enroll(&c.store, "Acme", "HQ", "host-a").await;
    let session = c.session().await;

    let res = c.get("/events", Some(&session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let mut stream = res.into_body().into_data_stream();
    let mut buf = String::new();

    let first = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("first event");
    assert!(first.starts_with("event: overview\n"), "{first}");
    let data = first.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let json: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(json["tenants"][0]["sites"][0]["agents"][0]["id"], agent.to_string());

    let second = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("periodic event");
    assert!(second.starts_with("event: overview\n"), "{second}");

    c.store
        .logout(
            session.trim_start_matches("outpost_session="),
            &outpost_store::audit::Actor::local_operator(),
        )
        .await
        .unwrap();
    let last = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("sign-out event");
    assert!(last.starts_with("event: signed-out\n"), "{last}");
    assert!(
        next_event(&mut stream, &mut buf, Duration::from_secs(5))
            .await
            .is_none(),
        "stream ends"
    );
}

#[tokio::test]
async fn logout_requires_the_session_csrf_token() {
    let c = Console::new(true).await;
    let session = c.session().await;
    let csrf = hidden_csrf(&body(c.get("/", Some(&session)).await).await);

    let res = c
        .send(post_request("/logout", Some(&session), &[("csrf", "wrong")]))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c.send(post_request("/logout", Some(&session), &[])).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.get("/api/overview", Some(&session)).await.status(),
        StatusCode::OK,
        "still signed in"
    );

    let res = c
        .send(post_request("/logout", Some(&session), &[("csrf", &csrf)]))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
    let cleared = set_cookie(&res, "outpost_session").expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0") && cleared.contains("Secure"), "{cleared}");

    assert_eq!(
        c.get("/api/overview", Some(&session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(location(&c.get("/", Some(&session)).await), "/login");
    // Signing out again without a session just leads to the login page.
    let res = c
        .send(post_request("/logout", Some(&session), &[("csrf", &csrf)]))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn sixth_failed_login_is_rate_limited() {
    let c = Console::new(false).await;
    for _ in 0..5 {
        assert_eq!(c.login(USER, "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    let res = c.login(USER, "wrong").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    let html = body(res).await;
    assert!(
        html.contains("Too many failed sign-in attempts. Try again in "),
        "{html}"
    );

    // Even the right password waits.
    let res = c.login(USER, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(cookie_value(&res, "outpost_session").is_none());
}

#[tokio::test]
async fn rate_limit_is_per_client_and_per_user() {
    let c = Console::new(false).await;
    let attacker: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    for i in 0..5 {
        let res = c.login_from(Some(attacker), &format!("guess{i}"), "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = c.login_from(Some(attacker), "guess5", "wrong").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "same client, new name");
    let operator: SocketAddr = "198.51.100.1:50000".parse().unwrap();
    let res = c.login_from(Some(operator), USER, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "another client is not affected");

    // One client hammering the administrator's name does not lock them out.
    let pest: SocketAddr = "192.0.2.8:40000".parse().unwrap();
    for _ in 0..5 {
        assert_eq!(
            c.login_from(Some(pest), USER, "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        c.login_from(Some(pest), USER, "wrong").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        c.login_from(Some(operator), USER, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );

    // Many clients on one name (a botnet) slow the name down: a delay, capped,
    // never a lock.
    for i in 0..super::rate_limit::FREE_NAME_FAILURES {
        let client = SocketAddr::from(([203, 0, 113, i as u8], 40000));
        assert_eq!(
            c.login_from(Some(client), USER, "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = c.login_from(Some(operator), USER, PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "same name from many clients"
    );
    let retry: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=super::rate_limit::MAX_NAME_DELAY.as_secs()).contains(&retry),
        "a short delay, not a lock: {retry}"
    );
}

#[tokio::test]
async fn successful_login_resets_the_limit() {
    let c = Console::new(false).await;
    for _ in 0..4 {
        assert_eq!(c.login(USER, "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(c.login(USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    for _ in 0..5 {
        assert_eq!(c.login(USER, "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(c.login(USER, "wrong").await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn names_are_html_escaped() {
    let c = Console::new(false).await;
    enroll(
        &c.store,
        "<script>x</script>",
        r#"Site "A" & <b>B</b>"#,
        "<img src=x onerror=alert(1)>",
    )
    .await;
    let session = c.session().await;
    let html = body(c.get("/", Some(&session)).await).await;
    // Askama writes numeric character references.
    assert!(html.contains("&#60;script&#62;x&#60;/script&#62;"), "{html}");
    assert!(!html.contains("<script>x</script>"));
    assert!(!html.contains("<b>B</b>"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"));

    // A user name typed into the login form is escaped when echoed back.
    let res = c.login(r#""><script>y</script>"#, "wrong").await;
    let html = body(res).await;
    assert!(!html.contains("<script>y</script>"));
    assert!(html.contains("&#34;&#62;&#60;script&#62;y&#60;/script&#62;"));
}

/// Console modules may only depend on each other in one direction: a cycle
/// (a page importing shared code that imports the page back) is how the old
/// `views` module tangled every page together.
#[test]
fn console_modules_import_each_other_without_a_cycle() {
    use std::collections::{BTreeMap, BTreeSet};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name == "lib" || name == "tests" {
            continue;
        }
        // A folder is one module made of its files. Inside it `super::` names
        // the folder's own files, so only `crate::` leads to other modules.
        let (sources, prefixes): (Vec<String>, &[&str]) = if path.is_dir() {
            // The folder's tests use the crate's test helpers.
            let files = std::fs::read_dir(&path)
                .unwrap()
                .map(|f| f.unwrap().path())
                .filter(|f| !f.ends_with("tests.rs"));
            (
                files.map(|f| std::fs::read_to_string(f).unwrap()).collect(),
                &["crate::"],
            )
        } else {
            // Every module is a child of lib.rs, so `super::` and `crate::` name the same things.
            (vec![std::fs::read_to_string(&path).unwrap()], &["super::", "crate::"])
        };
        let mut deps = BTreeSet::new();
        for source in &sources {
            // A file's own unit tests say `use super::*` about the file itself.
            let code = source.split("#[cfg(test)]\nmod tests").next().unwrap();
            for prefix in prefixes {
                for (at, _) in code.match_indices(prefix) {
                    let rest = &code[at + prefix.len()..];
                    let target: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    // `super::Thing` (an item of lib.rs) makes the crate root a dependency too.
                    let is_module = dir.join(format!("{target}.rs")).exists() || dir.join(&target).is_dir();
                    deps.insert(if is_module { target } else { "lib".to_owned() });
                }
            }
        }
        deps.remove(&name);
        graph.insert(name, deps);
    }
    assert!(graph.len() > 5, "read the console modules: {graph:?}");
    assert!(
        graph.values().all(|d| !d.contains("lib")),
        "modules import from lib.rs, which imports them: {graph:?}"
    );

    fn visit<'a>(
        at: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(start) = path.iter().position(|m| *m == at) {
            panic!("import cycle: {} -> {at}", path[start..].join(" -> "));
        }
        if !done.insert(at) {
            return;
        }
        path.push(at);
        for next in graph.get(at).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

/// Waits (up to 10 s) until the store holds `rows` session rows.
async fn until_session_rows(store: &Store, rows: i64) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.session_rows().await.unwrap() != rows {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("session rows never reached {rows}"));
}

#[tokio::test]
async fn maintenance_prunes_expired_sessions_periodically_until_shutdown() {
    let c = Console::new(false).await;
    let first = c.session().await;
    c.store.expire_all_sessions().await.unwrap();
    let live = c.session().await;
    assert_eq!(c.store.session_rows().await.unwrap(), 2);

    let shutdown = CancellationToken::new();
    let task = spawn_maintenance_every(&c.state, shutdown.clone(), Duration::from_millis(50));
    until_session_rows(&c.store, 1).await;
    assert_eq!(c.get("/api/overview", Some(&live)).await.status(), StatusCode::OK);
    assert_eq!(
        c.get("/api/overview", Some(&first)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Not only at start: a session that expires later goes too.
    c.store.expire_all_sessions().await.unwrap();
    until_session_rows(&c.store, 0).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("maintenance stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn sign_ins_beyond_the_hashing_queue_get_503_and_at_most_workers_hash_at_once() {
    const WORKERS: usize = 2;
    const WAITING: usize = 3;
    const LOGINS: usize = 24;
    let mut c = Console::new(false).await;
    let gate = Arc::new(HashGate::new(WORKERS, WAITING));
    c.state.hashing = gate.clone();
    c.app = router(c.state.clone());

    // Occupy every worker, so sign-ins queue instead of finishing.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let blockers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (gate, released) = (gate.clone(), released.clone());
            tokio::spawn(async move { gate.run(move || released.lock().unwrap().recv().unwrap()).await })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(10), async {
        while gate.running() < WORKERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the workers are taken");

    let mut tokens = Vec::new();
    for _ in 0..LOGINS {
        tokens.push(c.login_token().await);
    }
    let mut logins: FuturesUnordered<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let req = post_request(
                "/login",
                Some(&format!("outpost_login_csrf={token}")),
                &[("username", USER), ("password", PASSWORD), ("csrf", token)],
            );
            // One address each, so the rate limiter stays out of the way.
            c.send_from(SocketAddr::from(([203, 0, 113, i as u8], 40000)), req)
        })
        .collect();

    // Nothing hashes until the workers are released: every answer before then
    // is a refusal, and all but the queued sign-ins are refused.
    for _ in 0..LOGINS - WAITING {
        let res = logins.next().await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        assert!(cookie_value(&res, "outpost_session").is_none());
        assert!(body(res).await.contains("busy with other sign-ins"));
    }
    for _ in 0..WORKERS {
        release.send(()).unwrap();
    }
    let mut signed_in = 0;
    while let Some(res) = logins.next().await {
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "a queued sign-in goes through");
        assert!(cookie_value(&res, "outpost_session").is_some());
        signed_in += 1;
    }
    assert_eq!(signed_in, WAITING);
    assert_eq!(gate.peak(), WORKERS, "never more than {WORKERS} hashes at once");
    for blocker in blockers {
        blocker.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_hundred_open_streams_share_one_read_per_interval() {
    const STREAMS: usize = 100;
    // Short and in real time: the reads are bounded by elapsed time below, so
    // a slow machine cannot fail the test, only a read per stream can.
    const INTERVAL: Duration = Duration::from_millis(100);
    let mut c = Console::new(false).await;
    let agent = enroll(&c.store, "Acme", "HQ", "host-a").await;
    let feed = Arc::new(Feed::new(c.store.clone(), AdminScope::for_tests(), INTERVAL));
    c.state.feed = feed.clone();
    c.app = router(c.state.clone());
    let session = c.session().await;

    let started = tokio::time::Instant::now();
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let res = c.get("/events", Some(&session)).await;
        assert_eq!(res.status(), StatusCode::OK);
        streams.push(res.into_body().into_data_stream());
    }
    futures::future::join_all(streams.iter_mut().map(|stream| async move {
        let mut buf = String::new();
        for _ in 0..3 {
            let event = next_event(stream, &mut buf, Duration::from_secs(10))
                .await
                .expect("event");
            assert!(event.starts_with("event: overview\n"), "{event}");
            assert!(event.contains(&agent.to_string()), "{event}");
        }
    }))
    .await;
    let (reads, elapsed) = (feed.refreshes(), started.elapsed());
    let allowed = (elapsed.as_millis() / INTERVAL.as_millis()) as u64 + 1;
    assert!(
        (3..=allowed).contains(&reads),
        "{reads} feed reads in {elapsed:?} for {STREAMS} streams (at most {allowed})"
    );

    drop(streams);
    tokio::time::timeout(Duration::from_secs(10), async {
        while feed.is_running() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the feed stops once every stream has closed");
}
