//! The tenant isolation matrix: every row of the route table
//! ([`crate::route_table`]) through the real router, on SQLite and, when
//! `OUTPOST_TEST_DATABASE_URL` is set, PostgreSQL.
//!
//! Two tenants, acme (A) and globex (B), each with a site, agents, a device
//! with a configuration backup, discovered hosts, scans, a discovery job, a
//! user, an enrollment token and an API token. For every route:
//! - without a session, pages (and forms) redirect to `/login` and the JSON
//!   and event-stream endpoints answer 401;
//! - an admin and an operator of A asking for B's object get 404; routes
//!   without an object show nothing of B;
//! - writes (`Tenant(Operator)`, `Tenant(Admin)`) by a viewer of A on A's own
//!   objects get 403, and so do admin-only routes for an operator;
//! - MSP-only routes give a tenant admin (and operator) 403;
//! - public routes are listed, not checked.
//!
//! Path parameters are filled from [`PARAMS`], keyed by the literal segment
//! before the parameter and its name. A route with a parameter missing there
//! fails the test by name, so a new route cannot go unchecked. Afterwards
//! nothing of either tenant has changed.
use std::time::Duration;

use axum::http::{Method, StatusCode, header};

use outpost_certs::ca::CertificateAuthority;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, SiteId, TenantId};
use outpost_store::api_tokens::{DEFAULT_TTL_MS, NewApiToken, TokenBinding, TokenScope};
use outpost_store::audit::Actor;
use outpost_store::devices::DeviceId;
use outpost_store::inventory::addr::parse_targets;
use outpost_store::inventory::jobs::NewJob;
use outpost_store::inventory::views::HostQuery;
use outpost_store::inventory::{HostId, JobId};
use outpost_store::members::{NewUser, Principal, Role};
use outpost_store::scope::Viewer;
use outpost_store::{AdminScope, Store};

use super::{Console, body, get_request, hidden_csrf, next_event, post_request};
use crate::access::{Need, RouteSpec};
use crate::devices::tests::{consoles, fleet};
use crate::inventory::test_seed::seed;

const PASSWORD: &str = "password-123";

/// The kinds of object a path parameter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Device,
    /// A configuration backup of the device, by the time it was taken.
    Backup,
    Host,
    Site,
    Job,
    Scan,
    Tenant,
    User,
    EnrollmentToken,
    ApiToken,
    Agent,
    /// A terminal recording of the device.
    Recording,
}

/// Which object each path parameter names: (the literal segment before it,
/// its name, the kind).
const PARAMS: &[(&str, &str, Kind)] = &[
    ("devices", "id", Kind::Device),
    ("config", "taken", Kind::Backup),
    ("hosts", "id", Kind::Host),
    ("sites", "site", Kind::Site),
    ("sites", "id", Kind::Site),
    ("jobs", "id", Kind::Job),
    ("scans", "id", Kind::Scan),
    ("tenants", "id", Kind::Tenant),
    ("users", "id", Kind::User),
    ("tokens", "id", Kind::EnrollmentToken),
    ("api-tokens", "id", Kind::ApiToken),
    ("agents", "id", Kind::Agent),
    ("recordings", "recording", Kind::Recording),
];

/// The kinds of object `pattern`'s parameters name, or which ones
/// [`PARAMS`] does not know.
fn kinds(pattern: &str) -> Result<Vec<Kind>, Vec<String>> {
    let segments: Vec<&str> = pattern.split('/').collect();
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        let before = if i > 0 { segments[i - 1] } else { "" };
        match PARAMS.iter().find(|(b, n, _)| *b == before && *n == name) {
            Some((_, _, kind)) => found.push(*kind),
            None => unknown.push(format!("{{{name}}} after /{before}/")),
        }
    }
    if unknown.is_empty() { Ok(found) } else { Err(unknown) }
}

/// One tenant's objects.
struct Objects {
    name: &'static str,
    tenant: TenantId,
    site: SiteId,
    device: DeviceId,
    taken: i64,
    host: HostId,
    job: JobId,
    scan: String,
    user: String,
    token: String,
    api_token: String,
    agent: AgentId,
    recording: String,
}

