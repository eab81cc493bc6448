//! Login rate limiting, in memory, per client address and per user name.
//!
//! Per address: 5 attempts per window, and 5 per window on any one name from
//! that address; past them the client gets 429 with `Retry-After`. Per name,
//! from all addresses together, there is no lock: after
//! [`FREE_NAME_FAILURES`] failures each further attempt on that name must
//! wait a delay that doubles with every failure, capped at [`MAX_NAME_DELAY`].
//! A botnet guessing one password is slowed to one guess per cap, while the
//! user, from any other client, always gets in with the right password after
//! at most that cap: nobody can lock a name out. A name's failures are
//! forgotten [`NAME_MEMORY`] after its last one, and on success. State is lost
//! on restart, which only gives an attacker a fresh start as often as the
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
/// Failures on one name (from all addresses) before delays start.
/// Above the 5 per window one address may try on a name, so a single
/// client alone does not slow the name down for everyone.
pub(crate) const FREE_NAME_FAILURES: u32 = 10;
/// The first delay on a name; each further failure doubles it.
pub(crate) const BASE_NAME_DELAY: Duration = Duration::from_secs(1);
/// The longest delay on a name: the most the right password can ever wait.
pub(crate) const MAX_NAME_DELAY: Duration = Duration::from_secs(60);
/// A name's failures are forgotten this long after its last one.
pub(crate) const NAME_MEMORY: Duration = Duration::from_secs(15 * 60);
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
}

/// Recent failures on one name, from every address, and the attempts being
/// checked right now.
#[derive(Clone, Copy, Debug)]
struct NameState {
    /// Failures reported by [`LoginLimiter::failed`].
    failures: u32,
    /// When the last one was reported.
    last: Instant,
    /// Attempts admitted and not yet reported.
    in_flight: u32,
    /// When the last attempt was admitted: in-flight attempts older than
    /// [`IN_FLIGHT_TTL`] are taken as ended (a request that failed on the
    /// way must not hold the name).
    began: Instant,
}

/// How long an admitted attempt may stay unreported.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(30);

/// How long after its last failure a name with `failures` failures waits.
pub(crate) fn name_delay(failures: u32) -> Duration {
    if failures < FREE_NAME_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_NAME_FAILURES).min(16);
    BASE_NAME_DELAY.saturating_mul(1 << doublings).min(MAX_NAME_DELAY)
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

fn name_key(username: &str) -> String {
    username.chars().take(MAX_NAME_KEY).collect()
}

fn user_from_key(username: &str, ip: Option<IpAddr>) -> Key {
    let Key::Ip(ip) = ip_key(ip) else {
        unreachable!("ip_key returns Key::Ip")
    };
    Key::UserFrom(username.chars().take(MAX_NAME_KEY).collect(), ip)
}

