//! The API's tenant isolation matrix, one row per method of
//! `outpost.api.v1` as the file descriptor set of the `.proto` lists them
//! (a method without a row fails the test by name), over a real gRPC server
//! on loopback, on SQLite and, when `OUTPOST_TEST_DATABASE_URL` is set,
//! PostgreSQL:
//! - no credentials: UNAUTHENTICATED (`Login` is public: a wrong password
//!   is refused UNAUTHENTICATED);
//! - an admin-scope API token of tenant A and a session of A's admin: B's
//!   object NOT_FOUND, a list filtered to B NOT_FOUND, an unfiltered list
//!   without a trace of B, and an event stream that shows none of B's
//!   changes;
//! - writes (and admin-only reads) with a read-scope token and a viewer's
//!   session on A's own objects: PERMISSION_DENIED;
//! - and afterwards nothing of either tenant has changed.
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use outpost_certs::{AgentId, SiteId, TenantId};
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::agent_service_client::AgentServiceClient;
use outpost_proto::api_v1::api_token_service_client::ApiTokenServiceClient;
use outpost_proto::api_v1::audit_service_client::AuditServiceClient;
use outpost_proto::api_v1::device_service_client::DeviceServiceClient;
use outpost_proto::api_v1::event_service_client::EventServiceClient;
use outpost_proto::api_v1::inventory_service_client::InventoryServiceClient;
use outpost_proto::api_v1::session_service_client::SessionServiceClient;
use outpost_proto::api_v1::tenant_service_client::TenantServiceClient;
use outpost_proto::api_v1::tunnel_service_client::TunnelServiceClient;
use outpost_store::api_tokens::{TokenBinding, TokenScope};
use outpost_store::audit::Actor;
use outpost_store::devices::reports::{BackupRow, DeviceReport, ReportBody};
use outpost_store::devices::{DeviceId, NewDevice};
use outpost_store::ingest::IngestBatch;
use outpost_store::inventory::addr::parse_targets;
use outpost_store::inventory::records::{DiscoveryBody, DiscoveryReport, HostRecord, HostsChunk, ScanFinishedRow};
use outpost_store::inventory::views::HostQuery;
use outpost_store::members::{NewUser, Principal, Role};
use outpost_store::scope::Viewer;
use outpost_store::{AdminScope, Store};
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

mod support;

use support::{Tenant, World, code, with, worlds};

const PACKAGE: &str = "outpost.api.v1";
const PASSWORD: &str = "correct horse battery";

/// Every method of the public API, as `/package.Service/Method`, from the
/// descriptors compiled from the `.proto`.
fn api_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(outpost_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
        for service in &file.service {
            for method in &service.method {
                out.push(format!("/{PACKAGE}.{}/{}", service.name(), method.name()));
            }
        }
    }
    out
}

/// The methods of `methods` that have no row.
fn without_row(methods: &[String]) -> Vec<&String> {
    methods
        .iter()
        .filter(|m| !ROWS.iter().any(|r| **m == format!("/{PACKAGE}.{}", r.method)))
        .collect()
}

#[test]
fn a_method_without_a_row_is_named() {
    let methods = vec![
        format!("/{PACKAGE}.DeviceService/GetDevice"),
        format!("/{PACKAGE}.DeviceService/RebootDevice"),
    ];
    assert_eq!(without_row(&methods), vec![&methods[1]]);
}

/// What a caller of tenant A gets when the call is about tenant B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnB {
    /// Needs no credentials (`Login`).
    Public,
    /// Acts on the credential itself (`Logout`): nothing of B to aim at.
    OwnCredential,
    /// Names one of B's objects: NOT_FOUND.
    NotFound,
    /// A list: filtered to B (when the request can say so) NOT_FOUND,
    /// unfiltered without B.
    List { filter: bool },
    /// A stream of events: none of B's.
    Stream,
}

/// One row per method: what it is about and the role it needs.
struct Row {
    method: &'static str,
    on_b: OnB,
    /// Above `Viewer`: a read token and a viewer's session get
    /// PERMISSION_DENIED on A's own objects.
    needs: Role,
}

