//! The operator's probe rate: every ICMP echo and TCP connect of a scan takes
//! a slot from one shared limiter, so a scan never sends faster than the rate
//! set, however many probes are in flight.
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Probes per second, shared by the tasks of one scan.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
    sent: std::sync::atomic::AtomicU64,
}

impl RateLimiter {
    /// At most `per_second` probes a second (at least 1).
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(None),
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let slot = {
            // Plain data, never left half-updated.
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep_until(slot).await;
    }

    /// Slots handed out so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn probes_are_spaced_at_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(100));
        let start = Instant::now();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(490) && took < Duration::from_millis(500) + Duration::from_millis(20),
            "{took:?}"
        );
        assert_eq!(limiter.sent(), 50);
    }
}
