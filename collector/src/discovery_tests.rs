//! Discovery through the collector's own code on SQLite: a job added by the
//! command line reaches the agent's assignment with its community opened
//! from the vault; hosts validated from the wire land in the inventory; a
//! router is adopted with the site's profile, whose password the new device
//! opens; "scan now" goes only to a connected agent and is recorded.
use std::time::Duration;

use outpost_certs::ca::{CertificateAuthority, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::token::EnrollmentToken;
use outpost_certs::{AgentCertificate, SiteId};
use outpost_proto::agent_v1::{
    Batch, DiscoveredHost, DiscoveredHosts, Observation, OpenPort, collector_message, command, observation,
    snmp_credential,
};
use outpost_store::agents::Connecting;
use outpost_store::inventory::scans::ScanState;
use outpost_store::inventory::views::HostQuery;
use outpost_store::scope::Viewer;
use outpost_store::tokens::EnrollAsk;
use outpost_store::{AdminScope, AgentScope, Store};

use crate::cli::Location;
use crate::data_dir::DataDir;
use crate::discovery_commands::{self, JobSpec};
use outpost_agent_port::live::LiveSessions;
use outpost_agent_port::{discovery, validate};

/// An agent of `tenant`/`site` enrolled the way `Enroll` does it: its scope
/// and certificate serial.
async fn enrolled(
    store: &Store,
    admin: &AdminScope,
    ca: &CertificateAuthority,
    tenant: &str,
    site: &str,
) -> (AgentScope, String) {
    let s = store.ensure_site(admin, tenant, site).await.expect("site");
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(
            admin,
            &s,
            &token,
            Duration::from_secs(60),
            &outpost_store::audit::Actor::local_operator(),
        )
        .await
        .expect("token");
    let ask = EnrollAsk {
        hostname: "h",
        version: "1",
        csr_key_sha256: uuid::Uuid::new_v4().simple().to_string(),
        previous: None,
    };
    let e = store
        .enroll(&token, &ask, None, |id| {
            let req = generate_key_and_csr("test").map_err(|e| e.to_string())?;
            ca.sign_agent_csr(&req.csr_der, id, Validity::starting_now(Duration::from_secs(3600)))
                .map_err(|e| e.to_string())
        })
        .await
        .expect("enroll");
    let cert = AgentCertificate {
        identity: e.identity,
        serial: e.certificate.serial.clone(),
        not_before: 0,
        not_after: 0,
    };
    (AgentScope::from_certificate(&cert), e.certificate.serial)
}

fn router_at(address: &str) -> Observation {
    Observation {
        seq: 1,
        observed_at_ms: outpost_store::now_ms(),
        source: None,
        body: Some(observation::Body::DiscoveredHosts(DiscoveredHosts {
            scan_id: "scan-1".into(),
            scanned_ports: vec![22, 8728, 8729],
            hosts: vec![DiscoveredHost {
                address: address.into(),
                mac: "02:00:00:00:00:01".into(),
                open_ports: [22, 8729]
                    .into_iter()
                    .map(|port| OpenPort {
                        port,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

#[tokio::test]
async fn a_job_reaches_the_agent_and_a_found_router_is_adopted_with_the_site_profile() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path());
    let ca = dir.init(&["localhost".into()]).expect("init");
    let location = Location {
        data_dir: tmp.path().to_owned(),
        database_url: None,
    };
    let (store, admin) = Store::open_as_operator(tmp.path(), None).await.expect("store");
    let (agent, _) = enrolled(&store, &admin, &ca, "acme", "hq").await;
    let vault = dir.load_vault().expect("vault");

    let spec = JobSpec {
        tenant: "acme".into(),
        site: "hq".into(),
        targets: "192.0.2.0/24".into(),
        ports: Some("22,8728-8729".into()),
        rate: 200,
        interval: 600,
        community: Some("n0t-public".into()),
        v3: None,
    };
    let job = discovery_commands::add_job(&store, &admin, &dir, &spec)
        .await
        .expect("job");
    let unknown = JobSpec {
        site: "nowhere".into(),
        ..spec.clone()
    };
    let err = discovery_commands::add_job(&store, &admin, &dir, &unknown)
        .await
        .expect_err("no such site");
    assert!(err.to_string().contains("no site \"nowhere\""), "{err}");
    let jobs = store.assigned_discovery_jobs(&agent).await.expect("jobs");
    let assignment = discovery::assignment(&vault, &agent, &jobs);
    assert_eq!(assignment.jobs.len(), 1);
    let wire = &assignment.jobs[0];
    assert_eq!(wire.job_id, job.to_string());
    assert_eq!(
        (wire.targets.as_slice(), wire.ports.as_slice()),
        (&["192.0.2.0/24".to_owned()][..], &[22, 8728, 8729][..])
    );
    assert_eq!((wire.rate_pps, wire.interval_secs), (200, 600));
    assert!(matches!(
        &wire.snmp[0].kind,
        Some(snmp_credential::Kind::Community(c)) if c == "n0t-public"
    ));
    // Another vault key opens nothing: the job is left out, not sent without SNMP.
    let other = outpost_vault::Vault::generate().expect("vault");
    assert!(discovery::assignment(&other, &agent, &jobs).jobs.is_empty());

    let validated = validate::validate_batch(
        &agent,
        Batch {
            observations: vec![router_at("192.0.2.1")],
            outbox_depth: 0,
        },
    )
    .expect("valid");
    assert!(validated.rejected.is_empty());
    let out = store.ingest(&agent, &validated.batch).await.expect("ingest");
    assert_eq!(out.discovery.new_hosts, 1);
    let host = store
        .list_hosts(&Viewer::Admin(admin), &HostQuery::default())
        .await
        .expect("hosts")[0]
        .id;

    let err = discovery_commands::adopt_host(&store, &admin, &dir, host)
        .await
        .expect_err("no profile");
    assert!(err.to_string().contains("credential profile"), "{err}");
    discovery_commands::profile_set(&location, "acme", "hq", "netops", "r0uter-pw")
        .await
        .expect("profile");
    let device = discovery_commands::adopt_host(&store, &admin, &dir, host)
        .await
        .expect("adopt");
    let assigned = store.assigned_devices(&agent).await;
    // The device goes to a connected agent; this one is not connected, so
    // read the device through the console's view and its sealed password here.
    assert!(assigned.expect("assigned").is_empty());
    let row = store.device(&Viewer::Admin(admin), device).await.expect("device");
    assert_eq!(
        (row.address.as_str(), row.api_port, row.api_tls),
        ("192.0.2.1", 8729, true)
    );
    store.claim_devices(&agent).await.expect("claim");
    let mine = store.assigned_devices(&agent).await.expect("assigned");
    let password = vault
        .tenant(&agent.tenant().to_string())
        .open_device_password(&device.to_string(), &mine[0].password_sealed)
        .expect("the device's password opens");
    assert_eq!((mine[0].username.as_str(), password.as_str()), ("netops", "r0uter-pw"));
    let again = discovery_commands::adopt_host(&store, &admin, &dir, host)
        .await
        .expect_err("twice");
    assert!(again.to_string().contains("already managed"), "{again}");

    discovery_commands::job_delete(&location, &job.to_string())
        .await
        .expect("delete");
    assert!(store.assigned_discovery_jobs(&agent).await.expect("jobs").is_empty());
    assert!(
        discovery_commands::job_delete(&location, &job.to_string())
            .await
            .is_err()
    );
    store.close().await;
}

#[tokio::test]
async fn scan_now_goes_to_a_connected_agent_of_the_site_and_is_recorded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::generate("test").expect("ca");
    let (store, admin) = Store::open_as_operator(tmp.path(), None).await.expect("store");
    let (agent, serial) = enrolled(&store, &admin, &ca, "acme", "hq").await;
    let (globex, _) = enrolled(&store, &admin, &ca, "globex", "hq").await;
    let scope = agent.tenant_scope();
    let sessions = LiveSessions::default();

    let err = discovery::scan_now(&store, &sessions, scope, agent.site(), None)
        .await
        .expect_err("nobody");
    assert!(err.contains("no agent of this site is connected"), "{err}");
    let connecting = Connecting {
        version: "1",
        outbox_depth: 0,
        serial: &serial,
        instance_id: "i1",
        remote: "127.0.0.1:5555".parse().expect("addr"),
    };
    store
        .agent_connected(&agent, &connecting, None)
        .await
        .expect("connected");
    // Connected according to the database, but streaming to another collector.
    let err = discovery::scan_now(&store, &sessions, scope, agent.site(), None)
        .await
        .expect_err("elsewhere");
    assert!(err.contains("connected to this collector"), "{err}");

    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let _ticket = sessions.admit(agent.agent(), "i1", tx);
    let scan = discovery::scan_now(&store, &sessions, scope, agent.site(), None)
        .await
        .expect("sent");
    let sent = rx.recv().await.expect("a message").expect("not an error");
    let Some(collector_message::Kind::Command(cmd)) = sent.kind else {
        panic!("a command")
    };
    let Some(command::Kind::ScanNow(now)) = cmd.kind else {
        panic!("scan now")
    };
    assert_eq!((now.scan_id.as_str(), now.job_id.as_str()), (scan.as_str(), ""));
    let row = store.scan(&Viewer::Tenant(scope), &scan).await.expect("recorded");
    assert_eq!((row.state, row.agent), (ScanState::Requested, Some(agent.agent())));

    // Another tenant cannot reach this site; a job of no site is not found.
    let err = discovery::scan_now(&store, &sessions, globex.tenant_scope(), agent.site(), None)
        .await
        .expect_err("foreign");
    assert!(err.contains("no agent"), "{err}");
    let err = discovery::scan_now(&store, &sessions, scope, SiteId::random(), None)
        .await
        .expect_err("no site");
    assert!(err.contains("no agent"), "{err}");
    let err = discovery::scan_now(
        &store,
        &sessions,
        scope,
        agent.site(),
        Some(outpost_store::inventory::JobId::random()),
    )
    .await
    .expect_err("no job");
    assert!(err.contains("not found"), "{err}");

    // A full queue: nothing is sent and the request is forgotten.
    let (full, _keep) = tokio::sync::mpsc::channel(1);
    full.try_send(Ok(Default::default())).expect("fill");
    let _ticket = sessions.admit(agent.agent(), "i1", full);
    let err = discovery::scan_now(&store, &sessions, scope, agent.site(), None)
        .await
        .expect_err("full");
    assert!(err.contains("not reachable right now"), "{err}");
    let scans = store.list_scans(&Viewer::Tenant(scope), None, 10).await.expect("scans");
    assert_eq!(scans.len(), 1, "only the scan that was sent");
    store.close().await;
}
