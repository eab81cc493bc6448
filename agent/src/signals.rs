//! Wake-ups and small facts shared between the agent's tasks.
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

/// Wake-ups shared between the agent's tasks.
#[derive(Debug, Default)]
pub struct Signals {
    /// New records were appended to the outbox.
    pub new_data: Notify,
    /// Report host facts now.
    pub host_facts_now: Notify,
    /// Renew the certificate now.
    pub renew_now: Notify,
    /// This host's clock minus the collector's, ms, as of the last `Welcome`.
    clock_skew_ms: AtomicI64,
    /// Expiry of the current certificate, Unix seconds (0: unknown).
    cert_not_after: AtomicI64,
}

impl Signals {
    /// Records how far this host's clock is ahead of the collector's.
    pub fn set_clock_skew_ms(&self, skew: i64) {
        self.clock_skew_ms.store(skew, Ordering::Relaxed);
    }

    /// This host's clock minus the collector's, ms.
    pub fn clock_skew_ms(&self) -> i64 {
        self.clock_skew_ms.load(Ordering::Relaxed)
    }

    /// The collector's idea of now, Unix seconds: certificates are issued on
    /// its clock, so their times are compared with it, not with ours.
    pub fn collector_now_secs(&self) -> i64 {
        (crate::now_ms() - self.clock_skew_ms()) / 1000
    }

    /// Records the current certificate's expiry.
    pub fn set_cert_not_after(&self, not_after: i64) {
        self.cert_not_after.store(not_after, Ordering::Relaxed);
    }

    /// The current certificate's expiry, Unix seconds (0: unknown).
    pub fn cert_not_after(&self) -> i64 {
        self.cert_not_after.load(Ordering::Relaxed)
    }
}
