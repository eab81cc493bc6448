//! Parsers for the value formats RouterOS prints: durations, versions, signal
//! strengths, rates, counter pairs, booleans, byte counts and dates.
//!
//! Every parser is total: it returns `None` for anything it does not
//! recognise and never panics, whatever the router (or an attacker posing as
//! one) sends. Arithmetic is checked, so absurd values are `None`, not
//! wrapped.

use std::time::Duration;

/// A duration: `42d14h23m15s`, `3w2d`, `1w2d03:04:05`, `00:05:10`, `500ms`,
/// `1s200ms`, `00:00:05.250`.
pub fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        if rest.contains(':') && rest.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'.') {
            // A clock `hh:mm:ss[.frac]` may only end the value.
            total = total.checked_add(clock(rest)?)?;
            break;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = [
            ("ms", Duration::from_millis(1)),
            ("us", Duration::from_micros(1)),
            ("w", Duration::from_secs(7 * 86_400)),
            ("d", Duration::from_secs(86_400)),
            ("h", Duration::from_secs(3_600)),
            ("m", Duration::from_secs(60)),
            ("s", Duration::from_secs(1)),
        ]
        .into_iter()
        .find_map(|(name, unit)| rest.starts_with(name).then_some((unit, name.len())))?;
        rest = &rest[len..];
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
    }
    Some(total)
}

fn clock(s: &str) -> Option<Duration> {
    let mut parts = s.split(':');
    let h: u64 = digits(parts.next()?)?;
    let m: u64 = digits(parts.next()?)?;
    let sec = parts.next()?;
    if parts.next().is_some() || m >= 60 {
        return None;
    }
    let (sec, frac) = match sec.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (sec, None),
    };
    let sec: u64 = digits(sec)?;
    if sec >= 60 {
        return None;
    }
    let nanos = match frac {
        Some(f) => u32::try_from(scaled(&format!("0.{f}"), 1_000_000_000)?).ok()?,
        None => 0,
    };
    let secs = h.checked_mul(3_600)?.checked_add(m * 60 + sec)?;
    Some(Duration::new(secs, nanos))
}

/// Only ASCII digits (no sign, no spaces), as a number.
fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal like `866.6` times `scale`, truncating digits beyond the scale.
fn scaled(s: &str, scale: u64) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { digits(whole)? };
    if !frac.is_empty() && !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits past the 18th cannot change a u64 result at any scale we use.
    let frac = &frac[..frac.len().min(18)];
    let frac_value: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let frac_scaled = frac_value * u128::from(scale) / 10u128.pow(frac.len() as u32);
    let value = whole
        .checked_mul(scale)?
        .checked_add(u64::try_from(frac_scaled).ok()?)?;
    Some(value)
}

/// A RouterOS version: `7.16.2 (stable)`, `6.49.10`, `7.18beta4`, `7.1rc1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// 6 or 7.
    pub major: u32,
    /// Minor release.
    pub minor: u32,
    /// Patch release; 0 when absent (`7.16`).
    pub patch: u32,
    /// Pre-release suffix: `beta4`, `rc1`.
    pub pre: Option<String>,
    /// The channel in parentheses: `stable`, `long-term`, `testing`.
    pub channel: Option<String>,
}

/// Parses a version string (see [`Version`]).
pub fn version(s: &str) -> Option<Version> {
    let s = s.trim();
    let (number, channel) = match s.split_once(' ') {
        Some((n, c)) => {
            let c = c.trim().strip_prefix('(')?.strip_suffix(')')?;
            (n, Some(c.to_owned()))
        }
        None => (s, None),
    };
    let split = number
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(number.len());
    let (numeric, pre) = number.split_at(split);
    let mut parts = numeric.split('.');
    let major = digits(parts.next()?)?;
    let minor = digits(parts.next()?)?;
    let patch = match parts.next() {
        Some(p) => digits(p)?,
        None => 0,
    };
    if parts.next().is_some() || !pre.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch,
        pre: (!pre.is_empty()).then(|| pre.to_owned()),
        channel,
    })
}

/// A signal strength: `-67@5GHz`, `-72@2.4GHz`, `-67@HT40`, `-80@5GHz-Ce/a/ac/an`, `-67`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Strength in dBm.
    pub dbm: i32,
    /// What follows `@`, as the router wrote it.
    pub band: Option<String>,
}

