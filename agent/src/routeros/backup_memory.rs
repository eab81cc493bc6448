//! What the agent remembers of the backups it sent during this run, to decide
//! when a device is due and whether a fresh export is worth sending.
//!
//! - The first backup of each device in the run is due after its first
//!   successful poll (trigger `first`).
//! - After that a backup is taken when the collector asks (`requested`),
//!   when `last-config-change` moved (`config-changed`), and once a day
//!   after the last one sent (`scheduled`).
//! - RouterOS before 7.17 has no `last-config-change`: for those devices an
//!   export is taken every [`EXPORT_CHECK`] and sent only when its HMAC moved
//!   (as `config-changed`), so a change is caught within that time rather
//!   than by the daily backup.
//! - An export whose normalised HMAC equals the last one sent for the device
//!   is not sent again, except the daily one (so the collector sees the
//!   device is still backed up) and the first of the run.
//!
//! Kept by the fleet, not by device tasks, so a task restarted because the
//! collector changed the device's settings (e.g. pinned the host key the
//! agent reported) does not send the same export again. Only HMACs are kept,
//! never exports. The lock is a `std` one and is never held across an await.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::backup::Trigger;

/// A backup is sent at least this often while the device is reachable.
pub const DAILY: Duration = Duration::from_secs(24 * 60 * 60);

/// How often the export of a device without `last-config-change` is compared
/// with the last one sent.
pub const EXPORT_CHECK: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct Sent {
    hmac: Vec<u8>,
    at: Instant,
    /// Last export taken, sent or not.
    checked: Instant,
}

#[derive(Debug, Default)]
struct Devices {
    sent: HashMap<String, Sent>,
    /// A backup that failed, still owed (e.g. until an operator accepts a
    /// new host key, which restarts the device's task).
    owed: HashMap<String, Trigger>,
}

/// Last backup sent per device, shared by the fleet's device tasks.
#[derive(Debug, Clone, Default)]
pub struct BackupMemory(Arc<Mutex<Devices>>);

/// What asks for a backup besides the memory itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// The collector asked.
    pub requested: bool,
    /// The configuration changed since the last poll.
    pub config_changed: bool,
    /// The device reports `last-config-change` (RouterOS 7.17 and later), so
    /// its changes need no export to be noticed.
    pub reports_changes: bool,
}

impl BackupMemory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Devices> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which backup of `device_id` is due at `now`, if any.
    pub fn due(&self, device_id: &str, asked: Asked, now: Instant) -> Option<Trigger> {
        let (last, owed) = {
            let devices = self.lock();
            (
                devices.sent.get(device_id).map(|s| (s.at, s.checked)),
                devices.owed.get(device_id).copied(),
            )
        };
        match last {
            None => Some(Trigger::First),
            Some(_) if asked.requested => Some(Trigger::Requested),
            Some(_) if asked.config_changed => Some(Trigger::ConfigChanged),
            Some(_) if owed.is_some() => owed,
            Some((at, _)) if now.saturating_duration_since(at) >= DAILY => Some(Trigger::Scheduled),
            Some((_, checked)) if !asked.reports_changes && now.saturating_duration_since(checked) >= EXPORT_CHECK => {
                Some(Trigger::ExportCheck)
            }
            Some(_) => None,
        }
    }

    /// Whether an export with `hmac`, taken for `trigger`, should be sent;
    /// if so it is recorded as sent at `now` (the daily schedule counts from
    /// there). An export not sent only counts as checked.
    pub fn record(&self, device_id: &str, hmac: &[u8], trigger: Trigger, now: Instant) -> bool {
        let mut devices = self.lock();
        devices.owed.remove(device_id);
        if let Some(s) = devices.sent.get_mut(device_id)
            && s.hmac == hmac
            && !matches!(trigger, Trigger::Scheduled | Trigger::First)
        {
            s.checked = now;
            return false;
        }
        devices.sent.insert(
            device_id.to_owned(),
            Sent {
                hmac: hmac.to_vec(),
                at: now,
                checked: now,
            },
        );
        true
    }
}

