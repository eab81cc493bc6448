//! Devices on every engine: tenancy of reports, exactly-once storage, pins,
//! assignment and configuration versions.
use outpost_certs::ca::CertificateAuthority;

use super::reports::{BackupRow, DeviceReport, InterfaceRow, LogRow, PollRow, ReportBody, StatusRow, SystemRow};
use super::*;
use crate::ingest::IngestBatch;
use crate::row_scope::RowScope;
use crate::scope::Viewer;
use crate::tests::{connecting, engines, enrolled};

fn new_device(site: SiteId, address: &str) -> NewDevice {
    NewDevice {
        id: DeviceId::random(),
        site,
        address: address.into(),
        api_port: 8728,
        api_tls: false,
        ssh_port: 22,
        username: "admin".into(),
        password_sealed: vec![1, 2, 3],
        poll_interval_secs: 60,
    }
}

fn poll(seq: i64, device: DeviceId, at: i64, rx_bytes: i64) -> DeviceReport {
    DeviceReport {
        seq,
        observed_at_ms: at,
        device,
        body: ReportBody::Poll(Box::new(PollRow {
            duration_ms: 12,
            system: Some(SystemRow {
                identity: "core".into(),
                version: "7.16.2".into(),
                channel: "stable".into(),
                cpu_load: 7,
                total_memory: 1024,
                free_memory: 512,
                ..Default::default()
            }),
            interfaces: vec![InterfaceRow {
                name: "ether1".into(),
                kind: "ether".into(),
                running: true,
                rx_bytes,
                rx_bps: Some(8_000.0),
                tx_bps: Some(4_000.0),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

fn log_line(seq: i64, device: DeviceId, id: &str) -> DeviceReport {
    DeviceReport {
        seq,
        observed_at_ms: 1_000,
        device,
        body: ReportBody::Log(vec![LogRow {
            ros_id: id.into(),
            time: "12:00:00".into(),
            topics: "system,info".into(),
            message: "user admin logged in".into(),
        }]),
    }
}

fn batch(through: i64, devices: Vec<DeviceReport>) -> IngestBatch {
    IngestBatch {
        metrics: vec![],
        host_facts: vec![],
        devices,
        discovery: vec![],
        through_seq: through,
        outbox_depth: 0,
    }
}

async fn count(store: &Store, sql: &'static str, device: DeviceId) -> i64 {
    on_pool!(store, RowScope::All, pool, _Db => {
        let (n,): (i64,) = sqlx::query_as(sql).bind(device.to_string()).fetch_one(pool).await.expect("count");
        n
    })
}

#[tokio::test]
async fn device_reports_are_stored_once_and_only_for_the_agents_own_site() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, _) = enrolled(store, &ca, "acme", "hq").await;
        let (other_site, _) = enrolled(store, &ca, "acme", "branch").await;
        let (other_tenant, _) = enrolled(store, &ca, "globex", "hq").await;
        let device = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.1"),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("add");

        let first = batch(
            3,
            vec![
                poll(1, device, 60_000, 100),
                log_line(2, device, "*1"),
                poll(3, device, 120_000, 200),
            ],
        );
        let out = store.ingest(&agent, &first).await.expect("ingest");
        assert_eq!((out.devices.stored, out.devices.duplicates), (3, 0));
        assert!(out.devices.refused.is_empty());
        let listed = store
            .device(&Viewer::Tenant(agent.tenant_scope()), device)
            .await
            .expect("device");
        assert_eq!((listed.identity.as_str(), listed.cpu_load), ("core", Some(7)));
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM device_interfaces WHERE device_id = $1",
                device
            )
            .await,
            1
        );
        let samples =
            "SELECT COUNT(*) FROM metric_raw r JOIN metric_series s ON s.id = r.series_id WHERE s.device_id = $1";
        let stored_samples = count(store, samples, device).await;
        assert!(stored_samples > 0);

        // A resent batch (the ack was lost) changes nothing.
        let again = store.ingest(&agent, &first).await.expect("resend");
        assert_eq!((again.devices.stored, again.devices.duplicates), (0, 3));
        assert_eq!(count(store, samples, device).await, stored_samples);
        assert_eq!(
            count(store, "SELECT COUNT(*) FROM device_log WHERE device_id = $1", device).await,
            1
        );

        // Another site's agent, and another tenant's, cannot report on it.
        for (intruder, seq) in [(&other_site, 1), (&other_tenant, 1)] {
            let out = store
                .ingest(intruder, &batch(seq, vec![log_line(seq, device, "*2")]))
                .await
                .expect("ingest");
            assert_eq!(out.devices.stored, 0);
            assert_eq!(out.devices.refused.len(), 1, "{:?}", out.devices.refused);
            assert!(
                out.devices.refused[0]
                    .1
                    .contains("not a live device of this agent's site")
            );
        }
        assert_eq!(
            count(store, "SELECT COUNT(*) FROM device_log WHERE device_id = $1", device).await,
            1
        );

        // Another tenant's viewer does not see it.
        let globex = other_tenant.tenant_scope();
        assert!(matches!(
            store.device(&Viewer::Tenant(globex), device).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            store
                .list_devices(&Viewer::Tenant(globex))
                .await
                .expect("list")
                .is_empty()
        );
        assert!(matches!(
            store
                .delete_device(&globex, device, &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::NotFound(_))
        ));

        // A deleted device's reports are refused.
        store
            .delete_device(&agent.tenant_scope(), device, &crate::audit::Actor::local_operator())
            .await
            .expect("delete");
        let out = store
            .ingest(&agent, &batch(4, vec![log_line(4, device, "*3")]))
            .await
            .expect("ingest");
        assert_eq!(out.devices.refused.len(), 1);
    }
}

fn status(seq: i64, device: DeviceId, state: DeviceState, fingerprint: &str) -> DeviceReport {
    DeviceReport {
        seq,
        observed_at_ms: seq * 1_000,
        device,
        body: ReportBody::Status(StatusRow {
            state,
            reason: String::new(),
            api_tls_fingerprint: fingerprint.into(),
            ssh_host_key: String::new(),
            backup_problem: String::new(),
        }),
    }
}

#[tokio::test]
async fn a_certificate_is_pinned_on_first_use_and_a_change_waits_for_an_operator() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, _) = enrolled(store, &ca, "acme", "hq").await;
        let mut d = new_device(agent.site(), "192.0.2.9");
        d.api_tls = true;
        let device = store
            .add_device(&agent.tenant_scope(), &d, &crate::audit::Actor::local_operator())
            .await
            .expect("add");
        let viewer = Viewer::Tenant(agent.tenant_scope());
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));

        store
            .ingest(&agent, &batch(1, vec![status(1, device, DeviceState::Up, &a)]))
            .await
            .expect("up");
        let row = store.device(&viewer, device).await.expect("device");
        assert_eq!(
            (row.state, row.api_tls_pin.as_deref()),
            (DeviceState::Up, Some(a.as_str()))
        );

        // The agent reports another certificate as up (it learnt it on first
        // use itself): the collector's pin wins and the device is flagged.
        store
            .ingest(&agent, &batch(2, vec![status(2, device, DeviceState::Up, &b)]))
            .await
            .expect("other");
        let row = store.device(&viewer, device).await.expect("device");
        assert_eq!(row.state, DeviceState::TlsPinMismatch);
        assert_eq!(
            row.api_tls_pin.as_deref(),
            Some(a.as_str()),
            "the pin never moves by itself"
        );
        assert_eq!(row.presented_tls_fingerprint.as_deref(), Some(b.as_str()));

        // Until an operator accepts it.
        assert_eq!(
            store
                .accept_device_certificate(&agent.tenant_scope(), device, &crate::audit::Actor::local_operator())
                .await
                .expect("accept"),
            b
        );
        let row = store.device(&viewer, device).await.expect("device");
        assert_eq!(
            (row.api_tls_pin.as_deref(), row.presented_tls_fingerprint),
            (Some(b.as_str()), None)
        );
        assert!(matches!(
            store
                .accept_device_certificate(&agent.tenant_scope(), device, &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::Conflict(_))
        ));
        let events = count(
            store,
            "SELECT COUNT(*) FROM device_events WHERE device_id = $1 AND kind = 'certificate_accepted'",
            device,
        )
        .await;
        assert_eq!(events, 1);
    }
}

