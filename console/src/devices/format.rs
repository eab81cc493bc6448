//! How device numbers read: RouterOS-like uptimes, bits per second, bytes.

/// `3w2d4h`: the largest three non-zero units of weeks, days, hours, minutes
/// and seconds, as RouterOS abbreviates them.
pub(crate) fn uptime(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let units = [(604_800, 'w'), (86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')];
    let mut left = secs;
    let mut out = String::new();
    let mut shown = 0;
    for (size, unit) in units {
        let n = left / size;
        left %= size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
        if n > 0 || shown > 0 {
            shown += 1;
        }
        if shown == 3 {
            break;
        }
    }
    out
}

fn scaled(value: f64, step: f64, units: &[&str]) -> String {
    let mut v = value;
    let mut i = 0;
    while v.abs() >= step && i + 1 < units.len() {
        v /= step;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", units[0])
    } else if v.abs() >= 100.0 {
        format!("{v:.0} {}", units[i])
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `12.5 Mbps` (decimal prefixes, as interface rates are quoted).
pub(crate) fn bits_per_second(bps: f64) -> String {
    scaled(bps, 1000.0, &["bps", "kbps", "Mbps", "Gbps", "Tbps"])
}

/// `1.5 GiB` (binary prefixes, as RouterOS shows memory).
pub(crate) fn bytes(n: i64) -> String {
    scaled(n as f64, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// `used / total` of a resource given as free and total bytes.
pub(crate) fn used_of(free: Option<i64>, total: Option<i64>) -> String {
    match (free, total) {
        (Some(free), Some(total)) if total > 0 => format!(
            "{} / {} ({}%)",
            bytes(total - free),
            bytes(total),
            (total - free) * 100 / total
        ),
        _ => "—".into(),
    }
}

/// `2025-01-31 14:05:09 UTC`, or "never".
pub(crate) fn utc(ms: Option<i64>) -> String {
    ms.and_then(crate::overview_data::utc_strings)
        .map_or_else(|| "never".into(), |(_, human)| human)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_like_routeros() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(3_661), "1h1m1s");
        assert_eq!(uptime(3 * 604_800 + 2 * 86_400 + 4 * 3_600 + 5 * 60), "3w2d4h");
        assert_eq!(uptime(604_800 + 5 * 3_600 + 7), "1w5h");
        assert_eq!(uptime(86_400 + 30), "1d");
    }

    #[test]
    fn rates_and_sizes_are_scaled() {
        assert_eq!(bits_per_second(0.0), "0 bps");
        assert_eq!(bits_per_second(999.0), "999 bps");
        assert_eq!(bits_per_second(12_500_000.0), "12.5 Mbps");
        assert_eq!(bits_per_second(950_000_000.0), "950 Mbps");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(used_of(Some(768 << 20), Some(1 << 30)), "256 MiB / 1.0 GiB (25%)");
        assert_eq!(used_of(None, Some(1)), "—");
        assert_eq!(utc(Some(1_700_000_000_123)), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(None), "never");
    }
}
