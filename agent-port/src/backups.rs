//! Configuration backups from agents: opened with the device's backup key,
//! compared with the newest stored version, and stored with their diff.
//!
//! The agent seals each export with a key derived from the tenant's vault key
//! for that device, so neither its outbox nor this collector's database holds
//! a device's secrets in clear. Opening here also proves the export is about
//! a device of the agent's own tenant: another tenant's key would not open it.
use outpost_store::AgentScope;
use outpost_store::Store;
use outpost_store::devices::reports::{BackupRow, DeviceReport, ReportBody};
use outpost_vault::{Vault, backup_context, diff_context};

use super::device_reports::device_id;
use super::validate::PendingBackup;

/// Largest export accepted (RouterOS exports of big routers are a few MB).
const MAX_EXPORT: usize = 32 * 1024 * 1024;

/// A unified diff of two exports, with lines added and removed.
pub(super) fn diff(old: &str, new: &str) -> (String, i64, i64) {
    let d = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0i64, 0i64);
    for change in d.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = d
        .unified_diff()
        .context_radius(3)
        .header("previous", "this version")
        .to_string();
    (text, added, removed)
}

/// Turns received backups into reports to store; a backup that cannot be
/// opened or compared is rejected with the reason (seq, reason).
pub(super) async fn prepare(
    store: &Store,
    vault: &Vault,
    scope: &AgentScope,
    pending: Vec<PendingBackup>,
) -> (Vec<DeviceReport>, Vec<(i64, String)>) {
    let tenant = vault.tenant(&scope.tenant().to_string());
    let (mut ready, mut refused) = (Vec::new(), Vec::new());
    for p in pending {
        let device = match device_id(&p.backup.device_id) {
            Ok(d) => d,
            Err(reason) => {
                refused.push((p.seq, reason));
                continue;
            }
        };
        if p.backup.sealed_export.len() > MAX_EXPORT + 64 {
            refused.push((p.seq, format!("configuration export larger than {MAX_EXPORT} bytes")));
            continue;
        }
        let key = tenant.backup_key(&device.to_string());
        let context = backup_context(&device.to_string());
        let export = match key.open(&context, &p.backup.sealed_export) {
            Ok(e) => e,
            Err(e) => {
                refused.push((
                    p.seq,
                    format!("the configuration backup of device {device} does not open: {e}"),
                ));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&export).into_owned();
        let hmac = hex::encode(&p.backup.normalized_hmac);
        let previous = match store.latest_config(scope, device).await {
            Ok(prev) => prev,
            Err(e) => {
                refused.push((p.seq, format!("reading the previous configuration failed: {e}")));
                continue;
            }
        };
        let (sealed_diff, added, removed) = match &previous {
            Some((prev_hmac, _)) if *prev_hmac == hmac => (None, 0, 0),
            Some((_, sealed)) => match key.open(&context, sealed) {
                Ok(old) => {
                    let (d, added, removed) = diff(&String::from_utf8_lossy(&old), &text);
                    match key.seal(&diff_context(&device.to_string()), d.as_bytes()) {
                        Ok(s) => (Some(s), added, removed),
                        Err(e) => {
                            refused.push((p.seq, format!("sealing the diff failed: {e}")));
                            continue;
                        }
                    }
                }
                // The previous version was sealed with another key (a vault
                // key change): store this one without a diff.
                Err(_) => (None, 0, 0),
            },
            None => (None, text.lines().count() as i64, 0),
        };
        ready.push(DeviceReport {
            seq: p.seq,
            observed_at_ms: p.observed_at_ms,
            device,
            body: ReportBody::Backup(BackupRow {
                ros_version: p.backup.version.chars().take(64).collect(),
                normalized_hmac: hmac,
                sealed_export: p.backup.sealed_export,
                sealed_diff,
                lines_added: added,
                lines_removed: removed,
                trigger: p.backup.trigger.chars().take(32).collect(),
            }),
        });
    }
    (ready, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_counts_lines_and_reads_as_a_unified_diff() {
        let old = "# by RouterOS 7.16.2\n/system identity\nset name=core\n/ip address\nadd address=192.0.2.1/24\n";
        let new = "# by RouterOS 7.16.2\n/system identity\nset name=edge\n/ip address\nadd address=192.0.2.1/24\n";
        let (text, added, removed) = diff(old, new);
        assert_eq!((added, removed), (1, 1));
        assert!(text.contains("-set name=core\n+set name=edge\n"), "{text}");
        assert!(text.starts_with("--- previous\n+++ this version\n"), "{text}");
        assert_eq!(diff(old, old).1 + diff(old, old).2, 0);
    }
}