fn backup_status(seq: i64, device: DeviceId, host_key: &str, problem: &str) -> DeviceReport {
    let mut r = status(seq, device, DeviceState::Up, "");
    if let ReportBody::Status(s) = &mut r.body {
        s.ssh_host_key = host_key.into();
        s.backup_problem = problem.into();
    }
    r
}

#[tokio::test]
async fn backup_problems_are_recorded_and_a_new_host_key_waits_for_an_operator() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, serial) = enrolled(store, &ca, "acme", "hq").await;
        let device = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.10"),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("add");
        store
            .agent_connected(&agent, &connecting(&serial, "i1"), None)
            .await
            .expect("connect");
        assert_eq!(store.claim_devices(&agent).await.expect("claim"), 1);
        let viewer = Viewer::Tenant(agent.tenant_scope());
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let facts = |store: &Store| {
            let store = store.clone();
            let viewer = viewer.clone();
            async move { store.device_details(&viewer, device).await.expect("details").facts }
        };

        store
            .ingest(&agent, &batch(1, vec![backup_status(1, device, &a, "")]))
            .await
            .expect("first key");
        let f = facts(store).await;
        assert_eq!(
            (
                f.ssh_host_key_pin.as_deref(),
                f.presented_ssh_host_key,
                f.backup_problem.as_str()
            ),
            (Some(a.as_str()), None, "")
        );

        // Another key: the backup fails, the key waits, the pin stays.
        let problem = format!("SSH host key changed: sha256 {b}");
        for seq in [2, 3] {
            store
                .ingest(&agent, &batch(seq, vec![backup_status(seq, device, &b, &problem)]))
                .await
                .expect("changed key");
        }
        let f = facts(store).await;
        assert_eq!(
            f.ssh_host_key_pin.as_deref(),
            Some(a.as_str()),
            "the pin never moves by itself"
        );
        assert_eq!(f.presented_ssh_host_key.as_deref(), Some(b.as_str()));
        assert_eq!(f.backup_problem, problem);
        let row = store.device(&viewer, device).await.expect("device");
        assert_eq!(row.state, DeviceState::Up, "the API side is fine");
        for (kind, n) in [("ssh_host_key_changed", 1), ("backup_problem", 1)] {
            let sql = match kind {
                "ssh_host_key_changed" => {
                    "SELECT COUNT(*) FROM device_events WHERE device_id = $1 AND kind = 'ssh_host_key_changed'"
                }
                _ => "SELECT COUNT(*) FROM device_events WHERE device_id = $1 AND kind = 'backup_problem'",
            };
            assert_eq!(count(store, sql, device).await, n, "{kind} once, not with every status");
        }

        // Another tenant cannot accept it.
        let (other, _) = enrolled(store, &ca, "globex", "hq").await;
        assert!(matches!(
            store
                .accept_device_host_key(&other.tenant_scope(), device, &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::NotFound(_))
        ));
        let version = store.assignment_version(&agent).await.expect("version");
        assert_eq!(
            store
                .accept_device_host_key(&agent.tenant_scope(), device, &crate::audit::Actor::local_operator())
                .await
                .expect("accept"),
            b
        );
        assert_ne!(
            store.assignment_version(&agent).await.expect("version"),
            version,
            "the agent gets the new pin"
        );
        let f = facts(store).await;
        assert_eq!(
            (f.ssh_host_key_pin.as_deref(), f.presented_ssh_host_key),
            (Some(b.as_str()), None)
        );
        assert!(matches!(
            store
                .accept_device_host_key(&agent.tenant_scope(), device, &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::Conflict(_))
        ));

        // The next backup works: the problem clears.
        store
            .ingest(&agent, &batch(4, vec![backup_status(4, device, &b, "")]))
            .await
            .expect("works again");
        assert_eq!(facts(store).await.backup_problem, "");
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM device_events WHERE device_id = $1 AND kind = 'backup_problem'",
                device
            )
            .await,
            2
        );
    }
}

