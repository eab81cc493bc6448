//! When each device is polled, and how long a failing one is left alone.
//!
//! Start times are spread over the interval by a hash of the device id, so
//! 10,000 devices assigned at once do not all fire in the same second and a
//! device keeps its slot across agent restarts. A device that keeps failing is
//! retried with exponential backoff (a per-device circuit breaker): an
//! unreachable router costs one connection attempt per backoff period, not one
//! per poll.
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// First retry delay after a failure.
pub const BASE_BACKOFF: Duration = Duration::from_secs(5);
/// Longest delay between attempts on a failing device.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Where in each interval `device_id` is polled: `[0, interval)`.
pub fn offset(device_id: &str, interval: Duration) -> Duration {
    let interval_ms = interval.as_millis().max(1) as u64;
    let digest = Sha256::digest(device_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % interval_ms)
}

/// The first poll time, as time since `epoch_ms` (the Unix clock now), so that
/// polls land on `offset` within each interval of wall-clock time.
pub fn first_delay(device_id: &str, interval: Duration, now_ms: u64) -> Duration {
    let interval_ms = interval.as_millis().max(1) as u64;
    let want = offset(device_id, interval).as_millis() as u64;
    let into = now_ms % interval_ms;
    Duration::from_millis((want + interval_ms - into) % interval_ms)
}

/// Consecutive failures of one device and the delay they earn.
#[derive(Debug, Default, Clone)]
pub struct Breaker {
    failures: u32,
}

impl Breaker {
    /// A poll succeeded: back to the normal schedule.
    pub fn success(&mut self) {
        self.failures = 0;
    }

    /// A connection or login failed: how long to wait before trying again,
    /// with equal jitter (`jitter` in `[0, 1)`).
    pub fn failure(&mut self, jitter: f64) -> Duration {
        let cap = BASE_BACKOFF
            .saturating_mul(2u32.saturating_pow(self.failures.min(16)))
            .min(MAX_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        cap / 2 + cap.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_spread_evenly_over_the_interval() {
        let interval = Duration::from_secs(60);
        let mut per_second = [0u32; 60];
        for i in 0..10_000 {
            let o = offset(&format!("dev-{i}"), interval);
            assert!(o < interval);
            per_second[o.as_secs() as usize] += 1;
        }
        // 10,000 devices over 60 s: about 167 a second; none far above.
        let max = per_second.iter().max().copied().unwrap_or(0);
        assert!(max < 250, "a second holds {max} polls");
        assert_eq!(offset("dev-1", interval), offset("dev-1", interval));
    }

    #[test]
    fn the_first_poll_lands_on_the_devices_slot() {
        let interval = Duration::from_secs(60);
        for now in [0u64, 1_234, 59_999, 1_700_000_000_123] {
            let d = first_delay("dev-7", interval, now);
            assert!(d < interval);
            let at = now + d.as_millis() as u64;
            assert_eq!(at % 60_000, offset("dev-7", interval).as_millis() as u64);
        }
    }

    #[test]
    fn failures_back_off_exponentially_to_a_cap_and_success_resets() {
        let mut b = Breaker::default();
        assert_eq!(b.failure(1.0), BASE_BACKOFF);
        assert_eq!(b.failure(1.0), BASE_BACKOFF * 2);
        assert_eq!(b.failure(0.0), BASE_BACKOFF * 2);
        for _ in 0..20 {
            assert!(b.failure(1.0) <= MAX_BACKOFF);
        }
        assert_eq!(b.failure(1.0), MAX_BACKOFF);
        b.success();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.failure(1.0), BASE_BACKOFF);
    }
}
