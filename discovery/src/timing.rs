//! Adaptive probe timeouts per host, as nmap's `-T4` computes them: start
//! at 500 ms; every answer (a connect that succeeded or was refused) updates
//! a smoothed round trip and its variance; the timeout is
//! `srtt + 4 * rttvar`, kept between 100 ms and 1250 ms. A host on the same
//! switch soon gets the 100 ms floor, so filtered ports cost little there.
use std::time::Duration;

/// Timeout before any answer.
pub const INITIAL: Duration = Duration::from_millis(500);
/// Never less.
pub const MIN: Duration = Duration::from_millis(100);
/// Never more.
pub const MAX: Duration = Duration::from_millis(1250);

/// Round-trip estimate of one host.
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimate {
    /// Smoothed round trip and its variance, microseconds; `None` before the
    /// first answer.
    state: Option<(f64, f64)>,
}

impl RttEstimate {
    /// An answer took `rtt`.
    pub fn observe(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64() * 1e6;
        self.state = Some(match self.state {
            None => (r, r / 2.0),
            Some((srtt, rttvar)) => {
                let delta = r - srtt;
                (srtt + delta / 8.0, rttvar + (delta.abs() - rttvar) / 4.0)
            }
        });
    }

    /// The timeout for the next probe.
    pub fn timeout(&self) -> Duration {
        match self.state {
            None => INITIAL,
            Some((srtt, rttvar)) => Duration::from_micros((srtt + 4.0 * rttvar).max(0.0) as u64).clamp(MIN, MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_answers_within_bounds() {
        let mut e = RttEstimate::default();
        assert_eq!(e.timeout(), INITIAL);
        for _ in 0..20 {
            e.observe(Duration::from_micros(300));
        }
        assert_eq!(e.timeout(), MIN, "a fast host gets the floor");
        for _ in 0..50 {
            e.observe(Duration::from_secs(2));
        }
        assert_eq!(e.timeout(), MAX, "a slow one the ceiling");
        let mut e = RttEstimate::default();
        e.observe(Duration::from_millis(200));
        assert_eq!(e.timeout(), Duration::from_millis(600), "srtt + 4 * rtt/2");
    }
}
