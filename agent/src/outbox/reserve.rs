//! The free-space reserve: below it, new metric samples are refused so that
//! the last of the disk goes to records that are never thinned (host facts,
//! later inventory, events and config backups) and to the outbox's own
//! bookkeeping.
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the "still low" warning repeats while space stays short.
const REPEAT: Duration = Duration::from_secs(60);

pub(crate) struct Reserve {
    /// A directory on the outbox's filesystem.
    dir: PathBuf,
    /// Bytes to keep free; 0 turns the reserve off.
    min_free: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether free space was below the reserve at the last check.
    low: bool,
    /// When the last warning was logged.
    warned_at: Option<Instant>,
    /// Samples refused since that warning.
    refused_since_warning: u64,
    /// Samples refused since space last ran short.
    refused_this_episode: u64,
    /// Whether a failure to measure free space was already logged.
    measure_failed: bool,
}

impl Reserve {
    pub(crate) fn new(dir: PathBuf, min_free: u64) -> Self {
        Self {
            dir,
            min_free,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether `metrics` new metric samples may be written now. When they may
    /// not, the refusal is counted and logged here (rate-limited).
    pub(crate) fn admit_metrics(&self, metrics: u64) -> bool {
        if self.min_free == 0 || metrics == 0 {
            return true;
        }
        let measured = fs4::available_space(&self.dir);
        // Only bookkeeping happens under the lock; a panic cannot corrupt it.
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let free = match measured {
            Ok(free) => {
                st.measure_failed = false;
                free
            }
            Err(error) => {
                // Failing open: a statvfs problem must not stop metrics; the
                // outbox's own I/O error handling still covers a full disk.
                if !st.measure_failed {
                    tracing::warn!(path = %self.dir.display(), %error, "cannot measure free disk space for the outbox");
                    st.measure_failed = true;
                }
                return true;
            }
        };
        let now = Instant::now();
        if free >= self.min_free {
            if st.low {
                tracing::warn!(
                    path = %self.dir.display(),
                    free_bytes = free,
                    reserve_bytes = self.min_free,
                    refused = st.refused_this_episode,
                    "free disk space is back above the outbox reserve; accepting metric samples again"
                );
                *st = State::default();
            }
            return true;
        }
        st.refused_since_warning += metrics;
        st.refused_this_episode += metrics;
        let first = !st.low;
        st.low = true;
        if first || st.warned_at.is_none_or(|t| now.duration_since(t) >= REPEAT) {
            tracing::warn!(
                path = %self.dir.display(),
                free_bytes = free,
                reserve_bytes = self.min_free,
                refused = st.refused_since_warning,
                "free disk space is below the outbox reserve; refusing metric samples \
                 (host facts and other records are still written)"
            );
            st.warned_at = Some(now);
            st.refused_since_warning = 0;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_any_disk_refuses_metrics_and_zero_admits_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let huge = Reserve::new(dir.path().to_owned(), u64::MAX);
        assert!(!huge.admit_metrics(3));
        assert!(huge.admit_metrics(0), "nothing to refuse");
        let off = Reserve::new(dir.path().to_owned(), 0);
        assert!(off.admit_metrics(3));
        let small = Reserve::new(dir.path().to_owned(), 1);
        assert!(small.admit_metrics(3), "a test machine has a byte free");
    }
}