#[tokio::test]
async fn devices_go_to_a_connected_agent_of_their_site_and_changes_are_noticed() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, serial) = enrolled(store, &ca, "acme", "hq").await;
        let (peer, _) = enrolled(store, &ca, "acme", "hq").await;
        // Added while no agent is connected: nobody polls it yet.
        let first = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.1"),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("add");
        assert_eq!(
            store.device_agent(&agent.tenant_scope(), first).await.expect("agent"),
            None
        );
        let empty = store.assignment_version(&agent).await.expect("version");

        store
            .agent_connected(&agent, &connecting(&serial, "i1"), None)
            .await
            .expect("connect");
        assert_eq!(store.claim_devices(&agent).await.expect("claim"), 1);
        assert_eq!(
            store.claim_devices(&peer).await.expect("claim"),
            0,
            "a connected agent keeps its devices"
        );
        let assigned = store.assigned_devices(&agent).await.expect("assigned");
        assert_eq!(assigned.iter().map(|d| d.id).collect::<Vec<_>>(), vec![first]);
        let v1 = store.assignment_version(&agent).await.expect("version");
        assert_ne!(v1, empty);

        // Added while it is connected: it gets it straight away.
        let second = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.2"),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("add");
        assert_eq!(
            store.device_agent(&agent.tenant_scope(), second).await.expect("agent"),
            Some(agent.agent())
        );
        let duplicate = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.2"),
                &crate::audit::Actor::local_operator(),
            )
            .await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{duplicate:?}");
        let v2 = store.assignment_version(&agent).await.expect("version");
        assert_ne!(v2, v1);

        store
            .delete_device(&agent.tenant_scope(), first, &crate::audit::Actor::local_operator())
            .await
            .expect("delete");
        assert_ne!(store.assignment_version(&agent).await.expect("version"), v2);
        assert_eq!(store.assigned_devices(&agent).await.expect("assigned").len(), 1);

        // Another tenant's site is not a place to add devices.
        let (globex, _) = enrolled(store, &ca, "globex", "hq").await;
        let foreign = store
            .add_device(
                &globex.tenant_scope(),
                &new_device(agent.site(), "192.0.2.3"),
                &crate::audit::Actor::local_operator(),
            )
            .await;
        assert!(matches!(foreign, Err(StoreError::NotFound(_))), "{foreign:?}");
    }
}

