//! What the API's integration tests share: a store per engine (SQLite, and
//! PostgreSQL when `OUTPOST_TEST_DATABASE_URL` is set), two tenants with a
//! site, an enrolled agent and a device each, the API served on loopback,
//! and calls with a bearer credential.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use outpost_certs::ca::{CertificateAuthority, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, SiteId, TenantId};
use outpost_store::api_tokens::{DEFAULT_TTL_MS, NewApiToken, TokenBinding, TokenScope};
use outpost_store::audit::Actor;
use outpost_store::devices::{DeviceId, NewDevice};
use outpost_store::members::{NewUser, Principal};
use outpost_store::tokens::EnrollAsk;
use outpost_store::{AdminScope, Store};
use sqlx::Connection as _;
use tonic::transport::Channel;
use tonic::{Code, Request};

pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) site: SiteId,
    pub(crate) agent: AgentId,
    pub(crate) agent_scope: outpost_store::AgentScope,
    pub(crate) device: DeviceId,
}

pub(crate) struct World {
    pub(crate) store: Store,
    pub(crate) vault: std::sync::Arc<outpost_vault::Vault>,
    pub(crate) admin: AdminScope,
    pub(crate) acme: Tenant,
    pub(crate) globex: Tenant,
    pub(crate) channel: Channel,
    _dir: tempfile::TempDir,
}

pub(crate) async fn stores() -> Vec<(Store, AdminScope, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, admin) = Store::open_as_operator(dir.path(), None).await.expect("sqlite");
    let mut out = vec![(sqlite, admin, dir)];
    match std::env::var("OUTPOST_TEST_DATABASE_URL") {
        Ok(url) => {
            let name = format!("outpost_api_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect to PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let base = url.rsplit_once('/').map(|(b, _)| b).expect("URL with a path");
            let dir = tempfile::tempdir().expect("tempdir");
            let (pg, admin) = Store::open_as_operator(dir.path(), Some(&format!("{base}/{name}")))
                .await
                .expect("postgres");
            out.push((pg, admin, dir));
        }
        Err(_) if std::env::var("OUTPOST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("OUTPOST_REQUIRE_POSTGRES=1 but OUTPOST_TEST_DATABASE_URL is not set")
        }
        Err(_) => eprintln!("OUTPOST_TEST_DATABASE_URL not set: API tests run on SQLite only"),
    }
    out
}

pub(crate) async fn tenant(store: &Store, admin: &AdminScope, ca: &CertificateAuthority, name: &str) -> Tenant {
    let site = store.ensure_site(admin, name, "hq").await.expect("site");
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(admin, &site, &token, Duration::from_secs(600), &Actor::local_operator())
        .await
        .expect("token");
    let ask = EnrollAsk {
        hostname: "gw",
        version: "1",
        csr_key_sha256: uuid::Uuid::new_v4().simple().to_string(),
        previous: None,
    };
    let enrolled = store
        .enroll(&token, &ask, None, |id| {
            let req = generate_key_and_csr("agent").map_err(|e| e.to_string())?;
            ca.sign_agent_csr(&req.csr_der, id, Validity::starting_now(Duration::from_secs(3600)))
                .map_err(|e| e.to_string())
        })
        .await
        .expect("enroll");
    let device = DeviceId::random();
    store
        .add_device(
            &admin.tenant_scope(site.tenant),
            &NewDevice {
                id: device,
                site: site.site,
                address: "127.0.0.1".into(),
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
    let cert = outpost_certs::AgentCertificate::parse(&enrolled.certificate.der).expect("agent certificate");
    Tenant {
        id: site.tenant,
        site: site.site,
        agent: enrolled.identity.agent,
        agent_scope: outpost_store::AgentScope::from_certificate(&cert),
        device,
    }
}

pub(crate) async fn serve(
    store: Store,
    admin: AdminScope,
    ca: &CertificateAuthority,
    vault: std::sync::Arc<outpost_vault::Vault>,
) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let routes = outpost_api::routes(outpost_api::ApiState::new(
        store.clone(),
        ca.fingerprint(),
        vault.clone(),
        outpost_console::ConsoleState::new(store, admin, vault, true).sign_in(),
    ));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

pub(crate) async fn worlds() -> Vec<World> {
    let ca = CertificateAuthority::generate("test").expect("ca");
    let mut out = Vec::new();
    for (store, admin, dir) in stores().await {
        let acme = tenant(&store, &admin, &ca, "acme").await;
        let globex = tenant(&store, &admin, &ca, "globex").await;
        let vault = std::sync::Arc::new(outpost_vault::Vault::generate().expect("vault"));
        let channel = serve(store.clone(), admin, &ca, vault.clone()).await;
        out.push(World {
            store,
            vault,
            admin,
            acme,
            globex,
            channel,
            _dir: dir,
        });
    }
    out
}

impl World {
    pub(crate) async fn user(&self, name: &str, kind: NewUser) -> String {
        let operator = Principal::local_operator(&self.admin);
        self.store
            .create_user(&operator, name, "correct horse battery", kind, &Actor::local_operator())
            .await
            .expect("user")
    }

    pub(crate) async fn token(&self, user: &str, binding: TokenBinding, scope: TokenScope) -> String {
        self.store
            .create_api_token(
                &NewApiToken {
                    name: "test",
                    scope,
                    binding,
                    created_by: user,
                    ttl_ms: DEFAULT_TTL_MS,
                },
                &Actor::local_operator(),
            )
            .await
            .expect("token")
            .1
    }
}

pub(crate) fn with<T>(token: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("metadata"));
    req
}

pub(crate) fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}