impl Objects {
    fn get(&self, kind: Kind) -> String {
        match kind {
            Kind::Device => self.device.to_string(),
            Kind::Backup => self.taken.to_string(),
            Kind::Host => self.host.to_string(),
            Kind::Site => self.site.to_string(),
            Kind::Job => self.job.to_string(),
            Kind::Scan => self.scan.clone(),
            Kind::Tenant => self.tenant.to_string(),
            Kind::User => self.user.clone(),
            Kind::EnrollmentToken => self.token.clone(),
            Kind::ApiToken => self.api_token.clone(),
            Kind::Agent => self.agent.to_string(),
            Kind::Recording => self.recording.clone(),
        }
    }

    /// Text that gives this tenant away on a page of another.
    fn markers(&self) -> Vec<String> {
        let mut out = vec![self.name.to_owned()];
        out.extend(
            [
                Kind::Device,
                Kind::Host,
                Kind::Site,
                Kind::Job,
                Kind::Tenant,
                Kind::User,
                Kind::EnrollmentToken,
                Kind::ApiToken,
                Kind::Agent,
                Kind::Recording,
            ]
            .map(|k| self.get(k)),
        );
        out
    }

    /// `pattern` with its parameters naming these objects.
    fn path(&self, pattern: &str) -> String {
        let kinds = kinds(pattern).unwrap_or_default();
        let mut kinds = kinds.into_iter();
        let mut path = pattern
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    kinds.next().map(|k| self.get(k)).unwrap_or_default()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        // The one route whose query has required values.
        if pattern == "/api/devices/{id}/metrics" {
            path.push_str("?metric=cpu_load&range=1h");
        }
        path
    }

    /// The fields a POST to `pattern` carries besides its token, aimed at
    /// these objects: valid, so that only the access check can refuse it.
    fn form(&self, pattern: &str) -> Vec<(&'static str, String)> {
        let s = |v: &str| v.to_owned();
        match pattern {
            "/devices" => vec![
                ("site", self.site.to_string()),
                ("address", s("192.0.2.10")),
                ("api_port", s("8728")),
                ("ssh_port", s("22")),
                ("username", s("api")),
                ("password", s("pw")),
                ("interval", s("60")),
            ],
            "/inventory/sites/{site}/jobs" => vec![
                ("targets", s("10.1.0.0/24")),
                ("ports", s("22")),
                ("rate", s("100")),
                ("interval", s("3600")),
            ],
            "/inventory/sites/{site}/profile" => vec![("username", s("admin")), ("password", s("pw"))],
            "/admin/tenants" | "/admin/tenants/{id}/rename" | "/admin/tenants/{id}/sites" => {
                vec![("name", s("renamed"))]
            }
            "/admin/settings" => vec![("require_totp", s("1"))],
            "/admin/users" => vec![
                ("username", s("mallory")),
                ("password", s("a long enough password")),
                ("tenant", self.tenant.to_string()),
                ("role", s("admin")),
            ],
            "/admin/users/{id}/role" => vec![("tenant", self.tenant.to_string()), ("role", s("admin"))],
            "/admin/users/{id}/msp-admin" => vec![("on", s("1"))],
            "/admin/users/{id}/password" => vec![("password", s("another long password"))],
            "/admin/tokens" => vec![("site", self.site.to_string()), ("hours", s("1"))],
            "/admin/api-tokens" => vec![
                ("name", s("matrix")),
                ("scope", s("admin")),
                ("tenant", self.tenant.to_string()),
                ("days", s("30")),
            ],
            _ => Vec::new(),
        }
    }
}

/// A signed-in user: the session cookie and its CSRF token.
struct Who {
    label: &'static str,
    cookie: String,
    csrf: String,
}

async fn sign_in(c: &Console, label: &'static str, name: &str, tenant: TenantId, role: Role) -> Who {
    let cookie = c.member(name, PASSWORD, tenant, role).await;
    let csrf = hidden_csrf(&body(c.get("/account", Some(&cookie)).await).await);
    Who { label, cookie, csrf }
}

