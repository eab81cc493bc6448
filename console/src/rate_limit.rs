//! Login rate limiting, in memory, per client address and per user name.
//!
//! Per address (5 per window) stops one client trying many names. Per name it
//! is two-level: 5 per window from any one address, and [`MAX_NAME_FAILURES`]
//! from all addresses together. The wide per-name limit still stops a botnet
//! guessing one password, while a single client cannot lock an administrator
//! out: it runs into its own limits long before the name's. State is lost on
//! restart, which only gives an attacker a fresh window as often as the
//! operator restarts the collector.
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// Attempts allowed per address, and per name from one address, within [`WINDOW`].
pub(crate) const MAX_FAILURES: usize = 5;
/// Attempts allowed per name from all addresses together within [`WINDOW`].
pub(crate) const MAX_NAME_FAILURES: usize = 50;
/// How far back attempts count.
pub(crate) const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Longer names cannot exist; cutting them keeps keys small.
const MAX_NAME_KEY: usize = 128;

/// The client's address, from [`ConnectInfo`] when the server provides it
/// (behind a trusted reverse proxy, the server puts the forwarded client there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let info = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await.ok();
        Ok(Self(info.map(|ConnectInfo(addr)| addr.ip())))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    UserFrom(String, IpAddr),
    User(String),
}

impl Key {
    fn limit(&self) -> usize {
        match self {
            Key::Ip(_) | Key::UserFrom(..) => MAX_FAILURES,
            Key::User(_) => MAX_NAME_FAILURES,
        }
    }
}