/// Parses a signal strength (see [`Signal`]).
pub fn signal(s: &str) -> Option<Signal> {
    let (dbm, band) = match s.trim().split_once('@') {
        Some((d, b)) => (d, Some(b.to_owned())),
        None => (s.trim(), None),
    };
    let negative = dbm.starts_with('-');
    let magnitude: i32 = digits(dbm.strip_prefix('-').unwrap_or(dbm))?;
    Some(Signal {
        dbm: if negative { -magnitude } else { magnitude },
        band,
    })
}

/// A link rate in bits per second: `130Mbps`, `6.5Mbps-20MHz/1S/SGI`, `1Gbps`,
/// `866.6Mbps-80MHz/2S`, `512kbps`, `0bps`.
pub fn rate(s: &str) -> Option<u64> {
    let s = s.trim();
    let head = s.split_once('-').map_or(s, |(h, _)| h);
    let (number, scale) = [
        ("Gbps", 1_000_000_000),
        ("Mbps", 1_000_000),
        ("kbps", 1_000),
        ("Kbps", 1_000),
        ("bps", 1),
    ]
    .into_iter()
    .find_map(|(unit, scale)| head.strip_suffix(unit).map(|n| (n, scale)))?;
    scaled(number, scale)
}

/// A pair of counters `123456,789012`, in the router's order (tx, rx for
/// registration tables).
pub fn pair(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.trim().split_once(',')?;
    Some((digits(a)?, digits(b)?))
}

/// `true`/`yes` or `false`/`no`.
pub fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// A count (bytes, packets, percent): plain digits, as the API sends them, or
/// with a binary suffix as the console prints them (`15.2MiB`, `1024KiB`).
pub fn count(s: &str) -> Option<u64> {
    let s = s.trim();
    for (unit, scale) in [
        ("KiB", 1u64 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
    ] {
        if let Some(n) = s.strip_suffix(unit) {
            return scaled(n, scale);
        }
    }
    digits(s)
}

/// A date and time in the router's local time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    /// Year, e.g. 2026.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–60 (leap second).
    pub second: u8,
}

