//! The device page's reads, on every engine of the store suite.
use outpost_certs::ca::CertificateAuthority;

use super::super::reports::{BackupRow, DeviceReport, PollRow, ReportBody, SystemRow};
use super::super::{DeviceId, NewDevice};
use super::*;
use crate::ingest::IngestBatch;
use crate::tests::{engines, enrolled};
use crate::{AdminScope, AgentScope};

/// A device of a new agent's site, with one poll, log lines and a backup.
async fn polled_device(store: &Store, ca: &CertificateAuthority, tenant: &str) -> (AgentScope, DeviceId) {
    let (agent, _) = enrolled(store, ca, tenant, "hq").await;
    let id = DeviceId::random();
    store
        .add_device(
            &agent.tenant_scope(),
            &NewDevice {
                id,
                site: agent.site(),
                address: format!("{tenant}.example"),
                api_port: 8729,
                api_tls: true,
                ssh_port: 22,
                username: "api".into(),
                password_sealed: vec![1, 2, 3],
                poll_interval_secs: 60,
            },
            &crate::audit::Actor::local_operator(),
        )
        .await
        .expect("add device");
    let report = |seq, body| DeviceReport {
        seq,
        observed_at_ms: crate::now_ms() + seq,
        device: id,
        body,
    };
    let poll = PollRow {
        system: Some(SystemRow {
            identity: format!("{tenant}-router"),
            serial_number: "HG1234".into(),
            total_hdd: 128,
            free_hdd: 64,
            ..SystemRow::default()
        }),
        interfaces: vec![InterfaceRow {
            name: "ether1".into(),
            running: true,
            rx_bps: Some(1e6),
            ..InterfaceRow::default()
        }],
        neighbors: Some(vec![NeighborRow {
            interface: "ether1".into(),
            address: "192.0.2.9".into(),
            identity: "upstream".into(),
            ..NeighborRow::default()
        }]),
        addresses: Some(vec![AddressRow {
            address: "192.0.2.1/24".into(),
            interface: "ether1".into(),
            ..AddressRow::default()
        }]),
        ..PollRow::default()
    };
    let lines = (0..150)
        .map(|i| LogRow {
            ros_id: format!("*{i}"),
            message: format!("line {i}"),
            ..LogRow::default()
        })
        .collect();
    let backup = BackupRow {
        ros_version: "7.16".into(),
        normalized_hmac: "h1".into(),
        sealed_export: vec![9; 8],
        sealed_diff: None,
        lines_added: 40,
        lines_removed: 0,
        trigger: "first".into(),
    };
    let batch = IngestBatch {
        devices: vec![
            report(1, ReportBody::Poll(Box::new(poll))),
            report(2, ReportBody::Log(lines)),
            report(3, ReportBody::Backup(backup)),
        ],
        through_seq: 3,
        ..IngestBatch::default()
    };
    let out = store.ingest(&agent, &batch).await.expect("ingest");
    assert_eq!(out.devices.stored, 3, "{out:?}");
    (agent, id)
}

#[tokio::test]
async fn device_pages_read_only_their_tenants_devices() {
    let engines = engines().await;
    let ca = CertificateAuthority::generate("details test CA").expect("CA");
    for store in &engines.stores {
        let (acme, acme_device) = polled_device(store, &ca, "acme").await;
        let (zeta, zeta_device) = polled_device(store, &ca, "zeta").await;
        let acme_viewer = Viewer::Tenant(acme.tenant_scope());

        let d = store.device_details(&acme_viewer, acme_device).await.expect("details");
        assert_eq!(d.facts.serial_number, "HG1234");
        assert_eq!((d.facts.free_hdd, d.facts.total_hdd), (Some(64), Some(128)));
        assert_eq!(d.interfaces.len(), 1);
        assert_eq!(d.interfaces[0].rx_bps, Some(1e6));
        assert!(d.interfaces[0].running);
        assert_eq!(d.neighbors[0].identity, "upstream");
        assert_eq!(d.addresses[0].address, "192.0.2.1/24");
        assert_eq!(d.log.len() as i64, LOG_LINES_SHOWN);
        assert_eq!(d.log[0].line.message, "line 149", "newest first");
        let kinds: Vec<&str> = d.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["config_version", "added"], "newest first");

        let versions = store
            .config_versions(&acme_viewer, acme_device)
            .await
            .expect("versions");
        assert_eq!(versions.len(), 1);
        assert_eq!((versions[0].lines_added, versions[0].trigger.as_str()), (40, "first"));
        let sealed = store
            .config_version(&acme_viewer, acme_device, versions[0].taken_at_ms)
            .await
            .expect("version");
        assert_eq!(sealed.tenant, acme.tenant());
        assert_eq!(sealed.sealed_export, vec![9; 8]);
        assert!(sealed.sealed_diff.is_none());

        // Another tenant's device does not exist for this viewer.
        assert!(matches!(
            store.device_details(&acme_viewer, zeta_device).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(
            store
                .config_versions(&acme_viewer, zeta_device)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store
                .config_version(&acme_viewer, zeta_device, versions[0].taken_at_ms)
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store
                .record_device_event(
                    &acme.tenant_scope(),
                    zeta_device,
                    "config_revealed",
                    "x",
                    (
                        &crate::audit::Actor::local_operator(),
                        crate::audit::AuditEvent::success(None, "test.event", "test")
                    )
                )
                .await,
            Err(StoreError::NotFound(_))
        ));

        let topology = store.topology_rows(&acme_viewer).await.expect("topology");
        assert_eq!(topology.neighbors.len(), 1);
        assert_eq!(topology.neighbors[0].0, acme_device);
        assert_eq!(topology.addresses, vec![(acme_device, "192.0.2.1/24".to_owned())]);
        let all = store
            .topology_rows(&Viewer::Admin(AdminScope::verified()))
            .await
            .expect("topology");
        assert_eq!(all.neighbors.len(), 2);

        store
            .record_device_event(
                &zeta.tenant_scope(),
                zeta_device,
                "config_revealed",
                "by alice",
                (
                    &crate::audit::Actor::local_operator(),
                    crate::audit::AuditEvent::success(None, "test.event", "test"),
                ),
            )
            .await
            .expect("event");
        let d = store
            .device_details(&Viewer::Tenant(zeta.tenant_scope()), zeta_device)
            .await
            .expect("details");
        assert!(
            d.events
                .iter()
                .any(|e| e.kind == "config_revealed" && e.detail == "by alice"),
            "{:?}",
            d.events
        );
    }
}
