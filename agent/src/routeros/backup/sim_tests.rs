//! `take_backup` against simulated devices (outpost-sim, in process, on
//! loopback, every port picked by the OS).
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outpost_proto::agent_v1::ManagedDevice;
use outpost_sim::{DeviceInfo, Fleet, FleetConfig, RosMix};
use outpost_vault::{Key, backup_context};

use super::*;

const KEY: [u8; 32] = [7; 32];

async fn fleet(first: [u8; 4], ros: RosMix) -> (Fleet, DeviceInfo) {
    let fleet = Fleet::start(FleetConfig {
        devices: 1,
        first_ip: Ipv4Addr::from(first),
        ros,
        seed: 7,
        api_port: 0,
        api_ssl_port: 0,
        ssh_port: 0,
        ..FleetConfig::default()
    })
    .await
    .expect("fleet starts");
    let d = fleet.devices()[0].clone();
    (fleet, d)
}

fn managed(d: &DeviceInfo) -> ManagedDevice {
    ManagedDevice {
        device_id: format!("dev-{}", d.ip),
        address: d.ip.to_string(),
        username: "admin".into(),
        password: "admin".into(),
        ssh_port: u32::from(d.ssh.port()),
        backup_key: KEY.to_vec(),
        ..Default::default()
    }
}

fn open(device: &ManagedDevice, backup: &ConfigBackup) -> String {
    let key = Key::from_bytes(&KEY).expect("32 bytes");
    let plain = key
        .open(&backup_context(&device.device_id), &backup.sealed_export)
        .expect("the sealed export opens with the device's key");
    String::from_utf8(plain.to_vec()).expect("utf-8")
}

