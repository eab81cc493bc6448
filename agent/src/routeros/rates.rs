//! Interface counters → bits per second, safe across wraps and resets.
//!
//! RouterOS API counters are 64-bit, but some interface drivers and older
//! versions wrap at 2³²; a reboot or `/interface reset-counters` sets them back
//! to zero. A counter that went down is therefore read as a 32-bit wrap when
//! that gives a believable rate, as a 64-bit wrap when the old value was near
//! the top, and otherwise as a reset, for which no rate is reported (a gap in
//! the chart, never a spike or a negative rate).
use std::collections::HashMap;
use std::time::Duration;

/// Rates above this are not believed (no interface moves 1 Tbit/s).
const MAX_BITS_PER_SEC: f64 = 1e12;
/// A 64-bit counter this close to the top may have wrapped.
const WRAP64_MARGIN: u64 = 1 << 48;

/// One interface's counters at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Bytes a counter moved from `prev` to `cur`, or `None` for a reset.
fn delta(prev: u64, cur: u64, secs: f64) -> Option<u64> {
    if cur >= prev {
        return Some(cur - prev);
    }
    let believable = |d: u64| (d as f64 * 8.0 / secs) <= MAX_BITS_PER_SEC;
    if prev <= u64::from(u32::MAX) {
        let d = (u64::from(u32::MAX) - prev) + cur + 1;
        if believable(d) && cur <= u64::from(u32::MAX) && d < (1 << 31) {
            return Some(d);
        }
    }
    if prev > u64::MAX - WRAP64_MARGIN {
        let d = (u64::MAX - prev).wrapping_add(cur).wrapping_add(1);
        if believable(d) {
            return Some(d);
        }
    }
    None
}

/// Remembers each interface's last counters and turns new ones into rates.
#[derive(Debug, Default)]
pub struct RateTracker {
    last: HashMap<String, Counters>,
    last_at: Option<Duration>,
    last_uptime: Option<u64>,
}

impl RateTracker {
    /// Starts a poll taken at `at` (a monotonic clock) of a device up for
    /// `uptime_secs`: a smaller uptime than last time means it rebooted, and
    /// no rate is computed across that.
    pub fn begin(&mut self, at: Duration, uptime_secs: Option<u64>) -> Poll<'_> {
        let elapsed = self.last_at.and_then(|t| at.checked_sub(t)).map(|d| d.as_secs_f64());
        let rebooted = matches!((self.last_uptime, uptime_secs), (Some(a), Some(b)) if b < a);
        if rebooted {
            self.last.clear();
        }
        self.last_at = Some(at);
        if uptime_secs.is_some() {
            self.last_uptime = uptime_secs;
        }
        Poll {
            tracker: self,
            elapsed: elapsed.filter(|s| *s > 0.0),
            seen: Vec::new(),
        }
    }
}

/// One poll's worth of rate computations.
#[derive(Debug)]
pub struct Poll<'a> {
    tracker: &'a mut RateTracker,
    elapsed: Option<f64>,
    seen: Vec<String>,
}

impl Poll<'_> {
    /// `(rx, tx)` bits per second for `interface`, or `None` on its first
    /// sight, after a reset, or when the time since the last poll is unknown.
    pub fn rates(&mut self, interface: &str, now: Counters) -> Option<(f64, f64)> {
        self.seen.push(interface.to_owned());
        let prev = self.tracker.last.insert(interface.to_owned(), now)?;
        let secs = self.elapsed?;
        let rx = delta(prev.rx_bytes, now.rx_bytes, secs)?;
        let tx = delta(prev.tx_bytes, now.tx_bytes, secs)?;
        let bits = |d: u64| d as f64 * 8.0 / secs;
        Some((bits(rx), bits(tx)))
    }
}

impl Drop for Poll<'_> {
    /// Forgets interfaces that are gone, so the map tracks the device.
    fn drop(&mut self) {
        if !self.seen.is_empty() {
            let seen = std::mem::take(&mut self.seen);
            self.tracker.last.retain(|name, _| seen.iter().any(|s| s == name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rx: u64, tx: u64) -> Counters {
        Counters {
            rx_bytes: rx,
            tx_bytes: tx,
        }
    }

    fn poll(t: &mut RateTracker, secs: u64, uptime: u64, rx: u64, tx: u64) -> Option<(f64, f64)> {
        t.begin(Duration::from_secs(secs), Some(uptime))
            .rates("ether1", c(rx, tx))
    }

    #[test]
    fn steady_counters_give_bits_per_second() {
        let mut t = RateTracker::default();
        assert_eq!(poll(&mut t, 0, 100, 1_000, 2_000), None, "first sight has no rate");
        assert_eq!(poll(&mut t, 60, 160, 61_000, 2_000), Some((8_000.0, 0.0)));
    }

    #[test]
    fn a_32_bit_wrap_is_read_as_a_wrap() {
        let mut t = RateTracker::default();
        let top = u64::from(u32::MAX);
        poll(&mut t, 0, 100, top - 999, 0);
        let (rx, _) = poll(&mut t, 10, 110, 1_000, 0).expect("rate across a 32-bit wrap");
        assert_eq!(rx, 2_000.0 * 8.0 / 10.0);
    }

    #[test]
    fn a_64_bit_wrap_is_read_as_a_wrap() {
        let mut t = RateTracker::default();
        poll(&mut t, 0, 100, u64::MAX - 499, 0);
        let (rx, _) = poll(&mut t, 1, 101, 500, 0).expect("rate across a 64-bit wrap");
        assert_eq!(rx, 8_000.0);
    }

    #[test]
    fn a_reset_gives_no_rate_and_the_next_poll_does() {
        let mut t = RateTracker::default();
        poll(&mut t, 0, 100, 5_000_000_000_000, 7_000_000_000_000);
        assert_eq!(poll(&mut t, 60, 160, 10, 20), None, "counters reset without a reboot");
        assert_eq!(poll(&mut t, 120, 220, 610, 20), Some((80.0, 0.0)));
    }

    #[test]
    fn a_reboot_forgets_every_interface() {
        let mut t = RateTracker::default();
        poll(&mut t, 0, 1_000, 100, 100);
        // Counters look like they grew, but the device rebooted in between.
        assert_eq!(poll(&mut t, 60, 30, 200, 200), None);
        assert!(poll(&mut t, 120, 90, 800, 200).is_some());
    }

    #[test]
    fn interfaces_that_disappear_are_forgotten() {
        let mut t = RateTracker::default();
        {
            let mut p = t.begin(Duration::from_secs(0), Some(1));
            p.rates("ether1", c(1, 1));
            p.rates("ether2", c(1, 1));
        }
        {
            let mut p = t.begin(Duration::from_secs(1), Some(2));
            p.rates("ether1", c(2, 2));
        }
        assert_eq!(t.last.len(), 1);
    }
}
