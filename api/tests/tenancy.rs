//! The API's tenancy and role checks against a real store (SQLite, and
//! PostgreSQL when `OUTPOST_TEST_DATABASE_URL` is set), over a real gRPC
//! server on loopback: another tenant's objects are NOT_FOUND, a role or a
//! token scope too low is PERMISSION_DENIED, no or bad credentials are
//! UNAUTHENTICATED.
use std::time::Duration;

use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentId, SiteId};
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::agent_service_client::AgentServiceClient;
use outpost_proto::api_v1::api_token_service_client::ApiTokenServiceClient;
use outpost_proto::api_v1::device_service_client::DeviceServiceClient;
use outpost_proto::api_v1::session_service_client::SessionServiceClient;
use outpost_proto::api_v1::tenant_service_client::TenantServiceClient;
use outpost_store::api_tokens::{TokenBinding, TokenScope};
use outpost_store::audit::Actor;
use outpost_store::devices::DeviceId;
use outpost_store::members::{NewUser, Principal, Role};
use tonic::{Code, Request};

mod support;

use support::{code, with, worlds};

#[tokio::test]
async fn calls_without_valid_credentials_are_unauthenticated() {
    for w in worlds().await {
        let mut agents = AgentServiceClient::new(w.channel.clone());
        let list = || pb::ListAgentsRequest::default();
        assert_eq!(
            code(agents.list_agents(Request::new(list())).await),
            Code::Unauthenticated
        );
        for bad in [
            "nonsense",
            "outpost_abc",
            "outpost_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                code(agents.list_agents(with(bad, list())).await),
                Code::Unauthenticated,
                "{bad}"
            );
        }
        let mut req = Request::new(list());
        req.metadata_mut()
            .insert("authorization", "Basic Zm9vOmJhcg==".parse().expect("md"));
        assert_eq!(code(agents.list_agents(req).await), Code::Unauthenticated);

        let owner = w.user("acme-admin", NewUser::Member(w.acme.id, Role::Admin)).await;
        let token = w
            .token(
                &owner,
                TokenBinding::Tenant(w.admin.tenant_scope(w.acme.id)),
                TokenScope::Read,
            )
            .await;
        assert_eq!(code(agents.list_agents(with(&token, list())).await), Code::Ok);
        let id = w
            .store
            .tenant_api_tokens(&w.admin.tenant_scope(w.acme.id))
            .await
            .expect("tokens")[0]
            .id
            .clone();
        w.store
            .revoke_api_token(TokenBinding::MspWide(w.admin), &id, &Actor::local_operator())
            .await
            .expect("revoke");
        assert_eq!(
            code(agents.list_agents(with(&token, list())).await),
            Code::Unauthenticated
        );
    }
}

#[tokio::test]
async fn a_tenant_token_sees_its_tenant_only_and_the_other_is_not_found() {
    for w in worlds().await {
        let owner = w.user("acme-admin", NewUser::Member(w.acme.id, Role::Admin)).await;
        let read = w
            .token(
                &owner,
                TokenBinding::Tenant(w.admin.tenant_scope(w.acme.id)),
                TokenScope::Read,
            )
            .await;
        let mut agents = AgentServiceClient::new(w.channel.clone());
        let mut devices = DeviceServiceClient::new(w.channel.clone());
        let mut tenants = TenantServiceClient::new(w.channel.clone());

        let listed = agents
            .list_agents(with(&read, pb::ListAgentsRequest::default()))
            .await
            .expect("list")
            .into_inner()
            .agents;
        assert_eq!(
            listed.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
            vec![w.acme.agent.to_string()]
        );
        let listed = tenants
            .list_tenants(with(&read, pb::ListTenantsRequest {}))
            .await
            .expect("tenants")
            .into_inner()
            .tenants;
        assert_eq!(listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["acme"]);

        let get = |id: DeviceId| pb::GetDeviceRequest {
            device_id: id.to_string(),
        };
        assert_eq!(
            code(devices.get_device(with(&read, get(w.acme.device))).await),
            Code::Ok
        );
        assert_eq!(
            code(devices.get_device(with(&read, get(w.globex.device))).await),
            Code::NotFound
        );
        let metrics = |id: DeviceId| pb::QueryMetricsRequest {
            device_id: id.to_string(),
            metric: "cpu_load".into(),
            from_ms: 0,
            to_ms: 1_000,
            ..Default::default()
        };
        assert_eq!(
            code(devices.query_metrics(with(&read, metrics(w.acme.device))).await),
            Code::Ok
        );
        assert_eq!(
            code(devices.query_metrics(with(&read, metrics(w.globex.device))).await),
            Code::NotFound
        );
        let versions = |id: DeviceId| pb::ListConfigVersionsRequest {
            device_id: id.to_string(),
        };
        assert_eq!(
            code(
                devices
                    .list_config_versions(with(&read, versions(w.globex.device)))
                    .await
            ),
            Code::NotFound
        );
        let sites = pb::ListSitesRequest {
            tenant_id: w.globex.id.to_string(),
        };
        assert_eq!(code(tenants.list_sites(with(&read, sites)).await), Code::NotFound);
        let revoke = |id: AgentId| pb::RevokeAgentRequest {
            agent_id: id.to_string(),
        };
        assert_eq!(
            code(agents.revoke_agent(with(&read, revoke(w.globex.agent))).await),
            Code::NotFound
        );
        // Its own tenant, but a read token: permission denied, even though its creator is admin.
        assert_eq!(
            code(agents.revoke_agent(with(&read, revoke(w.acme.agent))).await),
            Code::PermissionDenied
        );
        let enroll = |site: SiteId| pb::CreateEnrollmentTokenRequest {
            site_id: site.to_string(),
            valid_for_secs: 0,
        };
        assert_eq!(
            code(agents.create_enrollment_token(with(&read, enroll(w.acme.site))).await),
            Code::PermissionDenied
        );
        assert_eq!(
            code(agents.create_enrollment_token(with(&read, enroll(w.globex.site))).await),
            Code::NotFound
        );
        assert_eq!(
            code(
                devices
                    .get_device(with(&read, pb::GetDeviceRequest { device_id: "x".into() }))
                    .await
            ),
            Code::InvalidArgument
        );
    }
}