const ROWS: &[Row] = &[
    row("SessionService/Login", OnB::Public, Role::Viewer),
    row("SessionService/Logout", OnB::OwnCredential, Role::Viewer),
    row("SessionService/WhoAmI", OnB::List { filter: false }, Role::Viewer),
    row("TenantService/ListTenants", OnB::List { filter: false }, Role::Viewer),
    row("TenantService/ListSites", OnB::List { filter: true }, Role::Viewer),
    row("AgentService/ListAgents", OnB::List { filter: true }, Role::Viewer),
    row("AgentService/RevokeAgent", OnB::NotFound, Role::Admin),
    row("AgentService/CreateEnrollmentToken", OnB::NotFound, Role::Admin),
    row("ApiTokenService/CreateApiToken", OnB::NotFound, Role::Admin),
    row(
        "ApiTokenService/ListApiTokens",
        OnB::List { filter: true },
        Role::Viewer,
    ),
    row("ApiTokenService/RevokeApiToken", OnB::NotFound, Role::Admin),
    row("DeviceService/ListDevices", OnB::List { filter: true }, Role::Viewer),
    row("DeviceService/GetDevice", OnB::NotFound, Role::Viewer),
    row("DeviceService/QueryMetrics", OnB::NotFound, Role::Viewer),
    row("DeviceService/ListConfigVersions", OnB::NotFound, Role::Viewer),
    // Asked with `reveal_secrets`, which needs tenant admin.
    row("DeviceService/GetConfigVersion", OnB::NotFound, Role::Admin),
    row("InventoryService/ListHosts", OnB::List { filter: true }, Role::Viewer),
    row(
        "InventoryService/ListHostChanges",
        OnB::List { filter: false },
        Role::Viewer,
    ),
    // The audit log is for administrators.
    row(
        "AuditService/ListAuditRecords",
        OnB::List { filter: false },
        Role::Admin,
    ),
    row("EventService/Subscribe", OnB::Stream, Role::Viewer),
    // Opening a tunnel is operational: operators and admins.
    row("TunnelService/Open", OnB::NotFound, Role::Operator),
];

const fn row(method: &'static str, on_b: OnB, needs: Role) -> Row {
    Row { method, on_b, needs }
}

/// One tenant's objects, as the API names them.
struct Objects {
    name: &'static str,
    tenant: TenantId,
    site: SiteId,
    agent: AgentId,
    device: DeviceId,
    taken_at_ms: i64,
    api_token: String,
    host: String,
}

impl Objects {
    /// Text that gives this tenant away in an answer to another.
    fn markers(&self) -> Vec<String> {
        vec![
            self.name.to_owned(),
            self.tenant.to_string(),
            self.site.to_string(),
            self.agent.to_string(),
            self.device.to_string(),
            self.api_token.clone(),
            self.host.clone(),
        ]
    }

    fn leaks(&self, answer: &str) -> Vec<String> {
        self.markers()
            .into_iter()
            .filter(|m| answer.contains(m.as_str()))
            .collect()
    }
}

fn shown<T: Debug>(r: Result<tonic::Response<T>, Status>) -> Result<String, Status> {
    r.map(|r| format!("{:?}", r.into_inner()))
}

fn ask<T>(cred: Option<&str>, message: T) -> Request<T> {
    match cred {
        Some(c) => with(c, message),
        None => Request::new(message),
    }
}

