//! RouterOS value formats: durations (`3w2d14h23m15s`), dates in the v6 and v7
//! styles, MAC addresses. The API carries every value as a string, so these
//! produce exactly the text a router would send.

use std::time::{SystemTime, UNIX_EPOCH};

/// RouterOS duration: weeks, days, hours, minutes, seconds, leaving out zero
/// units (`3w2d`, `14h23m15s`); zero is `0s`.
pub(crate) fn duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let units = [(604_800, 'w'), (86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')];
    let mut left = secs;
    let mut out = String::new();
    for (size, unit) in units {
        let n = left / size;
        left %= size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push(unit);
        }
    }
    out
}

/// Calendar fields of a UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl Civil {
    pub(crate) fn from_system(t: SystemTime) -> Self {
        let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days-to-civil conversion (proleptic Gregorian), after H. Hinnant.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3_600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    fn month_abbrev(&self) -> &'static str {
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        MONTHS[(self.month.clamp(1, 12) - 1) as usize]
    }

    /// `20:42:21`
    pub(crate) fn clock(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }

    /// v7 style: `2026-09-22 20:42:21`.
    pub(crate) fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02} {}", self.year, self.month, self.day, self.clock())
    }

    /// v6 style: `sep/22/2026 20:42:21`.
    pub(crate) fn v6(&self) -> String {
        format!(
            "{}/{:02}/{:04} {}",
            self.month_abbrev(),
            self.day,
            self.year,
            self.clock()
        )
    }

    /// v6 log style for earlier days: `sep/22 20:42:21`.
    pub(crate) fn v6_short(&self) -> String {
        format!("{}/{:02} {}", self.month_abbrev(), self.day, self.clock())
    }

    pub(crate) fn same_day(&self, other: &Civil) -> bool {
        (self.year, self.month, self.day) == (other.year, other.month, other.day)
    }
}

/// `48:8F:5A:01:02:03`
pub(crate) fn mac(bytes: [u8; 6]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_like_routeros() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(
            duration(3 * 604_800 + 2 * 86_400 + 14 * 3_600 + 23 * 60 + 15),
            "3w2d14h23m15s"
        );
        assert_eq!(duration(3 * 604_800 + 2 * 86_400), "3w2d");
        assert_eq!(duration(14 * 3_600 + 23 * 60 + 15), "14h23m15s");
    }

    #[test]
    fn dates_in_both_styles() {
        // 2026-09-22 20:42:21 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_790_109_741);
        let c = Civil::from_system(t);
        assert_eq!(c.iso(), "2026-09-22 20:42:21");
        assert_eq!(c.v6(), "sep/22/2026 20:42:21");
        assert_eq!(c.v6_short(), "sep/22 20:42:21");
        assert_eq!(Civil::from_system(UNIX_EPOCH).v6(), "jan/01/1970 00:00:00");
    }

    #[test]
    fn macs_are_upper_case_with_colons() {
        assert_eq!(mac([0x48, 0x8f, 0x5a, 0, 0x1, 0xab]), "48:8F:5A:00:01:AB");
    }
}