impl BackupMemory {
    /// A backup for `trigger` failed: it stays due (first of all after the
    /// device's task restarts) until one is taken.
    pub fn owe(&self, device_id: &str, trigger: Trigger) {
        let mut devices = self.lock();
        let owed = devices.owed.entry(device_id.to_owned()).or_insert(trigger);
        // A requested or changed configuration outranks a routine one.
        if matches!(*owed, Trigger::Scheduled | Trigger::ExportCheck) {
            *owed = trigger;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_asked_then_daily_and_unchanged_exports_stay_home() {
        let m = BackupMemory::default();
        let t0 = Instant::now();
        let none = Asked {
            reports_changes: true,
            ..Asked::default()
        };
        assert_eq!(m.due("d", none, t0), Some(Trigger::First));
        assert!(m.record("d", b"h1", Trigger::First, t0));
        assert_eq!(m.due("d", none, t0), None);
        assert_eq!(m.due("other", none, t0), Some(Trigger::First), "per device");

        let changed = Asked {
            config_changed: true,
            ..none
        };
        assert_eq!(m.due("d", changed, t0), Some(Trigger::ConfigChanged));
        assert!(!m.record("d", b"h1", Trigger::ConfigChanged, t0), "same HMAC, not sent");
        assert!(m.record("d", b"h2", Trigger::ConfigChanged, t0), "changed, sent");

        let asked = Asked {
            requested: true,
            config_changed: true,
            reports_changes: true,
        };
        assert_eq!(m.due("d", asked, t0), Some(Trigger::Requested));
        assert!(!m.record("d", b"h2", Trigger::Requested, t0));

        // Time is passed in, so the day goes by without waiting.
        assert_eq!(m.due("d", none, t0 + DAILY - Duration::from_secs(1)), None);
        let now = t0 + DAILY;
        assert_eq!(m.due("d", none, now), Some(Trigger::Scheduled));
        assert!(
            m.record("d", b"h2", Trigger::Scheduled, now),
            "the daily one is sent unchanged"
        );
        assert_eq!(m.due("d", none, now), None);
    }

    #[test]
    fn without_last_config_change_exports_are_compared_every_check_interval() {
        let m = BackupMemory::default();
        let t0 = Instant::now();
        let old = Asked::default();
        assert_eq!(m.due("d", old, t0), Some(Trigger::First));
        assert!(m.record("d", b"h1", Trigger::First, t0));
        assert_eq!(m.due("d", old, t0 + EXPORT_CHECK - Duration::from_secs(1)), None);
        let t1 = t0 + EXPORT_CHECK;
        assert_eq!(m.due("d", old, t1), Some(Trigger::ExportCheck));
        assert!(!m.record("d", b"h1", Trigger::ExportCheck, t1), "unchanged: not sent");
        assert_eq!(m.due("d", old, t1), None, "checked counts from the export taken");
        let t2 = t1 + EXPORT_CHECK;
        assert_eq!(m.due("d", old, t2), Some(Trigger::ExportCheck));
        assert!(m.record("d", b"h2", Trigger::ExportCheck, t2), "changed: sent");
        assert_eq!(Trigger::ExportCheck.as_str(), "config-changed");
        let reports = Asked {
            reports_changes: true,
            ..old
        };
        assert_eq!(m.due("d", reports, t2 + EXPORT_CHECK), None, "7.17+ needs no check");
    }

    #[test]
    fn a_failed_backup_stays_owed_until_one_is_taken() {
        let m = BackupMemory::default();
        let t0 = Instant::now();
        let none = Asked {
            reports_changes: true,
            ..Asked::default()
        };
        assert!(m.record("d", b"h1", Trigger::First, t0));
        m.owe("d", Trigger::Requested);
        assert_eq!(
            m.due("d", none, t0),
            Some(Trigger::Requested),
            "after a restart nothing asks again"
        );
        m.owe("d", Trigger::Scheduled);
        assert_eq!(m.due("d", none, t0), Some(Trigger::Requested));
        assert!(!m.record("d", b"h1", Trigger::Requested, t0));
        assert_eq!(m.due("d", none, t0), None, "paid");
    }
}
