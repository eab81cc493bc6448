//! How long a connection without a client certificate may stay open.
//!
//! Such a connection may only `Enroll`, which an agent does once. So the
//! collector closes it:
//!
//! * [`Lifetimes::after_enroll`] after an `Enroll` call has finished (the
//!   response is handed to HTTP/2 when the call finishes; the grace lets it
//!   reach the client before the socket goes),
//! * [`Lifetimes::idle`] after its last call finished, or after the handshake
//!   if it never made one,
//! * and at [`Lifetimes::max`] after the handshake whatever it is doing.
//!
//! The console port (`console_port` in the collector binary) closes its idle connections with
//! the same watchdog and its own [`Lifetimes`].
//!
//! No deadline but the last applies while a call is in progress. Calls are
//! tracked by [`super::gate`] through [`Activity`]; one watchdog task per
//! anonymous connection closes it through its [`ConnHandle`].
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::connections::ConnHandle;

/// The deadlines of an anonymous connection.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Open with no call in progress.
    pub idle: Duration,
    /// After an `Enroll` finished and no call is in progress.
    pub after_enroll: Duration,
    /// In total.
    pub max: Duration,
    /// What the connection is, in the line logged when it is closed.
    pub label: &'static str,
}

/// The agent port's anonymous connection lifetimes. Enrolling is one call of
/// milliseconds (a signature and a short transaction); a minute covers a
/// database that is briefly busy.
pub const LIFETIMES: Lifetimes = Lifetimes {
    idle: Duration::from_secs(10),
    after_enroll: Duration::from_secs(2),
    max: Duration::from_secs(60),
    label: "agent-port connection without a client certificate",
};

#[derive(Clone, Copy, Debug)]
struct State {
    opened: Instant,
    in_flight: u32,
    /// When the last call started or finished (or the connection opened).
    last_change: Instant,
    enrolled: bool,
}

/// Why an anonymous connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Idle,
    Enrolled,
    MaxLifetime,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Enrolled => "enrollment done",
            Self::MaxLifetime => "maximum lifetime reached",
        }
    }
}

/// When the connection must close if nothing else happens.
fn close_at(state: &State, lifetimes: &Lifetimes) -> (Instant, Reason) {
    let hard = (state.opened + lifetimes.max, Reason::MaxLifetime);
    if state.in_flight > 0 {
        return hard;
    }
    let soft = if state.enrolled {
        (state.last_change + lifetimes.after_enroll, Reason::Enrolled)
    } else {
        (state.last_change + lifetimes.idle, Reason::Idle)
    };
    if soft.0 < hard.0 { soft } else { hard }
}

/// The calls of one anonymous connection; cheap to clone.
#[derive(Clone, Debug)]
pub struct Activity {
    state: Arc<watch::Sender<State>>,
}

/// One call in progress; finishing (dropping) it restarts the idle or
/// after-enroll clock.
#[derive(Debug)]
pub struct Call {
    activity: Activity,
    enroll: bool,
}

impl Activity {
    /// Starts the watchdog that closes `conn`, opened now, by `lifetimes`.
    /// It ends when the connection is closed, by itself or otherwise.
    pub fn watch(conn: ConnHandle, remote: SocketAddr, lifetimes: Lifetimes) -> Self {
        let now = Instant::now();
        let (tx, rx) = watch::channel(State {
            opened: now,
            in_flight: 0,
            last_change: now,
            enrolled: false,
        });
        tokio::spawn(watchdog(conn, rx, remote, lifetimes));
        Self { state: Arc::new(tx) }
    }

    /// A call starts; `enroll` if it is `Enroll`.
    pub fn call(&self, enroll: bool) -> Call {
        self.state.send_modify(|s| {
            s.in_flight += 1;
            s.last_change = Instant::now();
        });
        Call {
            activity: self.clone(),
            enroll,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let enroll = self.enroll;
        self.activity.state.send_modify(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last_change = Instant::now();
            s.enrolled |= enroll;
        });
    }
}

async fn watchdog(conn: ConnHandle, mut state: watch::Receiver<State>, remote: SocketAddr, lifetimes: Lifetimes) {
    loop {
        let (at, _) = close_at(&state.borrow_and_update(), &lifetimes);
        tokio::select! {
            () = conn.token().cancelled() => return,
            changed = state.changed() => {
                if changed.is_err() {
                    // Every handle is gone, so is the connection.
                    return;
                }
            }
            () = tokio::time::sleep_until(at) => {
                // A call may have started just now; decide on the latest state.
                let (at, reason) = close_at(&state.borrow_and_update(), &lifetimes);
                if at <= Instant::now() {
                    tracing::debug!(%remote, reason = reason.as_str(), "closing an {}", lifetimes.label);
                    conn.close();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Lifetimes = Lifetimes {
        idle: Duration::from_secs(10),
        after_enroll: Duration::from_secs(2),
        max: Duration::from_secs(60),
        label: "test connection",
    };

    fn opened(t0: Instant) -> State {
        State {
            opened: t0,
            in_flight: 0,
            last_change: t0,
            enrolled: false,
        }
    }

    #[test]
    fn idle_enrolled_and_maximum_deadlines() {
        let t0 = Instant::now();
        let s = opened(t0);
        assert_eq!(close_at(&s, &L), (t0 + L.idle, Reason::Idle));
        // A call in progress: only the hard limit applies.
        let busy = State {
            in_flight: 1,
            last_change: t0 + Duration::from_secs(5),
            ..s
        };
        assert_eq!(close_at(&busy, &L), (t0 + L.max, Reason::MaxLifetime));
        // Finished a call that was not Enroll: idle clock from its end.
        let t1 = t0 + Duration::from_secs(7);
        let after_call = State { last_change: t1, ..s };
        assert_eq!(close_at(&after_call, &L), (t1 + L.idle, Reason::Idle));
        // After an Enroll: the short grace.
        let enrolled = State {
            enrolled: true,
            ..after_call
        };
        assert_eq!(close_at(&enrolled, &L), (t1 + L.after_enroll, Reason::Enrolled));
        // Calls that keep the connection busy cannot extend it past the maximum.
        let late = State {
            last_change: t0 + Duration::from_secs(55),
            ..s
        };
        assert_eq!(close_at(&late, &L), (t0 + L.max, Reason::MaxLifetime));
    }

    #[tokio::test]
    async fn calls_update_the_state_the_watchdog_sees() {
        let conn = ConnHandle::default();
        let activity = Activity::watch(conn.clone(), "192.0.2.1:1".parse().expect("addr"), L);
        let enroll = activity.call(true);
        let other = activity.call(false);
        assert_eq!(activity.state.borrow().in_flight, 2);
        drop(other);
        assert!(!activity.state.borrow().enrolled, "Enroll still running");
        drop(enroll);
        let s = *activity.state.borrow();
        assert_eq!((s.in_flight, s.enrolled), (0, true));
        assert!(!conn.is_closed());
        // Closing the connection ends the watchdog (the receiver goes away).
        conn.close();
        tokio::time::timeout(Duration::from_secs(5), activity.state.closed())
            .await
            .expect("watchdog ended");
    }
}
