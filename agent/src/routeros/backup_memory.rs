//! What the agent remembers of the backups it sent during this run, to decide
//! when a device is due and whether a fresh export is worth sending.
//!
//! - The first backup of each device in the run is due after its first
//!   successful poll (trigger `first`).
//! - After that a backup is taken when the collector asks (`requested`),
//!   when `last-config-change` moved (`config-changed`), and once a day
//!   after the last one sent (`scheduled`).
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

#[derive(Debug)]
struct Sent {
    hmac: Vec<u8>,
    at: Instant,
}

/// Last backup sent per device, shared by the fleet's device tasks.
#[derive(Debug, Clone, Default)]
pub struct BackupMemory(Arc<Mutex<HashMap<String, Sent>>>);

/// What asks for a backup besides the memory itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// The collector asked.
    pub requested: bool,
    /// The configuration changed since the last poll.
    pub config_changed: bool,
}

impl BackupMemory {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sent>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which backup of `device_id` is due at `now`, if any.
    pub fn due(&self, device_id: &str, asked: Asked, now: Instant) -> Option<Trigger> {
        let last = self.lock().get(device_id).map(|s| s.at);
        match last {
            None => Some(Trigger::First),
            Some(_) if asked.requested => Some(Trigger::Requested),
            Some(_) if asked.config_changed => Some(Trigger::ConfigChanged),
            Some(at) if now.saturating_duration_since(at) >= DAILY => Some(Trigger::Scheduled),
            Some(_) => None,
        }
    }

    /// Whether an export with `hmac`, taken for `trigger`, should be sent;
    /// if so it is recorded as sent at `now` (the daily schedule counts from
    /// there). An export not sent changes nothing.
    pub fn record(&self, device_id: &str, hmac: &[u8], trigger: Trigger, now: Instant) -> bool {
        let mut sent = self.lock();
        let unchanged = sent.get(device_id).is_some_and(|s| s.hmac == hmac);
        if unchanged && !matches!(trigger, Trigger::Scheduled | Trigger::First) {
            return false;
        }
        sent.insert(
            device_id.to_owned(),
            Sent {
                hmac: hmac.to_vec(),
                at: now,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_asked_then_daily_and_unchanged_exports_stay_home() {
        let m = BackupMemory::default();
        let t0 = Instant::now();
        let none = Asked::default();
        assert_eq!(m.due("d", none, t0), Some(Trigger::First));
        assert!(m.record("d", b"h1", Trigger::First, t0));
        assert_eq!(m.due("d", none, t0), None);
        assert_eq!(m.due("other", none, t0), Some(Trigger::First), "per device");

        let changed = Asked {
            config_changed: true,
            ..Asked::default()
        };
        assert_eq!(m.due("d", changed, t0), Some(Trigger::ConfigChanged));
        assert!(!m.record("d", b"h1", Trigger::ConfigChanged, t0), "same HMAC, not sent");
        assert!(m.record("d", b"h2", Trigger::ConfigChanged, t0), "changed, sent");

        let asked = Asked {
            requested: true,
            config_changed: true,
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
}