/// Calls `method` about `o`'s objects (a list filtered to `o`'s tenant when
/// `filtered`) with `cred`; its answer as text. `None`: this test has no
/// row for the method.
async fn call(
    ch: &Channel,
    method: &str,
    o: &Objects,
    filtered: bool,
    cred: Option<&str>,
) -> Option<Result<String, Status>> {
    let tenant_id = if filtered { o.tenant.to_string() } else { String::new() };
    let device_id = o.device.to_string();
    let name = method.strip_prefix(&format!("/{PACKAGE}.")).unwrap_or(method);
    let sessions = || SessionServiceClient::new(ch.clone());
    let tenants = || TenantServiceClient::new(ch.clone());
    let agents = || AgentServiceClient::new(ch.clone());
    let tokens = || ApiTokenServiceClient::new(ch.clone());
    let devices = || DeviceServiceClient::new(ch.clone());
    let inventory = || InventoryServiceClient::new(ch.clone());
    Some(match name {
        "SessionService/Login" => {
            let wrong = pb::LoginRequest {
                username: "ada".into(),
                password: "not the password".into(),
                second_factor: String::new(),
            };
            shown(sessions().login(ask(cred, wrong)).await)
        }
        "SessionService/Logout" => shown(sessions().logout(ask(cred, pb::LogoutRequest {})).await),
        "SessionService/WhoAmI" => shown(sessions().who_am_i(ask(cred, pb::WhoAmIRequest {})).await),
        "TenantService/ListTenants" => shown(tenants().list_tenants(ask(cred, pb::ListTenantsRequest {})).await),
        "TenantService/ListSites" => shown(
            tenants()
                .list_sites(ask(cred, pb::ListSitesRequest { tenant_id }))
                .await,
        ),
        "AgentService/ListAgents" => {
            let req = pb::ListAgentsRequest {
                tenant_id,
                site_id: String::new(),
            };
            shown(agents().list_agents(ask(cred, req)).await)
        }
        "AgentService/RevokeAgent" => {
            let req = pb::RevokeAgentRequest {
                agent_id: o.agent.to_string(),
            };
            shown(agents().revoke_agent(ask(cred, req)).await)
        }
        "AgentService/CreateEnrollmentToken" => {
            let req = pb::CreateEnrollmentTokenRequest {
                site_id: o.site.to_string(),
                valid_for_secs: 600,
            };
            shown(agents().create_enrollment_token(ask(cred, req)).await)
        }
        "ApiTokenService/CreateApiToken" => {
            let req = pb::CreateApiTokenRequest {
                name: "matrix".into(),
                scope: "read".into(),
                tenant_id: o.tenant.to_string(),
                valid_for_secs: 0,
            };
            shown(tokens().create_api_token(ask(cred, req)).await)
        }
        "ApiTokenService/ListApiTokens" => shown(
            tokens()
                .list_api_tokens(ask(cred, pb::ListApiTokensRequest { tenant_id }))
                .await,
        ),
        "ApiTokenService/RevokeApiToken" => {
            let req = pb::RevokeApiTokenRequest {
                token_id: o.api_token.clone(),
            };
            shown(tokens().revoke_api_token(ask(cred, req)).await)
        }
        "DeviceService/ListDevices" => {
            let req = pb::ListDevicesRequest {
                tenant_id,
                site_id: String::new(),
            };
            shown(devices().list_devices(ask(cred, req)).await)
        }
        "DeviceService/GetDevice" => shown(
            devices()
                .get_device(ask(cred, pb::GetDeviceRequest { device_id }))
                .await,
        ),
        "DeviceService/QueryMetrics" => {
            let req = pb::QueryMetricsRequest {
                device_id,
                metric: "cpu_load".into(),
                from_ms: 0,
                to_ms: outpost_store::now_ms(),
                ..Default::default()
            };
            shown(devices().query_metrics(ask(cred, req)).await)
        }
        "DeviceService/ListConfigVersions" => {
            let req = pb::ListConfigVersionsRequest { device_id };
            shown(devices().list_config_versions(ask(cred, req)).await)
        }
        "DeviceService/GetConfigVersion" => {
            let req = pb::GetConfigVersionRequest {
                device_id,
                taken_at_ms: o.taken_at_ms,
                reveal_secrets: true,
            };
            shown(devices().get_config_version(ask(cred, req)).await)
        }
        "InventoryService/ListHosts" => {
            let req = pb::ListHostsRequest {
                tenant_id,
                include_gone: true,
                ..Default::default()
            };
            shown(inventory().list_hosts(ask(cred, req)).await)
        }
        "InventoryService/ListHostChanges" => {
            let req = pb::ListHostChangesRequest::default();
            shown(inventory().list_host_changes(ask(cred, req)).await)
        }
        "AuditService/ListAuditRecords" => {
            let req = pb::ListAuditRecordsRequest::default();
            shown(
                AuditServiceClient::new(ch.clone())
                    .list_audit_records(ask(cred, req))
                    .await,
            )
        }
        "EventService/Subscribe" => {
            let req = pb::SubscribeRequest::default();
            EventServiceClient::new(ch.clone())
                .subscribe(ask(cred, req))
                .await
                .map(|_| "a stream".to_owned())
        }
        "TunnelService/Open" => {
            let target = pb::TunnelRequest {
                kind: Some(pb::tunnel_request::Kind::Target(pb::TunnelTarget {
                    device_id,
                    port: 22,
                })),
            };
            TunnelServiceClient::new(ch.clone())
                .open(ask(cred, tokio_stream::iter([target])))
                .await
                .map(|_| "a tunnel".to_owned())
        }
        _ => return None,
    })
}