fn keys(ip: Option<IpAddr>, username: &str) -> [Key; 2] {
    [ip_key(ip), user_from_key(username, ip)]
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
    names: HashMap<String, NameState>,
    last_sweep: Instant,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                attempts: HashMap::new(),
                names: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl LoginLimiter {
    /// Admits a login attempt, or says how long until one is allowed.
    ///
    /// Per address the attempt is counted as a failure now, before the
    /// password is checked: counting afterwards would let parallel requests
    /// all pass the check; [`Self::succeeded`] takes it back. Per name the
    /// caller reports a failure with [`Self::failed`]; while a name is being
    /// slowed down, only one attempt on it is admitted at a time.
    pub(crate) fn try_begin(&self, ip: Option<IpAddr>, username: &str, now: Instant) -> Result<(), Duration> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.sweep(now);
        let keys = keys(ip, username);
        let mut wait = Duration::ZERO;
        for key in &keys {
            if let Some(times) = inner.attempts.get_mut(key) {
                prune(times, now);
                if times.len() >= MAX_FAILURES
                    && let Some(oldest) = times.front()
                {
                    wait = wait.max((*oldest + WINDOW).saturating_duration_since(now));
                }
            }
        }
        let name = name_key(username);
        if let Some(state) = inner.names.get_mut(&name) {
            if now.saturating_duration_since(state.began) >= IN_FLIGHT_TTL {
                state.in_flight = 0;
            }
            let delay = name_delay(state.failures);
            wait = wait.max((state.last + delay).saturating_duration_since(now));
            // Once a name is being slowed down, one attempt at a time: parallel
            // requests must not slip past a delay that their own failures set.
            if !delay.is_zero() && state.in_flight > 0 {
                wait = wait.max(BASE_NAME_DELAY);
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            inner.attempts.entry(key).or_default().push_back(now);
        }
        let state = inner.names.entry(name).or_insert(NameState {
            failures: 0,
            last: now,
            in_flight: 0,
            began: now,
        });
        state.in_flight = state.in_flight.saturating_add(1);
        state.began = now;
        Ok(())
    }

    /// An admitted attempt on `username` failed (wrong password or code) at
    /// `now`: the name's delay grows. (Per address, [`Self::try_begin`]
    /// already counted it.)
    pub(crate) fn failed(&self, username: &str, now: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let state = inner.names.entry(name_key(username)).or_insert(NameState {
            failures: 0,
            last: now,
            in_flight: 1,
            began: now,
        });
        state.in_flight = state.in_flight.saturating_sub(1);
        state.failures = state.failures.saturating_add(1);
        state.last = now;
    }

    /// A successful login clears both the client's and the user's record.
    pub(crate) fn succeeded(&self, ip: Option<IpAddr>, username: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys(ip, username) {
            inner.attempts.remove(&key);
        }
        inner.names.remove(&name_key(username));
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
        if let Some(state) = inner.names.get_mut(&name_key(username)) {
            state.in_flight = state.in_flight.saturating_sub(1);
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
        self.names.retain(|_, state| {
            now.saturating_duration_since(state.last) < NAME_MEMORY
                || now.saturating_duration_since(state.began) < IN_FLIGHT_TTL
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
    }

    fn many(i: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i)))
    }

    #[test]
    fn name_delays_double_and_are_capped() {
        assert_eq!(name_delay(FREE_NAME_FAILURES - 1), Duration::ZERO);
        assert_eq!(name_delay(FREE_NAME_FAILURES), BASE_NAME_DELAY);
        assert_eq!(name_delay(FREE_NAME_FAILURES + 1), BASE_NAME_DELAY * 2);
        assert_eq!(name_delay(FREE_NAME_FAILURES + 2), BASE_NAME_DELAY * 4);
        assert_eq!(name_delay(FREE_NAME_FAILURES + 40), MAX_NAME_DELAY);
        assert_eq!(name_delay(u32::MAX), MAX_NAME_DELAY);

        // Attempts from many addresses: each failure past the free ones makes
        // the next attempt on the name wait twice as long.
        let l = LoginLimiter::default();
        let mut t = Instant::now();
        for i in 0..FREE_NAME_FAILURES {
            assert!(l.try_begin(many(i), "admin", t).is_ok());
            l.failed("admin", t);
        }
        let wait = l.try_begin(many(100), "admin", t).unwrap_err();
        assert_eq!(wait, BASE_NAME_DELAY);
        t += BASE_NAME_DELAY;
        assert!(l.try_begin(many(101), "admin", t).is_ok());
        // While that attempt is being checked, a parallel one waits.
        assert!(l.try_begin(many(105), "admin", t).is_err());
        l.failed("admin", t);
        assert_eq!(l.try_begin(many(102), "admin", t).unwrap_err(), BASE_NAME_DELAY * 2);
        // A refused attempt does not lengthen the delay.
        assert_eq!(l.try_begin(many(103), "admin", t).unwrap_err(), BASE_NAME_DELAY * 2);
        // Other names are not slowed.
        assert!(l.try_begin(many(104), "operator", t).is_ok());
    }

    #[test]
    fn many_clients_cannot_lock_a_name_out() {
        // A botnet fails on "admin" as fast as it is let: the delay grows to
        // the cap and stays there.
        let l = LoginLimiter::default();
        let mut t = Instant::now();
        for i in 0..200 {
            match l.try_begin(many(i), "admin", t) {
                Ok(()) => {}
                Err(wait) => {
                    assert!(wait <= MAX_NAME_DELAY, "never more than the cap");
                    t += wait;
                    assert!(l.try_begin(many(i), "admin", t).is_ok());
                }
            }
            l.failed("admin", t);
        }
        // The real user, from their own address, waits at most the cap and
        // is then let in; the right password clears the name.
        let wait = l.try_begin(B, "admin", t).unwrap_err();
        assert!(wait <= MAX_NAME_DELAY);
        assert!(l.try_begin(B, "admin", t + wait).is_ok());
        l.succeeded(B, "admin");
        assert!(l.try_begin(B, "admin", t + wait).is_ok());
    }

    #[test]
    fn unreported_attempts_do_not_hold_a_name() {
        let l = LoginLimiter::default();
        let t = Instant::now();
        for i in 0..FREE_NAME_FAILURES {
            assert!(l.try_begin(many(i), "admin", t).is_ok());
            l.failed("admin", t);
        }
        let t = t + BASE_NAME_DELAY;
        // Admitted, never reported (the request failed on the way).
        assert!(l.try_begin(many(20), "admin", t).is_ok());
        assert!(l.try_begin(many(21), "admin", t + Duration::from_secs(5)).is_err());
        assert!(l.try_begin(many(21), "admin", t + IN_FLIGHT_TTL).is_ok());
    }

    #[test]
    fn name_failures_are_forgotten() {
        let l = LoginLimiter::default();
        let t = Instant::now();
        for i in 0..(FREE_NAME_FAILURES + 3) {
            let at = t + MAX_NAME_DELAY * i;
            assert!(l.try_begin(many(i), "admin", at).is_ok());
            l.failed("admin", at);
        }
        let last = t + MAX_NAME_DELAY * (FREE_NAME_FAILURES + 2);
        assert!(l.try_begin(many(50), "admin", last).is_err());
        // Quiet for the memory span: a fresh start, and the sweep drops it.
        let later = last + NAME_MEMORY;
        assert!(l.try_begin(many(51), "other", later).is_ok());
        assert!(!l.inner.lock().unwrap().names.contains_key("admin"));
        assert!(l.try_begin(many(52), "admin", later).is_ok());
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
        l.failed("admin", now);
        assert!(
            l.try_begin(B, "other", now + NAME_MEMORY + Duration::from_secs(1))
                .is_ok()
        );
        let inner = l.inner.lock().unwrap();
        assert!(!inner.attempts.contains_key(&ip_key(A)));
        assert!(!inner.names.contains_key("admin"));
    }

    #[test]
    fn describes_waits() {
        assert_eq!(describe_wait(Duration::from_millis(1500)), "2 s");
        assert_eq!(describe_wait(Duration::from_secs(120)), "2 min");
        assert_eq!(describe_wait(Duration::from_secs(252)), "4 min 12 s");
    }
}