/// One client's bucket. IPv6 clients usually hold a whole /64, so that is the
/// unit; IPv4-mapped addresses count as the IPv4 address. Without a known
/// address every client shares one bucket, which errs on the safe side.
fn ip_bucket(ip: Option<IpAddr>) -> IpAddr {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

fn ip_key(ip: Option<IpAddr>) -> Key {
    Key::Ip(ip_bucket(ip))
}

fn user_key(username: &str) -> Key {
    Key::User(username.chars().take(MAX_NAME_KEY).collect())
}

fn user_from_key(username: &str, ip: Option<IpAddr>) -> Key {
    let Key::Ip(ip) = ip_key(ip) else {
        unreachable!("ip_key returns Key::Ip")
    };
    Key::UserFrom(username.chars().take(MAX_NAME_KEY).collect(), ip)
}

fn keys(ip: Option<IpAddr>, username: &str) -> [Key; 3] {
    [ip_key(ip), user_from_key(username, ip), user_key(username)]
}

/// Recent login attempts per key.
///
/// Memory is bounded by the attempt rate: each attempt that is let through costs
/// an argon2 verification, so a few thousand keys per window at most, and keys
/// are swept once their attempts are older than the window.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    attempts: HashMap<Key, VecDeque<Instant>>,
    last_sweep: Instant,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                attempts: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl LoginLimiter {
    /// Admits a login attempt, or says how long until one is allowed.
    ///
    /// The attempt is counted as a failure now, before the password is checked:
    /// counting afterwards would let parallel requests all pass the check.
    /// [`Self::succeeded`] takes it back.
    pub(crate) fn try_begin(&self, ip: Option<IpAddr>, username: &str, now: Instant) -> Result<(), Duration> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.sweep(now);
        let keys = keys(ip, username);
        let mut wait = Duration::ZERO;
        for key in &keys {
            if let Some(times) = inner.attempts.get_mut(key) {
                prune(times, now);
                if times.len() >= key.limit()
                    && let Some(oldest) = times.front()
                {
                    wait = wait.max((*oldest + WINDOW).saturating_duration_since(now));
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            inner.attempts.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// A successful login clears both the client's and the user's record.
    pub(crate) fn succeeded(&self, ip: Option<IpAddr>, username: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys(ip, username) {
            inner.attempts.remove(&key);
        }
    }
}

impl LoginLimiter {
    /// Takes back an attempt admitted at `at` whose password was never checked
    /// (the server was too busy), so an overloaded server does not also lock
    /// users out.
    pub(crate) fn abandoned(&self, ip: Option<IpAddr>, username: &str, at: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys(ip, username) {
            if let Some(times) = inner.attempts.get_mut(&key)
                && let Some(i) = times.iter().rposition(|t| *t == at)
            {
                times.remove(i);
            }
        }
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

impl Inner {
    fn sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < WINDOW {
            return;
        }
        self.last_sweep = now;
        self.attempts.retain(|_, times| {
            prune(times, now);
            !times.is_empty()
        });
    }
}

/// Whole seconds, rounded up so a client retrying on time is let in.
pub(crate) fn wait_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// "4 min 12 s".
pub(crate) fn describe_wait(wait: Duration) -> String {
    let secs = wait_secs(wait);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn blocks_after_max_failures_until_the_oldest_ages_out() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(l.try_begin(A, "admin", t0 + Duration::from_secs(i as u64)).is_ok());
        }
        let wait = l.try_begin(A, "admin", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, WINDOW - Duration::from_secs(10));
        // Refused attempts do not extend the lockout.
        assert!(l.try_begin(A, "admin", t0 + WINDOW - Duration::from_secs(1)).is_err());
        assert!(l.try_begin(A, "admin", t0 + WINDOW).is_ok());
    }

    #[test]
    fn limits_per_address_and_per_name() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(l.try_begin(A, &format!("user{i}"), now).is_ok());
        }
        assert!(l.try_begin(A, "someone-else", now).is_err(), "same address, new name");
        assert!(l.try_begin(B, "someone-else", now).is_ok(), "another address");

        let l = LoginLimiter::default();
        for i in 0..MAX_NAME_FAILURES {
            let ip = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8)));
            assert!(l.try_begin(ip, "admin", now).is_ok());
        }
        assert!(l.try_begin(B, "admin", now).is_err(), "many addresses on one name");
    }

    #[test]
    fn one_client_cannot_lock_out_a_name() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(l.try_begin(A, "admin", now).is_ok());
        }
        assert!(l.try_begin(A, "admin", now).is_err(), "the attacker is stopped");
        assert!(
            l.try_begin(B, "admin", now).is_ok(),
            "the administrator elsewhere is not"
        );
    }

    #[test]
    fn success_resets() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(l.try_begin(A, "admin", now).is_ok());
        }
        l.succeeded(A, "admin");
        assert!(l.try_begin(A, "admin", now).is_ok());
    }

    #[test]
    fn abandoned_attempts_do_not_count() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES as u64 {
            let at = t0 + Duration::from_secs(i);
            assert!(l.try_begin(A, "admin", at).is_ok());
            if i == 0 {
                l.abandoned(A, "admin", at);
            }
        }
        assert!(
            l.try_begin(A, "admin", t0 + Duration::from_secs(10)).is_ok(),
            "one was taken back"
        );
        assert!(l.try_begin(A, "admin", t0 + Duration::from_secs(11)).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(Some(x)), ip_key(Some(y)));
        assert_ne!(ip_key(Some(x)), ip_key(Some(z)));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_key(Some(mapped)), ip_key(A));
    }

    #[test]
    fn sweeps_old_keys() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        assert!(l.try_begin(A, "admin", now).is_ok());
        assert!(l.try_begin(B, "other", now + WINDOW + Duration::from_secs(1)).is_ok());
        let inner = l.inner.lock().unwrap();
        assert!(!inner.attempts.contains_key(&ip_key(A)));
        assert!(!inner.attempts.contains_key(&user_key("admin")));
    }

    #[test]
    fn describes_waits() {
        assert_eq!(describe_wait(Duration::from_millis(1500)), "2 s");
        assert_eq!(describe_wait(Duration::from_secs(120)), "2 min");
        assert_eq!(describe_wait(Duration::from_secs(252)), "4 min 12 s");
    }
}