/// A device for `t`, as an operator adds one.
async fn add_device(w: &World, t: &Tenant) -> DeviceId {
    let id = DeviceId::random();
    w.store
        .add_device(
            &w.admin.tenant_scope(t.id),
            &NewDevice {
                id,
                site: t.site,
                // Unique per site.
                address: format!("{id}.example"),
                api_port: 8728,
                api_tls: false,
                ssh_port: 22,
                username: "admin".into(),
                password_sealed: vec![1, 2, 3],
                poll_interval_secs: 60,
            },
            &Actor::local_operator(),
        )
        .await
        .expect("device");
    id
}

/// `t`'s agent reports a configuration backup of its device and a scan that
/// found one host; `t`'s objects.
async fn objects(w: &World, t: &Tenant, name: &'static str) -> Objects {
    let export = "# by RouterOS 7.18.2\n/ppp secret\nadd name=vpn password=hunter2\n";
    let device = t.device.to_string();
    let key = w.vault.tenant(&t.id.to_string()).backup_key(&device);
    let sealed = key
        .seal(&outpost_vault::backup_context(&device), export.as_bytes())
        .expect("seal");
    let now = outpost_store::now_ms();
    let scan = format!("{name}-scan").parse().expect("scan id");
    let host = HostRecord {
        address: "10.0.0.7".parse().expect("address"),
        mac: Some("02:00:00:00:00:07".parse().expect("mac")),
        vendor: String::new(),
        names: vec![format!("nas.{name}.example")],
        open_ports: Vec::new(),
        snmp: None,
        mndp: None,
        seen_by: vec!["icmp".into()],
        rtt_us: None,
        os: None,
    };
    let batch = IngestBatch {
        devices: vec![DeviceReport {
            seq: 1,
            observed_at_ms: 1_700_000_000_000,
            device: t.device,
            body: ReportBody::Backup(BackupRow {
                ros_version: "7.18.2".into(),
                normalized_hmac: "00".into(),
                sealed_export: sealed,
                sealed_diff: None,
                lines_added: 3,
                lines_removed: 0,
                trigger: "first".into(),
            }),
        }],
        discovery: vec![
            DiscoveryReport {
                seq: 2,
                observed_at_ms: now,
                body: DiscoveryBody::Hosts(HostsChunk {
                    scan_id: scan,
                    job_id: String::new(),
                    scanned_ports: vec![22],
                    hosts: vec![host],
                }),
            },
            DiscoveryReport {
                seq: 3,
                observed_at_ms: now + 1_000,
                body: DiscoveryBody::Finished(ScanFinishedRow {
                    scan_id: format!("{name}-scan").parse().expect("scan id"),
                    job_id: String::new(),
                    source: "scan".into(),
                    targets: parse_targets("10.0.0.0/24").expect("targets"),
                    started_ms: now - 5_000,
                    finished_ms: now + 1_000,
                    addresses: 254,
                    hosts_found: 1,
                    partial: false,
                    warnings: Vec::new(),
                    icmp: "raw".into(),
                    probes_sent: 254,
                }),
            },
        ],
        through_seq: 3,
        ..IngestBatch::default()
    };
    w.store.ingest(&t.agent_scope, &batch).await.expect("ingest");
    let scope = w.admin.tenant_scope(t.id);
    let taken_at_ms = w
        .store
        .config_versions(&Viewer::Tenant(scope), t.device)
        .await
        .expect("versions")
        .first()
        .expect("the backup")
        .taken_at_ms;
    let host = w
        .store
        .list_hosts(&Viewer::Tenant(scope), &HostQuery::default())
        .await
        .expect("hosts")
        .first()
        .expect("the host")
        .id
        .to_string();
    let owner = w
        .user(&format!("{name}-owner"), NewUser::Member(t.id, Role::Admin))
        .await;
    w.token(&owner, TokenBinding::Tenant(scope), TokenScope::Read).await;
    let api_token = w.store.tenant_api_tokens(&scope).await.expect("tokens")[0].id.clone();
    Objects {
        name,
        tenant: t.id,
        site: t.site,
        agent: t.agent,
        device: t.device,
        taken_at_ms,
        api_token,
        host,
    }
}