/// Waits until the wall clock is in a later second than `t`, so two exports
/// cannot share a header time.
async fn after_second_of(t: SystemTime) {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let next = UNIX_EPOCH + Duration::from_secs(secs + 1);
    if let Ok(wait) = next.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

#[tokio::test]
async fn v7_backup_is_sealed_with_secrets_and_the_host_key_is_reported() {
    let (fleet, d) = fleet([127, 0, 150, 1], RosMix::V7).await;
    let device = managed(&d);
    let taken = take_backup(&device, VersionHint::V7).await.expect("backup");
    assert_eq!(taken.command, "/export show-sensitive");
    assert_eq!(
        taken.host_key.as_bytes(),
        &fleet.ssh_host_key_sha256(d.ip).expect("key")
    );
    let b = &taken.backup;
    assert_eq!(b.device_id, device.device_id);
    assert_eq!(b.version, d.version.number);
    assert_eq!(b.trigger, "requested");
    let text = open(&device, b);
    assert!(
        !String::from_utf8_lossy(&b.sealed_export).contains("/ppp secret"),
        "sealed, not clear"
    );
    assert!(text.starts_with("# 20"), "v7 header");
    assert!(
        text.contains("\r\n/ppp secret\r\nadd name=site-vpn password="),
        "show-sensitive"
    );
    let key = Key::from_bytes(&KEY).expect("32 bytes");
    assert_eq!(b.normalized_hmac, key.mac(super::export::normalise(&text).as_bytes()));
}

#[tokio::test]
async fn hmac_ignores_the_header_time_and_follows_the_configuration() {
    let (fleet, d) = fleet([127, 0, 151, 1], RosMix::Mixed).await;
    let device = managed(&d);
    let started = SystemTime::now();
    let first = take_backup(&device, VersionHint::Unknown).await.expect("backup");
    after_second_of(started).await;
    let second = take_backup(&device, VersionHint::Unknown).await.expect("backup");
    let (a, b) = (open(&device, &first.backup), open(&device, &second.backup));
    assert_ne!(a.lines().next(), b.lines().next(), "the header times differ");
    assert_eq!(first.backup.normalized_hmac, second.backup.normalized_hmac);

    fleet
        .control(&format!("config {} /ip dns set servers=192.0.2.53", d.ip))
        .await
        .expect("config");
    let third = take_backup(&device, VersionHint::Unknown).await.expect("backup");
    assert_ne!(third.backup.normalized_hmac, second.backup.normalized_hmac);
    assert!(open(&device, &third.backup).ends_with("/ip dns\r\nset servers=192.0.2.53\r\n"));
}

#[tokio::test]
async fn v6_uses_plain_export_and_an_unknown_version_falls_back_to_it() {
    let (_fleet, d) = fleet([127, 0, 152, 1], RosMix::V6).await;
    let device = managed(&d);
    let v6 = take_backup(&device, VersionHint::V6).await.expect("backup");
    assert_eq!(v6.command, "/export");
    assert_eq!(v6.backup.version, "6.49.10");
    let text = open(&device, &v6.backup);
    assert!(text.contains("add name=site-vpn password="), "v6 exports secrets");

    let unknown = take_backup(&device, VersionHint::Unknown).await.expect("backup");
    assert_eq!(unknown.command, "/export");
    assert_eq!(unknown.backup.normalized_hmac, v6.backup.normalized_hmac);

    let err = take_backup(&device, VersionHint::V7)
        .await
        .expect_err("v6 refuses show-sensitive");
    match err {
        BackupError::ExportRefused { command, message } => {
            assert_eq!(command, "/export show-sensitive");
            assert_eq!(message, "expected end of command (line 1 column 9)");
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_wrong_pin_fails_before_login_and_names_both_keys() {
    let (fleet, d) = fleet([127, 0, 153, 1], RosMix::V7).await;
    let mut device = managed(&d);
    let real = HostKeyFingerprint::from(fleet.ssh_host_key_sha256(d.ip).expect("key"));
    device.ssh_host_key_sha256 = vec![9; 32];
    let err = take_backup(&device, VersionHint::V7).await.expect_err("mismatch");
    match &err {
        BackupError::HostKeyMismatch { presented, pinned, .. } => {
            assert_eq!(*presented, real);
            assert_eq!(*pinned, HostKeyFingerprint::from([9; 32]));
        }
        other => panic!("expected a host key mismatch, got {other}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains(&real.to_string()) && shown.contains("SSH host key"),
        "{shown}"
    );

    // The right pin works; a learnt pin is checked the same way after a
    // rotation.
    device.ssh_host_key_sha256 = real.as_bytes().to_vec();
    take_backup(&device, VersionHint::V7).await.expect("pinned backup");
    device.ssh_host_key_sha256.clear();
    fleet
        .control(&format!("rotate-host-key {}", d.ip))
        .await
        .expect("rotate");
    let mut opts = BackupOptions::new(VersionHint::V7);
    opts.learnt_pin = Some(real);
    let err = take_backup_with(&device, &opts).await.expect_err("rotated");
    assert!(matches!(err, BackupError::HostKeyMismatch { .. }), "{err}");
}

#[tokio::test]
async fn wrong_password_refused_port_and_slow_device_are_told_apart() {
    let (fleet, d) = fleet([127, 0, 154, 1], RosMix::V7).await;
    let mut device = managed(&d);
    device.password = "wrong".into();
    let err = take_backup(&device, VersionHint::V7).await.expect_err("auth");
    assert!(matches!(err, BackupError::AuthFailed { .. }), "{err}");
    assert!(!err.to_string().contains("wrong"), "no password in messages");

    device.password = "admin".into();
    fleet.control(&format!("slow {} 5000", d.ip)).await.expect("slow");
    let mut opts = BackupOptions::new(VersionHint::V7);
    opts.timeout = Duration::from_millis(500);
    let err = take_backup_with(&device, &opts).await.expect_err("timeout");
    assert!(matches!(err, BackupError::Timeout { .. }), "{err}");

    fleet.control(&format!("down {}", d.ip)).await.expect("down");
    let err = take_backup(&device, VersionHint::V7).await.expect_err("refused");
    assert!(matches!(err, BackupError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn an_export_over_the_size_cap_is_refused() {
    let (_fleet, d) = fleet([127, 0, 155, 1], RosMix::V7).await;
    let mut opts = BackupOptions::new(VersionHint::V7);
    opts.max_bytes = 64;
    let err = take_backup_with(&managed(&d), &opts).await.expect_err("too large");
    assert!(matches!(err, BackupError::TooLarge { limit: 64, .. }), "{err}");
}