#[tokio::test]
async fn an_admin_token_acts_until_its_creator_loses_the_role() {
    for w in worlds().await {
        let owner = w.user("acme-admin", NewUser::Member(w.acme.id, Role::Admin)).await;
        let token = w
            .token(
                &owner,
                TokenBinding::Tenant(w.admin.tenant_scope(w.acme.id)),
                TokenScope::Admin,
            )
            .await;
        let mut agents = AgentServiceClient::new(w.channel.clone());
        let mut api_tokens = ApiTokenServiceClient::new(w.channel.clone());
        let enroll = pb::CreateEnrollmentTokenRequest {
            site_id: w.acme.site.to_string(),
            valid_for_secs: 3_600,
        };
        let made = agents
            .create_enrollment_token(with(&token, enroll.clone()))
            .await
            .expect("enrollment token")
            .into_inner();
        let parsed: EnrollmentToken = made.token.parse().expect("a real enrollment token");
        assert!(made.expires_at_ms > 0 && !parsed.id().is_empty());

        let msp_wide = pb::CreateApiTokenRequest {
            name: "all".into(),
            scope: "read".into(),
            tenant_id: String::new(),
            valid_for_secs: 0,
        };
        assert_eq!(
            code(api_tokens.create_api_token(with(&token, msp_wide)).await),
            Code::PermissionDenied
        );
        let other = pb::CreateApiTokenRequest {
            name: "theirs".into(),
            scope: "read".into(),
            tenant_id: w.globex.id.to_string(),
            valid_for_secs: 0,
        };
        assert_eq!(
            code(api_tokens.create_api_token(with(&token, other)).await),
            Code::NotFound
        );
        let own = pb::CreateApiTokenRequest {
            name: "psa".into(),
            scope: "read".into(),
            tenant_id: w.acme.id.to_string(),
            valid_for_secs: 0,
        };
        let created = api_tokens
            .create_api_token(with(&token, own))
            .await
            .expect("create")
            .into_inner();
        assert!(created.secret.starts_with("outpost_"));

        agents
            .revoke_agent(with(
                &token,
                pb::RevokeAgentRequest {
                    agent_id: w.acme.agent.to_string(),
                },
            ))
            .await
            .expect("revoke");
        let listed = agents
            .list_agents(with(&token, pb::ListAgentsRequest::default()))
            .await
            .expect("list")
            .into_inner()
            .agents;
        assert!(listed[0].revoked);

        // The creator is demoted to viewer: the admin token can no longer act as admin.
        w.store
            .set_role(
                &Principal::local_operator(&w.admin),
                &owner,
                w.acme.id,
                Some(Role::Viewer),
                &Actor::local_operator(),
            )
            .await
            .expect("demote");
        assert_eq!(
            code(agents.create_enrollment_token(with(&token, enroll.clone())).await),
            Code::PermissionDenied
        );
        // Removed from the tenant: the tenant's objects are gone for the token.
        w.store
            .set_role(
                &Principal::local_operator(&w.admin),
                &owner,
                w.acme.id,
                None,
                &Actor::local_operator(),
            )
            .await
            .expect("remove");
        assert_eq!(
            code(agents.create_enrollment_token(with(&token, enroll)).await),
            Code::NotFound
        );
    }
}