/// What a refused call must not have changed: agents and their revocation,
/// enrollment tokens, API tokens (not their last use), users and roles, and
/// who revealed configuration secrets.
async fn snapshot(store: &Store, admin: &AdminScope) -> String {
    let all = Viewer::Admin(*admin);
    let agents: Vec<_> = store
        .list_agents(&all)
        .await
        .expect("agents")
        .into_iter()
        .map(|a| (a.agent, a.revoked))
        .collect();
    let tokens: Vec<_> = store
        .list_tokens(&all)
        .await
        .expect("tokens")
        .into_iter()
        .map(|t| t.id)
        .collect();
    let api_tokens: Vec<_> = store
        .all_api_tokens(admin)
        .await
        .expect("API tokens")
        .into_iter()
        .map(|t| (t.id, t.tenant, t.revoked_at_ms))
        .collect();
    let users = store
        .list_users(&Principal::local_operator(admin))
        .await
        .expect("users");
    let reveals = reveals(store, admin).await;
    format!("{agents:#?}\n{tokens:#?}\n{api_tokens:#?}\n{users:#?}\n{reveals:#?}")
}

/// Who saw which configuration's secrets: a refused reveal leaves no record.
async fn reveals(store: &Store, admin: &AdminScope) -> Vec<String> {
    let query = outpost_store::audit::AuditQuery {
        from_ms: 0,
        to_ms: i64::MAX,
        tenant: None,
        after_seq: 0,
        limit: 100_000,
        newest_first: false,
    };
    store
        .audit_records(&Viewer::Admin(*admin), &query)
        .await
        .expect("audit records")
        .into_iter()
        .filter(|r| r.action == "device.config_reveal")
        .map(|r| format!("{} {}", r.actor, r.object))
        .collect()
}

/// A signed-in session token of `user`.
async fn session(ch: &Channel, user: &str) -> String {
    SessionServiceClient::new(ch.clone())
        .login(pb::LoginRequest {
            username: user.into(),
            password: PASSWORD.into(),
            second_factor: String::new(),
        })
        .await
        .expect("login")
        .into_inner()
        .session_token
}

/// The next event of `stream` within `wait`, as text; `None` when none came.
async fn next_event(stream: &mut tonic::Streaming<pb::Event>, wait: Duration) -> Option<String> {
    match tokio::time::timeout(wait, stream.message()).await {
        Ok(Ok(Some(event))) => Some(format!("{event:?}")),
        Ok(Ok(None)) => panic!("the event stream ended"),
        Ok(Err(status)) => panic!("the event stream failed: {status:?}"),
        Err(_) => None,
    }
}