/// Everything a tenant needs for every route: see the module docs.
async fn objects(c: &Console, name: &'static str, ca: &CertificateAuthority) -> Objects {
    let store = &c.store;
    let admin = AdminScope::for_tests();
    let fleet = fleet(c, name).await;
    let seeded = seed(c, name).await;
    let tenant = fleet.agent.tenant();
    let scope = admin.tenant_scope(tenant);
    let site = store.ensure_site(&admin, name, "hq").await.unwrap();
    let taken = store
        .config_versions(&Viewer::Tenant(scope), fleet.device)
        .await
        .unwrap()
        .first()
        .expect("the fleet's backup")
        .taken_at_ms;
    let job = store
        .add_discovery_job(
            &scope,
            &NewJob {
                id: JobId::random(),
                site: site.site,
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
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(
            &admin,
            &site,
            &token,
            Duration::from_secs(3600),
            &Actor::local_operator(),
        )
        .await
        .unwrap();
    let user = store
        .create_user(
            &Principal::local_operator(&admin),
            &format!("{name}-member"),
            PASSWORD,
            NewUser::Member(tenant, Role::Admin),
            &Actor::local_operator(),
        )
        .await
        .unwrap();
    let (api_token, _) = store
        .create_api_token(
            &NewApiToken {
                name: "sync",
                scope: TokenScope::Read,
                binding: TokenBinding::Tenant(scope),
                created_by: &user,
                ttl_ms: DEFAULT_TTL_MS,
            },
            &Actor::local_operator(),
        )
        .await
        .unwrap();
    let recording = store
        .start_recording(
            &scope,
            fleet.device,
            &format!("{name}-tech"),
            "t1",
            r#"{"version":2,"width":80,"height":24}"#,
        )
        .await
        .unwrap();
    store
        .append_recording(&scope, &recording, &format!("[0.5,\"o\",\"{name} was here\"]\n"))
        .await
        .unwrap();
    store.finish_recording(&scope, &recording).await.unwrap();
    Objects {
        name,
        tenant,
        site: site.site,
        device: fleet.device,
        taken,
        host: seeded.pc,
        job,
        scan: format!("{name}-s1"),
        user,
        token: token.id().to_owned(),
        api_token: api_token.id,
        agent: fleet.agent.agent(),
        recording,
    }
}

/// Everything of every tenant that a route could change, as text.
async fn snapshot(store: &Store) -> String {
    let admin = AdminScope::for_tests();
    let all = Viewer::Admin(admin);
    let operator = Principal::local_operator(&admin);
    let hosts = HostQuery {
        include_gone: true,
        ..HostQuery::default()
    };
    format!(
        "{:#?}",
        (
            store.list_devices(&all).await.unwrap(),
            store.list_hosts(&all, &hosts).await.unwrap(),
            store.list_discovery_jobs(&all, None).await.unwrap(),
            store.sites(&all).await.unwrap(),
            store.list_tenants(&operator).await.unwrap(),
            store.list_users(&operator).await.unwrap(),
            store.list_tokens(&all).await.unwrap(),
            store.all_api_tokens(&admin).await.unwrap(),
            store.list_agents(&all).await.unwrap(),
            reveals(store).await,
        )
    )
}

/// Who saw which configuration's secrets or terminal recording: a refused
/// read leaves no record.
async fn reveals(store: &Store) -> Vec<String> {
    let query = outpost_store::audit::AuditQuery {
        from_ms: 0,
        to_ms: i64::MAX,
        tenant: None,
        after_seq: 0,
        limit: 100_000,
        newest_first: false,
    };
    store
        .audit_records(&Viewer::Admin(AdminScope::for_tests()), &query)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "device.config_reveal" || r.action == "recording.view")
        .map(|r| format!("{} {}", r.actor, r.object))
        .collect()
}

/// An answer: its status, where it redirects, and its body (the first event
/// of an event stream).
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn send(
    c: &Console,
    route: &RouteSpec,
    path: &str,
    who: Option<&Who>,
    fields: &[(&'static str, String)],
) -> Answer {
    let cookie = who.map(|w| w.cookie.as_str());
    let req = if route.method == Method::POST {
        let mut all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(who) = who {
            all.push(("csrf", &who.csrf));
        }
        post_request(path, cookie, &all)
    } else {
        assert_eq!(route.method, Method::GET, "{route:?}: only GET and POST are routed");
        get_request(path, cookie)
    };
    let res = c.send(req).await;
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let streams = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.to_str().unwrap_or("").starts_with("text/event-stream"));
    let body = if streams {
        let mut stream = res.into_body().into_data_stream();
        let mut buf = String::new();
        next_event(&mut stream, &mut buf, Duration::from_secs(10))
            .await
            .unwrap_or_default()
    } else {
        body(res).await
    };
    Answer { status, location, body }
}

/// Whether a route answers JSON or an event stream (401 without a session)
/// rather than a page (a redirect to sign-in).
fn answers_json(pattern: &str) -> bool {
    pattern.starts_with("/api/") || pattern == "/events" || pattern.ends_with("/live")
}

/// What went wrong with one row, if anything.
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, route: &RouteSpec, what: &str, answer: &Answer) {
        if !ok {
            let excerpt: String = answer.body.chars().take(300).collect();
            self.0.push(format!(
                "{} {} ({:?}): {what}: got {} {:?} {excerpt:?}",
                route.method, route.path, route.need, answer.status, answer.location
            ));
        }
    }
}