#[tokio::test]
async fn an_unchanged_configuration_is_not_a_new_version() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, _) = enrolled(store, &ca, "acme", "hq").await;
        let device = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.1"),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("add");
        let backup = |seq: i64, hmac: &str| DeviceReport {
            seq,
            observed_at_ms: seq * 1_000,
            device,
            body: ReportBody::Backup(BackupRow {
                ros_version: "7.16.2".into(),
                normalized_hmac: hmac.into(),
                sealed_export: vec![seq as u8; 40],
                trigger: "scheduled".into(),
                ..Default::default()
            }),
        };
        let out = store
            .ingest(&agent, &batch(2, vec![backup(1, "h1"), backup(2, "h1")]))
            .await
            .expect("ingest");
        assert_eq!(out.devices.backups, 1);
        let out = store
            .ingest(&agent, &batch(3, vec![backup(3, "h2")]))
            .await
            .expect("ingest");
        assert_eq!(out.devices.backups, 1);
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM config_versions WHERE device_id = $1",
                device
            )
            .await,
            2
        );
        let latest = store
            .latest_config(&agent, device)
            .await
            .expect("latest")
            .expect("a version");
        assert_eq!(latest, ("h2".to_owned(), vec![3u8; 40]));
    }
}

#[tokio::test]
async fn a_terminal_reads_the_ssh_login_and_pins_the_host_key_only_once() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, _) = enrolled(store, &ca, "acme", "hq").await;
        let (other, _) = enrolled(store, &ca, "globex", "hq").await;
        let mut d = new_device(agent.site(), "192.0.2.11");
        d.ssh_port = 2222;
        let device = store
            .add_device(&agent.tenant_scope(), &d, &crate::audit::Actor::local_operator())
            .await
            .expect("add");
        assert_eq!(store.claim_devices(&agent).await.expect("claim"), 1);
        let scope = agent.tenant_scope();

        let login = store.device_ssh_login(&scope, device).await.expect("login");
        assert_eq!(
            (
                login.ssh_port,
                login.username.as_str(),
                login.password_sealed.as_slice()
            ),
            (2222, "admin", [1u8, 2, 3].as_slice())
        );
        assert_eq!(login.ssh_host_key_pin, None);
        assert!(matches!(
            store.device_ssh_login(&other.tenant_scope(), device).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            !store
                .pin_ssh_host_key_on_first_use(&other.tenant_scope(), device, &"cc".repeat(32))
                .await
                .expect("another tenant's pin"),
            "another tenant pins nothing"
        );

        let version = store.assignment_version(&agent).await.expect("version");
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        assert!(
            store
                .pin_ssh_host_key_on_first_use(&scope, device, &a)
                .await
                .expect("pin")
        );
        assert_ne!(
            store.assignment_version(&agent).await.expect("version"),
            version,
            "the agent gets the pin"
        );
        assert!(
            !store
                .pin_ssh_host_key_on_first_use(&scope, device, &b)
                .await
                .expect("pin")
        );
        let login = store.device_ssh_login(&scope, device).await.expect("login");
        assert_eq!(login.ssh_host_key_pin, Some(a), "the first key stays pinned");
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM device_events WHERE device_id = $1 AND kind = 'ssh_host_key_pinned'",
                device
            )
            .await,
            1
        );
    }
}