/// `2026-09-22 20:42:21` (7.10+) or `sep/22/2026 20:42:21` (older).
pub fn datetime(s: &str) -> Option<DateTime> {
    let (date, time) = s.trim().split_once(' ')?;
    let (year, month, day) = if date.contains('-') {
        let mut p = date.split('-');
        let ymd = (digits(p.next()?)?, digits(p.next()?)?, digits(p.next()?)?);
        p.next().is_none().then_some(ymd)?
    } else {
        let mut p = date.split('/');
        let month = month_number(p.next()?)?;
        let day = digits(p.next()?)?;
        let year = digits(p.next()?)?;
        p.next().is_none().then_some((year, month, day))?
    };
    let mut t = time.split(':');
    let (hour, minute, second) = (digits(t.next()?)?, digits(t.next()?)?, digits(t.next()?)?);
    let valid = t.next().is_none()
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    valid.then_some(DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

fn month_number(name: &str) -> Option<u8> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let name = name.to_ascii_lowercase();
    let index = MONTHS.iter().position(|m| *m == name)?;
    u8::try_from(index + 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn durations_in_every_form() {
        assert_eq!(duration("42d14h23m15s"), secs(42 * 86_400 + 14 * 3_600 + 23 * 60 + 15));
        assert_eq!(duration("3w2d"), secs(23 * 86_400));
        assert_eq!(duration("14h23m15s"), secs(14 * 3_600 + 23 * 60 + 15));
        assert_eq!(duration("3d12h5m"), secs(3 * 86_400 + 12 * 3_600 + 5 * 60));
        assert_eq!(duration("1w2d03:04:05"), secs(9 * 86_400 + 3 * 3_600 + 4 * 60 + 5));
        assert_eq!(duration("00:05:10"), secs(310));
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("1s200ms"), Some(Duration::from_millis(1_200)));
        assert_eq!(duration("00:00:05.25"), Some(Duration::from_millis(5_250)));
        assert_eq!(duration("0s"), secs(0));
        for bad in [
            "",
            "d",
            "5x",
            "-5s",
            "12:99:00",
            "1:2",
            "5s:00:00:00x",
            "99999999999999999999w",
        ] {
            assert_eq!(duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn versions_with_channels_and_prereleases() {
        let v = version("7.16.2 (stable)").expect("valid");
        assert_eq!((v.major, v.minor, v.patch), (7, 16, 2));
        assert_eq!(v.channel.as_deref(), Some("stable"));
        assert_eq!(v.pre, None);
        let v = version("6.49.10").expect("valid");
        assert_eq!((v.major, v.minor, v.patch, v.channel), (6, 49, 10, None));
        let v = version("7.18beta4").expect("valid");
        assert_eq!((v.major, v.minor, v.patch), (7, 18, 0));
        assert_eq!(v.pre.as_deref(), Some("beta4"));
        let v = version("7.15rc2 (testing)").expect("valid");
        assert_eq!((v.pre.as_deref(), v.channel.as_deref()), (Some("rc2"), Some("testing")));
        for bad in ["", "7", "seven.1", "7.1.2.3", "7.1 stable", "7.x"] {
            assert_eq!(version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn signals_with_and_without_band() {
        let s = |dbm, band: Option<&str>| {
            Some(Signal {
                dbm,
                band: band.map(str::to_owned),
            })
        };
        assert_eq!(signal("-67@5GHz"), s(-67, Some("5GHz")));
        assert_eq!(signal("-72@2.4GHz"), s(-72, Some("2.4GHz")));
        assert_eq!(signal("-67@HT40"), s(-67, Some("HT40")));
        assert_eq!(signal("-80@5GHz-Ce/a/ac/an"), s(-80, Some("5GHz-Ce/a/ac/an")));
        assert_eq!(signal("-67"), s(-67, None));
        assert_eq!(signal("abc"), None);
        assert_eq!(signal("-"), None);
    }

    #[test]
    fn rates_in_bits_per_second() {
        assert_eq!(rate("130Mbps"), Some(130_000_000));
        assert_eq!(rate("6.5Mbps-20MHz/1S/SGI"), Some(6_500_000));
        assert_eq!(rate("1Gbps"), Some(1_000_000_000));
        assert_eq!(rate("54Mbps"), Some(54_000_000));
        assert_eq!(rate("866.6Mbps-80MHz/2S"), Some(866_600_000));
        assert_eq!(rate("1.2Gbps"), Some(1_200_000_000));
        assert_eq!(rate("0bps"), Some(0));
        assert_eq!(rate("fast"), None);
        assert_eq!(rate("Mbps"), None);
    }

    #[test]
    fn pairs_booleans_and_counts() {
        assert_eq!(pair("123456,789012"), Some((123_456, 789_012)));
        assert_eq!(pair("1,"), None);
        assert_eq!(boolean("true"), Some(true));
        assert_eq!(boolean("yes"), Some(true));
        assert_eq!(boolean("false"), Some(false));
        assert_eq!(boolean("no"), Some(false));
        assert_eq!(boolean("maybe"), None);
        assert_eq!(count("1073741824"), Some(1 << 30));
        assert_eq!(count("1024KiB"), Some(1 << 20));
        assert_eq!(count("1.5MiB"), Some(3 << 19));
        assert_eq!(count("-1"), None);
        assert_eq!(count("99999999999999999999"), None);
    }

    #[test]
    fn dates_in_both_formats() {
        let expected = Some(DateTime {
            year: 2026,
            month: 9,
            day: 22,
            hour: 20,
            minute: 42,
            second: 21,
        });
        assert_eq!(datetime("2026-09-22 20:42:21"), expected);
        assert_eq!(datetime("sep/22/2026 20:42:21"), expected);
        assert_eq!(datetime("Sep/22/2026 20:42:21"), expected);
        for bad in [
            "",
            "2026-13-01 00:00:00",
            "foo/22/2026 20:42:21",
            "2026-09-22",
            "2026-09-22 25:00:00",
        ] {
            assert_eq!(datetime(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = duration(&s);
            let _ = version(&s);
            let _ = signal(&s);
            let _ = rate(&s);
            let _ = pair(&s);
            let _ = boolean(&s);
            let _ = count(&s);
            let _ = datetime(&s);
        }

        #[test]
        fn parsers_never_panic_on_value_like_text(s in "[0-9a-zA-Z:./@,() -]{0,30}") {
            let _ = duration(&s);
            let _ = version(&s);
            let _ = signal(&s);
            let _ = rate(&s);
            let _ = count(&s);
            let _ = datetime(&s);
        }
    }
}
