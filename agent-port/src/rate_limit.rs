//! Per-source rate limit of `Enroll` calls: a token bucket per [`Source`].
//!
//! Each bucket holds up to `burst` calls and refills one every `every`. It is
//! stored as the instant it will be full again (`full_at`), so a bucket that
//! has refilled is the same as no bucket and can be evicted: the map only
//! holds sources that called recently. At most [`MAX_SOURCES`] are tracked;
//! further sources share one bucket, so a flood from very many addresses is
//! throttled as a whole rather than growing memory.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::source::Source;

/// Sources tracked one by one.
pub(crate) const MAX_SOURCES: usize = 16_384;

/// Bucket size and refill period.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    /// Calls allowed at once.
    pub(crate) burst: u32,
    /// One more call is allowed per this period.
    pub(crate) every: Duration,
}

/// `Enroll` from one address: ten at once (a technician enrolling a site's
/// agents behind one NAT address), then one every six seconds. Redeeming a
/// token is one call per agent per life, so an honest site never waits long.
pub(crate) const ENROLL_RATE: Rate = Rate {
    burst: 10,
    every: Duration::from_secs(6),
};

#[derive(Debug, Default)]
struct Buckets {
    full_at: HashMap<Source, Instant>,
    others: Option<Instant>,
    last_sweep: Option<Instant>,
}

/// Token buckets by source.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: Rate,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// Buckets of `rate`.
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        // Each bucket is one `Instant`, written whole.
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one call from `source`'s bucket at `now`, or says how long until
    /// one is available.
    pub(crate) fn check(&self, now: Instant, source: Source) -> Result<(), Duration> {
        let mut buckets = self.lock();
        let buckets = &mut *buckets;
        let swept_recently = buckets
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if !buckets.full_at.contains_key(&source) && buckets.full_at.len() >= MAX_SOURCES && !swept_recently {
            // Full: make room from refilled buckets, at most once a second, so
            // a flood from many addresses does not scan the map on every call.
            buckets.full_at.retain(|_, full_at| *full_at > now);
            buckets.last_sweep = Some(now);
        }
        let full_at = if let Some(full_at) = buckets.full_at.get_mut(&source) {
            full_at
        } else if buckets.full_at.len() < MAX_SOURCES {
            buckets.full_at.entry(source).or_insert(now)
        } else {
            buckets.others.get_or_insert(now)
        };
        take(self.rate, full_at, now)
    }

    /// Forgets buckets that have refilled.
    pub(crate) fn evict(&self, now: Instant) {
        let mut buckets = self.lock();
        buckets.full_at.retain(|_, full_at| *full_at > now);
        if buckets.others.is_some_and(|full_at| full_at <= now) {
            buckets.others = None;
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().full_at.len()
    }
}

/// GCRA: a call is allowed while the bucket is less than `burst - 1` periods
/// away from full, and each call moves "full" one period further away.
fn take(rate: Rate, full_at: &mut Instant, now: Instant) -> Result<(), Duration> {
    let slack = rate.every.saturating_mul(rate.burst.saturating_sub(1));
    let behind = full_at.saturating_duration_since(now);
    if behind > slack {
        return Err(behind - slack);
    }
    *full_at = (*full_at).max(now) + rate.every;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn src(s: &str) -> Source {
        Source::of(s.parse().expect("test address"))
    }

    const RATE: Rate = Rate {
        burst: 3,
        every: Duration::from_secs(10),
    };

    #[test]
    fn a_burst_then_one_per_period_with_the_wait_told() {
        let l = RateLimiter::new(RATE);
        let (a, b) = (src("192.0.2.1"), src("192.0.2.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check(t0, a).expect("within the burst");
        }
        assert_eq!(l.check(t0, a), Err(Duration::from_secs(10)));
        assert_eq!(l.check(t0 + Duration::from_secs(4), a), Err(Duration::from_secs(6)));
        // Another source has its own bucket.
        l.check(t0, b).expect("other source");
        // One period later, exactly one more call.
        let t1 = t0 + Duration::from_secs(10);
        l.check(t1, a).expect("refilled one");
        assert!(l.check(t1, a).is_err());
        // Long quiet: the whole burst again, never more.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            l.check(t2, a).expect("full again");
        }
        assert!(l.check(t2, a).is_err());
    }

    #[test]
    fn refilled_buckets_are_evicted_and_memory_is_bounded() {
        let l = RateLimiter::new(RATE);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            let s = Source::V4(Ipv4Addr::from_bits(0x0a00_0000 + i));
            l.check(t0, s).expect("first call");
        }
        assert_eq!(l.tracked(), MAX_SOURCES);
        // The map is full of busy buckets: newcomers share one.
        let (x, y) = (src("192.0.2.1"), src("192.0.2.2"));
        for _ in 0..3 {
            l.check(t0, x).expect("shared bucket");
        }
        assert!(l.check(t0, y).is_err(), "the shared bucket is empty");
        assert_eq!(l.tracked(), MAX_SOURCES);
        // Once the buckets refill they make room again.
        let later = t0 + Duration::from_secs(10);
        l.check(later, y).expect("room again");
        assert_eq!(l.tracked(), 1);
        l.evict(later + Duration::from_secs(10));
        assert_eq!(l.tracked(), 0);
    }
}