#[tokio::test]
async fn an_msp_wide_read_token_sees_every_tenant_and_changes_nothing() {
    for w in worlds().await {
        let root = w.user("root", NewUser::MspAdmin).await;
        let token = w.token(&root, TokenBinding::MspWide(w.admin), TokenScope::Read).await;
        let mut agents = AgentServiceClient::new(w.channel.clone());
        let mut session = SessionServiceClient::new(w.channel.clone());
        let listed = agents
            .list_agents(with(&token, pb::ListAgentsRequest::default()))
            .await
            .expect("list")
            .into_inner()
            .agents;
        assert_eq!(listed.len(), 2);
        let revoke = pb::RevokeAgentRequest {
            agent_id: w.globex.agent.to_string(),
        };
        assert_eq!(
            code(agents.revoke_agent(with(&token, revoke)).await),
            Code::PermissionDenied
        );
        let me = session
            .who_am_i(with(&token, pb::WhoAmIRequest {}))
            .await
            .expect("whoami")
            .into_inner();
        assert_eq!(me.credential, "api_token");
        assert_eq!(me.token_scope, "read");
        assert!(!me.msp_admin, "a read token does not act as an MSP administrator");
        assert_eq!(me.memberships.len(), 2);
        assert!(me.memberships.iter().all(|m| m.role == pb::Role::Viewer as i32));
    }
}

#[tokio::test]
async fn the_event_stream_shows_only_the_callers_tenant_and_ends_with_the_token() {
    use outpost_proto::api_v1::event_service_client::EventServiceClient;
    for w in worlds().await {
        let owner = w.user("acme-admin", NewUser::Member(w.acme.id, Role::Admin)).await;
        let token = w
            .token(
                &owner,
                TokenBinding::Tenant(w.admin.tenant_scope(w.acme.id)),
                TokenScope::Read,
            )
            .await;
        let mut events = EventServiceClient::new(w.channel.clone());
        let mut stream = events
            .subscribe(with(
                &token,
                pb::SubscribeRequest {
                    kinds: vec!["agent".into()],
                },
            ))
            .await
            .expect("subscribe")
            .into_inner();
        // Let the stream take its first look before anything changes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        w.store
            .revoke_agent(&w.admin, w.globex.agent, &Actor::local_operator())
            .await
            .expect("revoke globex");
        w.store
            .revoke_agent(&w.admin, w.acme.agent, &Actor::local_operator())
            .await
            .expect("revoke acme");
        let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within a few polls")
            .expect("stream ok")
            .expect("an event");
        let Some(pb::event::Event::Agent(a)) = event.event else {
            panic!("not an agent event: {event:?}")
        };
        assert_eq!(a.change, "revoked");
        assert_eq!(
            a.agent.expect("agent").id,
            w.acme.agent.to_string(),
            "never another tenant's agent"
        );

        let id = w
            .store
            .tenant_api_tokens(&w.admin.tenant_scope(w.acme.id))
            .await
            .expect("tokens")[0]
            .id
            .clone();
        w.store
            .revoke_api_token(TokenBinding::MspWide(w.admin), &id, &Actor::local_operator())
            .await
            .expect("revoke token");
        let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the stream ends within a few polls");
        assert_eq!(end.expect_err("ends with a status").code(), Code::Unauthenticated);
    }
}