/// A stream of A's caller while B's devices change: every event it carries
/// is A's. First an A device is added until the stream reports one (its
/// first read has been taken), then B gets a device and A another; by the
/// time A's arrives, B's change has been read.
async fn stream_shows_none_of_b(w: &World, b: &Objects, cred: &str) -> Result<(), String> {
    let mut stream = EventServiceClient::new(w.channel.clone())
        .subscribe(with(cred, pb::SubscribeRequest::default()))
        .await
        .map_err(|s| format!("subscribe: {s:?}"))?
        .into_inner();
    let mut seen = Vec::new();
    let mut started = false;
    for _ in 0..5 {
        let probe = add_device(w, &w.acme).await.to_string();
        while let Some(event) = next_event(&mut stream, Duration::from_secs(5)).await {
            let hit = event.contains(&probe);
            seen.push(event);
            if hit {
                started = true;
                break;
            }
        }
        if started {
            break;
        }
    }
    if !started {
        return Err("no event for A's own new device".into());
    }
    add_device(w, &w.globex).await;
    let last = add_device(w, &w.acme).await.to_string();
    let mut arrived = false;
    while let Some(event) = next_event(&mut stream, Duration::from_secs(10)).await {
        let hit = event.contains(&last);
        seen.push(event);
        if hit {
            arrived = true;
            break;
        }
    }
    if !arrived {
        return Err("no event for A's second device".into());
    }
    let leaked: Vec<&String> = seen.iter().filter(|e| !b.leaks(e).is_empty()).collect();
    if leaked.is_empty() {
        Ok(())
    } else {
        Err(format!("B's events reached A: {leaked:#?}"))
    }
}