/// The unauthenticated answer every non-public route must give.
async fn check_unauthenticated(c: &Console, route: &RouteSpec, b: &Objects, failures: &mut Failures) -> &'static str {
    let answer = send(c, route, &b.path(route.path), None, &b.form(route.path)).await;
    if answers_json(route.path) {
        let ok = answer.status == StatusCode::UNAUTHORIZED && answer.body.contains("not signed in");
        failures.check(ok, route, "no session: 401 \"not signed in\"", &answer);
        "401"
    } else {
        let ok = answer.status == StatusCode::SEE_OTHER && answer.location.as_deref() == Some("/login");
        failures.check(ok, route, "no session: redirect to /login", &answer);
        "303 /login"
    }
}

/// `who` of A on B's object (or, without one, on the list): 404, or 200
/// showing A without a trace of B; `Forbidden` when `who`'s role is below
/// the route's on a route without an object.
async fn check_other_tenant(
    c: &Console,
    route: &RouteSpec,
    a: &Objects,
    b: &Objects,
    who: &Who,
    denied_by_role: bool,
    failures: &mut Failures,
) -> &'static str {
    let targets_object = !kinds(route.path).unwrap_or_default().is_empty() || route.method == Method::POST;
    let answer = send(c, route, &b.path(route.path), Some(who), &b.form(route.path)).await;
    let leaks: Vec<String> = b.markers().into_iter().filter(|m| answer.body.contains(m)).collect();
    if targets_object {
        let ok = answer.status == StatusCode::NOT_FOUND && leaks.is_empty();
        failures.check(
            ok,
            route,
            &format!("{} on B's object: 404 {leaks:?}", who.label),
            &answer,
        );
        "404"
    } else if denied_by_role {
        let ok = answer.status == StatusCode::FORBIDDEN;
        failures.check(
            ok,
            route,
            &format!("{}: 403 below the route's role", who.label),
            &answer,
        );
        "403"
    } else {
        // A's own objects are there: an empty answer would hide nothing.
        let shows_a = a.markers().iter().any(|m| answer.body.contains(m.as_str()));
        let ok = answer.status == StatusCode::OK && leaks.is_empty() && shows_a;
        failures.check(
            ok,
            route,
            &format!("{}: 200 with A and without B {leaks:?}", who.label),
            &answer,
        );
        "200, no B"
    }
}

/// `who` of A, below the route's role, on A's own object: 403 "permission denied".
async fn check_role_too_low(
    c: &Console,
    route: &RouteSpec,
    a: &Objects,
    who: &Who,
    failures: &mut Failures,
) -> &'static str {
    let answer = send(c, route, &a.path(route.path), Some(who), &a.form(route.path)).await;
    let ok = answer.status == StatusCode::FORBIDDEN && answer.body.contains("Permission denied");
    failures.check(ok, route, &format!("{} on A's own object: 403", who.label), &answer);
    "403"
}