#[tokio::test]
async fn configuration_secrets_stay_masked_unless_a_tenant_admin_reveals_them() {
    use outpost_store::devices::reports::{BackupRow, DeviceReport, ReportBody};
    use outpost_store::ingest::IngestBatch;
    for w in worlds().await {
        let export = "# by RouterOS 7.18.2\n/ppp secret\nadd name=vpn password=hunter2\n";
        let device = w.acme.device.to_string();
        let key = w.vault.tenant(&w.acme.id.to_string()).backup_key(&device);
        let sealed = key
            .seal(&outpost_vault::backup_context(&device), export.as_bytes())
            .expect("seal");
        let batch = IngestBatch {
            metrics: vec![],
            host_facts: vec![],
            devices: vec![DeviceReport {
                seq: 1,
                observed_at_ms: 1_700_000_000_000,
                device: w.acme.device,
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
            discovery: vec![],
            through_seq: 1,
            outbox_depth: 0,
        };
        w.store.ingest(&w.acme.agent_scope, &batch).await.expect("ingest");

        let admin = w.user("acme-admin", NewUser::Member(w.acme.id, Role::Admin)).await;
        let viewer = w.user("acme-viewer", NewUser::Member(w.acme.id, Role::Viewer)).await;
        let scope = TokenBinding::Tenant(w.admin.tenant_scope(w.acme.id));
        let admin_token = w.token(&admin, scope, TokenScope::Admin).await;
        let viewer_token = w.token(&viewer, scope, TokenScope::Admin).await;
        let mut devices = DeviceServiceClient::new(w.channel.clone());
        let versions = devices
            .list_config_versions(with(
                &viewer_token,
                pb::ListConfigVersionsRequest {
                    device_id: device.clone(),
                },
            ))
            .await
            .expect("versions")
            .into_inner()
            .versions;
        assert_eq!(versions.len(), 1);
        let ask = |reveal: bool| pb::GetConfigVersionRequest {
            device_id: device.clone(),
            taken_at_ms: versions[0].taken_at_ms,
            reveal_secrets: reveal,
        };
        let masked = devices
            .get_config_version(with(&viewer_token, ask(false)))
            .await
            .expect("masked")
            .into_inner();
        assert!(
            masked.export.contains("add name=vpn password=********"),
            "{}",
            masked.export
        );
        assert!(!masked.export.contains("hunter2"));
        // A viewer's token is capped by the viewer's role, whatever scope it was given.
        assert_eq!(
            code(devices.get_config_version(with(&viewer_token, ask(true))).await),
            Code::PermissionDenied
        );
        let revealed = devices
            .get_config_version(with(&admin_token, ask(true)))
            .await
            .expect("revealed")
            .into_inner();
        assert!(revealed.export.contains("password=hunter2"));
        let other = pb::GetConfigVersionRequest {
            device_id: w.globex.device.to_string(),
            ..ask(false)
        };
        assert_eq!(
            code(devices.get_config_version(with(&admin_token, other)).await),
            Code::NotFound
        );
    }
}

/// The TOTP code of `secret` for the step `offset` steps from now.
fn totp_code(secret: &[u8], offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let totp = totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .expect("totp");
    totp.generate((now + offset * 30) as u64).to_string()
}

#[tokio::test]
async fn a_password_sign_in_needs_the_second_factor_and_each_code_works_once() {
    for w in worlds().await {
        let user = w.user("tess", NewUser::Member(w.acme.id, Role::Viewer)).await;
        let secret = [7u8; 20];
        let sealed = w.vault.seal_totp_secret(&user, &secret).expect("seal");
        w.store.set_pending_totp(&user, &sealed).await.expect("pending");
        let now_step = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
            / 30;
        let recovery = w
            .store
            .confirm_totp(&user, &sealed, now_step - 3)
            .await
            .expect("confirm")
            .expect("recovery codes");
        let mut sessions = SessionServiceClient::new(w.channel.clone());
        let login = |second: &str, password: &str| pb::LoginRequest {
            username: "tess".into(),
            password: password.into(),
            second_factor: second.into(),
        };
        let good = "correct horse battery";
        let no_code = sessions.login(login("", good)).await.expect_err("a code is needed");
        assert_eq!(no_code.code(), Code::FailedPrecondition, "{no_code:?}");
        assert!(no_code.message().contains("second factor required"));
        assert_eq!(code(sessions.login(login("000000", good)).await), Code::Unauthenticated);
        assert_eq!(
            code(sessions.login(login(&totp_code(&secret, 0), "wrong password")).await),
            Code::Unauthenticated
        );

        let current = totp_code(&secret, 0);
        let session = sessions
            .login(login(&current, good))
            .await
            .expect("password and code")
            .into_inner()
            .session_token;
        let me = sessions
            .who_am_i(with(&session, pb::WhoAmIRequest {}))
            .await
            .expect("the session works")
            .into_inner();
        assert_eq!((me.username.as_str(), me.credential.as_str()), ("tess", "session"));
        assert_eq!(me.memberships.len(), 1);
        assert_eq!(
            code(sessions.login(login(&current, good)).await),
            Code::Unauthenticated,
            "a code works once"
        );

        sessions
            .login(login(&recovery[0], good))
            .await
            .expect("a recovery code");
        assert_eq!(
            code(sessions.login(login(&recovery[0], good)).await),
            Code::Unauthenticated,
            "and so does a recovery code"
        );

        sessions
            .logout(with(&session, pb::LogoutRequest {}))
            .await
            .expect("logout");
        assert_eq!(
            code(sessions.who_am_i(with(&session, pb::WhoAmIRequest {})).await),
            Code::Unauthenticated
        );

        // Failures from one address run into its limit, as in the console.
        let mut last = Code::Ok;
        for _ in 0..10 {
            last = code(sessions.login(login("", "guess")).await);
            if last == Code::ResourceExhausted {
                break;
            }
        }
        assert_eq!(last, Code::ResourceExhausted);
    }
}