#[tokio::test]
async fn every_api_method_keeps_tenants_apart_and_roles_in_their_place() {
    let methods = api_methods();
    assert!(methods.len() >= 20, "the descriptor lists the API: {methods:?}");
    let missing = without_row(&methods);
    assert!(
        missing.is_empty(),
        "API methods without a row in the isolation matrix (add them to ROWS and `call`): {missing:#?}"
    );
    let stale: Vec<&str> = ROWS
        .iter()
        .filter(|r| !methods.contains(&format!("/{PACKAGE}.{}", r.method)))
        .map(|r| r.method)
        .collect();
    assert!(stale.is_empty(), "rows for methods the API no longer has: {stale:?}");

    for (engine, w) in ["SQLite", "PostgreSQL"].into_iter().zip(worlds().await) {
        let a = objects(&w, &w.acme, "acme").await;
        let b = objects(&w, &w.globex, "globex").await;
        let ada = w.user("ada", NewUser::Member(a.tenant, Role::Admin)).await;
        w.user("vera", NewUser::Member(a.tenant, Role::Viewer)).await;
        let tenant_a = TokenBinding::Tenant(w.admin.tenant_scope(a.tenant));
        let creds_a_admin = [
            ("A admin token", w.token(&ada, tenant_a, TokenScope::Admin).await),
            ("A admin session", session(&w.channel, "ada").await),
        ];
        let creds_a_low = [
            ("A read token", w.token(&ada, tenant_a, TokenScope::Read).await),
            ("A viewer session", session(&w.channel, "vera").await),
        ];
        let before = snapshot(&w.store, &w.admin).await;

        let mut failures: Vec<String> = Vec::new();
        let mut summary = vec![
            format!("API isolation matrix on {engine}"),
            format!(
                "{:<55} {:<32} {:<26} {:<20}",
                "method", "no credentials", "A admin on B", "A viewer/read on A"
            ),
        ];
        for method in &methods {
            let row = ROWS
                .iter()
                .find(|r| *method == format!("/{PACKAGE}.{}", r.method))
                .expect("checked above");
            let mut fail = |what: String| failures.push(format!("{method}: {what}"));
            let expect = |r: &Option<Result<String, Status>>| -> Result<String, Code> {
                match r {
                    Some(Ok(s)) => Ok(s.clone()),
                    Some(Err(s)) => Err(s.code()),
                    None => panic!("{method}: no call for it"),
                }
            };

            // No credentials.
            let unauth = expect(&call(&w.channel, method, &b, false, None).await);
            if unauth != Err(Code::Unauthenticated) {
                fail(format!("no credentials: {unauth:?}, not UNAUTHENTICATED"));
            }
            let col1 = if row.on_b == OnB::Public {
                "wrong password: UNAUTHENTICATED"
            } else {
                "UNAUTHENTICATED"
            };

            // A's admin credentials about B.
            let col2 = match row.on_b {
                OnB::Public | OnB::OwnCredential => "n/a",
                OnB::NotFound => {
                    for (label, cred) in &creds_a_admin {
                        let got = expect(&call(&w.channel, method, &b, true, Some(cred)).await);
                        if got != Err(Code::NotFound) {
                            fail(format!("{label} on B's object: {got:?}, not NOT_FOUND"));
                        }
                    }
                    "NOT_FOUND"
                }
                OnB::List { filter } => {
                    for (label, cred) in &creds_a_admin {
                        if filter {
                            let got = expect(&call(&w.channel, method, &b, true, Some(cred)).await);
                            if got != Err(Code::NotFound) {
                                fail(format!("{label} filtered to B: {got:?}, not NOT_FOUND"));
                            }
                        }
                        match expect(&call(&w.channel, method, &b, false, Some(cred)).await) {
                            // A's own objects are there: an empty answer would hide nothing.
                            Ok(answer) if b.leaks(&answer).is_empty() && a.leaks(&answer).is_empty() => {
                                fail(format!("{label}: the list shows nothing of A either: {answer}"));
                            }
                            Ok(answer) if b.leaks(&answer).is_empty() => {}
                            Ok(answer) => fail(format!("{label}: B in the list: {:?}", b.leaks(&answer))),
                            Err(code) => fail(format!("{label}: {code:?}")),
                        }
                    }
                    if filter {
                        "B: NOT_FOUND; list: no B"
                    } else {
                        "list: no B"
                    }
                }
                OnB::Stream => {
                    for (label, cred) in &creds_a_admin {
                        if let Err(why) = stream_shows_none_of_b(&w, &b, cred).await {
                            fail(format!("{label}: {why}"));
                        }
                    }
                    "no event of B"
                }
            };

            // Low credentials of A on A's own objects.
            let col3 = if row.needs > Role::Viewer {
                for (label, cred) in &creds_a_low {
                    let got = expect(&call(&w.channel, method, &a, true, Some(cred)).await);
                    if got != Err(Code::PermissionDenied) {
                        fail(format!("{label} on A's own object: {got:?}, not PERMISSION_DENIED"));
                    }
                }
                "PERMISSION_DENIED"
            } else {
                "-"
            };
            summary.push(format!("{method:<55} {col1:<32} {col2:<26} {col3:<20}"));
        }
        // No refused call ended a credential.
        for (label, cred) in creds_a_admin.iter().chain(&creds_a_low) {
            let got = code(
                SessionServiceClient::new(w.channel.clone())
                    .who_am_i(with(cred, pb::WhoAmIRequest {}))
                    .await,
            );
            if got != Code::Ok {
                failures.push(format!("{label} stopped working during the matrix: {got:?}"));
            }
        }
        println!("{}", summary.join("\n"));
        assert!(
            failures.is_empty(),
            "{engine}: {} isolation failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert_eq!(
            snapshot(&w.store, &w.admin).await,
            before,
            "{engine}: a refused call changed something"
        );
        let listed: BTreeSet<String> = w
            .store
            .list_devices(&Viewer::Admin(w.admin))
            .await
            .expect("devices")
            .into_iter()
            .map(|d| d.id.to_string())
            .collect();
        assert!(
            listed.contains(&a.device.to_string()) && listed.contains(&b.device.to_string()),
            "both tenants' devices are still there"
        );
    }
}