#[tokio::test]
async fn every_route_keeps_tenants_apart_and_roles_in_their_place() {
    let table = crate::route_table();
    // A route whose parameters name objects this test does not know fails
    // here, before anything runs.
    let unknown: Vec<String> = table
        .iter()
        .filter_map(|r| {
            kinds(r.path)
                .err()
                .map(|u| format!("{} {}: {}", r.method, r.path, u.join(", ")))
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "routes with path parameters the isolation matrix does not know (add them to PARAMS): {unknown:#?}"
    );

    for (engine, mut c) in ["SQLite", "PostgreSQL"].into_iter().zip(consoles().await) {
        let ca = CertificateAuthority::generate("matrix CA").unwrap();
        c.set_state(c.state.clone().with_ca_fingerprint(ca.fingerprint()));
        let a = objects(&c, "acme", &ca).await;
        let b = objects(&c, "globex", &ca).await;
        let ada = sign_in(&c, "A admin", "ada", a.tenant, Role::Admin).await;
        let otto = sign_in(&c, "A operator", "otto", a.tenant, Role::Operator).await;
        let vera = sign_in(&c, "A viewer", "vera", a.tenant, Role::Viewer).await;
        let before = snapshot(&c.store).await;

        let mut failures = Failures(Vec::new());
        let line = |cells: [&str; 8]| {
            format!(
                "{:<6} {:<40} {:<16} {:<11} {:<11} {:<11} {:<11} {:<11}",
                cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
            )
        };
        let mut summary = vec![
            format!("console isolation matrix on {engine}"),
            line([
                "method",
                "route",
                "need",
                "no session",
                "A admin→B",
                "A oper.→B",
                "A oper.→A",
                "A viewer→A",
            ]),
        ];
        for route in &table {
            // no session, A admin on B, A operator on B, A operator on A, A viewer on A
            let mut row = ["-"; 5];
            match route.need {
                Need::Public => row[0] = "public",
                Need::Signed => row[0] = check_unauthenticated(&c, route, &b, &mut failures).await,
                Need::MspAdmin => {
                    row[0] = check_unauthenticated(&c, route, &b, &mut failures).await;
                    for (i, who) in [(1, &ada), (2, &otto)] {
                        let answer = send(&c, route, &b.path(route.path), Some(who), &b.form(route.path)).await;
                        let ok = answer.status == StatusCode::FORBIDDEN && answer.body.contains("Permission denied");
                        failures.check(ok, route, &format!("{}: 403 on an MSP-only route", who.label), &answer);
                        row[i] = "403";
                    }
                }
                Need::Tenant(role) => {
                    row[0] = check_unauthenticated(&c, route, &b, &mut failures).await;
                    row[1] = check_other_tenant(&c, route, &a, &b, &ada, false, &mut failures).await;
                    row[2] = check_other_tenant(&c, route, &a, &b, &otto, role > Role::Operator, &mut failures).await;
                    if role > Role::Operator {
                        row[3] = check_role_too_low(&c, route, &a, &otto, &mut failures).await;
                    }
                    if role > Role::Viewer {
                        row[4] = check_role_too_low(&c, route, &a, &vera, &mut failures).await;
                    }
                }
            }
            let need = format!("{:?}", route.need);
            summary.push(line([
                route.method.as_str(),
                route.path,
                &need,
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
            ]));
        }
        println!("{}", summary.join("\n"));

        assert!(
            failures.0.is_empty(),
            "{engine}: {} isolation failures:\n{}",
            failures.0.len(),
            failures.0.join("\n")
        );
        // Nothing of either tenant changed (B: refused as another tenant's;
        // A: refused for the role).
        assert_eq!(
            snapshot(&c.store).await,
            before,
            "{engine}: a refused request changed something"
        );
        // The signed-in users are all still signed in: no refused request
        // ended a session.
        for who in [&ada, &otto, &vera] {
            let res = c.get("/account", Some(&who.cookie)).await;
            assert_eq!(res.status(), StatusCode::OK, "{} still signed in", who.label);
        }
    }
}

#[test]
fn a_parameter_the_matrix_does_not_know_is_named() {
    assert_eq!(
        kinds("/devices/{id}/config/{taken}/reveal"),
        Ok(vec![Kind::Device, Kind::Backup])
    );
    assert_eq!(kinds("/audit.csv"), Ok(Vec::new()));
    assert_eq!(
        kinds("/devices/{id}/widgets/{widget}"),
        Err(vec!["{widget} after /widgets/".to_owned()])
    );
    // The same name after another segment is another kind of object.
    assert_eq!(kinds("/racks/{id}"), Err(vec!["{id} after /racks/".to_owned()]));
}
