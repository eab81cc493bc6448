//! When each device is polled, and how long a failing one is left alone.
//!
//! Start times are spread by a hash of the device id, so 10,000 devices
//! assigned at once do not all fire in the same second: the first polls over a
//! window that grows with the fleet (a few devices are polled within seconds
//! of being added; 10,000 over most of a minute), and every later poll one
//! interval after the previous one. A device that keeps failing is
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

/// New connections opened per second when a whole fleet starts.
const STARTS_PER_SEC: u64 = 200;

/// The window the first polls of `fleet_size` devices are spread over: long
/// enough for [`STARTS_PER_SEC`], at least 2 s, at most one interval.
pub fn first_window(fleet_size: usize, interval: Duration) -> Duration {
    let spread = Duration::from_millis((fleet_size as u64).saturating_mul(1000) / STARTS_PER_SEC);
    spread.max(Duration::from_secs(2)).min(interval)
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
    fn first_polls_spread_over_a_window_that_grows_with_the_fleet() {
        let minute = Duration::from_secs(60);
        assert_eq!(first_window(1, minute), Duration::from_secs(2));
        assert_eq!(first_window(4_000, minute), Duration::from_secs(20));
        assert_eq!(first_window(10_000, minute), Duration::from_secs(50));
        assert_eq!(first_window(100_000, minute), minute);
        assert_eq!(first_window(100_000, Duration::from_secs(10)), Duration::from_secs(10));
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