#[tokio::test]
async fn terminal_recordings_grow_end_and_stay_in_their_tenant() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    for store in &engines().await.stores {
        let (agent, _) = enrolled(store, &ca, "acme", "hq").await;
        let (other, _) = enrolled(store, &ca, "globex", "hq").await;
        let device = store
            .add_device(
                &agent.tenant_scope(),
                &new_device(agent.site(), "192.0.2.12"),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("add");
        let scope = agent.tenant_scope();
        let header = r#"{"version":2,"width":80,"height":24}"#;
        assert!(matches!(
            store
                .start_recording(&other.tenant_scope(), device, "eve", "t0", header)
                .await,
            Err(StoreError::NotFound(_))
        ));
        let id = store
            .start_recording(&scope, device, "ops", "t1", header)
            .await
            .expect("start");
        let first = "[0.1,\"o\",\"> \"]\n";
        let second = "[0.2,\"i\",\"x\"]\n";
        let size = |parts: &[&str]| parts.iter().map(|p| p.len() as i64).sum::<i64>() + header.len() as i64 + 1;
        assert_eq!(
            store.append_recording(&scope, &id, first).await.expect("append"),
            size(&[first])
        );
        assert_eq!(
            store.append_recording(&scope, &id, second).await.expect("append"),
            size(&[first, second])
        );
        assert!(matches!(
            store
                .append_recording(&other.tenant_scope(), &id, "[9,\"o\",\"\"]\n")
                .await,
            Err(StoreError::NotFound(_))
        ));
        store.finish_recording(&scope, &id).await.expect("finish");
        assert!(
            store
                .append_recording(&scope, &id, "[1,\"o\",\"late\"]\n")
                .await
                .is_err(),
            "an ended recording takes no more events"
        );
        let r = store.recording(&scope, &id).await.expect("recording");
        assert_eq!(r.cast, format!("{header}\n{first}{second}"));
        assert_eq!(r.info.size_bytes, r.cast.len() as i64);
        assert_eq!((r.info.username.as_str(), r.info.tunnel_id.as_str()), ("ops", "t1"));
        assert!(r.info.ended_at_ms.is_some());
        assert!(matches!(
            store.recording(&other.tenant_scope(), &id).await,
            Err(StoreError::NotFound(_))
        ));
        let listed = store.device_recordings(&scope, device, 10).await.expect("list");
        assert_eq!(listed, vec![r.info.clone()]);
        assert_eq!(store.recording_info(&scope, &id).await.expect("info"), r.info);
        assert!(matches!(
            store.recording_info(&other.tenant_scope(), &id).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            store
                .device_recordings(&other.tenant_scope(), device, 10)
                .await
                .expect("list")
                .is_empty()
        );
    }
}
