//! A cap on concurrent password hashing.
//!
//! An argon2id check costs tens of milliseconds of CPU and 19 MiB of memory on
//! purpose. Without a cap, a burst of sign-in attempts would queue without
//! bound on the blocking pool (which spawns up to 512 threads), taking memory
//! and starving every other blocking task. So at most one hash per CPU runs at
//! a time, at most [`MAX_WAITING`] more wait, and anything beyond that is
//! refused at once with [`HashError::Busy`], which the console answers with
//! `503 Service Unavailable` and `Retry-After`.
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinError;

/// How many checks may wait for a CPU. At ~50 ms per hash, the last of them
/// waits a few seconds on a small machine, about as long as a person would.
pub(crate) const MAX_WAITING: usize = 64;

/// What a refused client is told to wait, in seconds: long enough for the
/// queue to drain a good part.
pub(crate) const BUSY_RETRY_AFTER_SECS: u64 = 2;

/// Why a password check did not run to completion.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    /// Every CPU is hashing and the queue is full.
    #[error("too many password checks are in progress")]
    Busy,
    /// The hashing task panicked.
    #[error("the password hashing task failed: {0}")]
    Task(#[from] JoinError),
}

/// Runs password hashing on the blocking pool, [`workers`](Self::new) at a time.
#[derive(Debug)]
pub(crate) struct HashGate {
    /// One permit per hash that may run.
    running: Arc<Semaphore>,
    /// One permit per hash that may run or wait; taken without waiting.
    admitted: Arc<Semaphore>,
    /// Hashes running now and the most ever running at once, counted inside
    /// the guarded section so tests can check the cap holds.
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl HashGate {
    /// `workers` hashes at once (at least one), `max_waiting` more queued.
    pub(crate) fn new(workers: usize, max_waiting: usize) -> Self {
        let workers = workers.max(1);
        Self {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + max_waiting)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// One hash per CPU, [`MAX_WAITING`] queued.
    pub(crate) fn for_this_machine() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::new(cpus, MAX_WAITING)
    }

    /// Runs `hash` on the blocking pool once a worker slot is free, or refuses
    /// at once when the queue is full.
    ///
    /// The permits move into the blocking task: if the caller goes away (the
    /// client disconnected), the hash already running still holds its slot
    /// until it finishes, so the cap counts real CPU work, not live requests.
    pub(crate) async fn run<T, F>(&self, hash: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The semaphores are never closed, so acquiring fails only when full;
        // were one closed, refusing would still be the safe answer.
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| HashError::Busy)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Busy)?;
        let (in_flight, peak) = (self.in_flight.clone(), self.peak.clone());
        let result = tokio::task::spawn_blocking(move || {
            let _permits = (admitted, running);
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = hash();
            in_flight.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await?;
        Ok(result)
    }

    /// Hashes running now.
    pub(crate) fn running(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most hashes that ever ran at once.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use futures::StreamExt;
    use futures::stream::FuturesUnordered;

    use super::*;
    use crate::test_support::until;

    #[tokio::test]
    async fn runs_at_most_workers_at_once_and_refuses_beyond_the_queue() {
        const WORKERS: usize = 3;
        const WAITING: usize = 5;
        const CALLS: usize = 20;
        let gate = Arc::new(HashGate::new(WORKERS, WAITING));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));

        let mut calls: FuturesUnordered<_> = (0..CALLS)
            .map(|i| {
                let (gate, released) = (gate.clone(), released.clone());
                async move {
                    gate.run(move || {
                        // Each job holds its slot until the test lets one go.
                        released.lock().unwrap().recv().unwrap();
                        i
                    })
                    .await
                }
            })
            .collect();

        // Nothing can finish before a release, so the first answers are the refusals.
        for _ in 0..CALLS - WORKERS - WAITING {
            assert!(matches!(calls.next().await, Some(Err(HashError::Busy))));
        }
        until("every worker is busy", || gate.running() == WORKERS).await;
        for _ in 0..WORKERS + WAITING {
            release.send(()).unwrap();
        }
        let mut done = 0;
        while let Some(result) = calls.next().await {
            assert!(result.is_ok(), "admitted calls run: {result:?}");
            done += 1;
        }
        assert_eq!(done, WORKERS + WAITING);
        assert_eq!(gate.peak(), WORKERS, "the cap was reached and never passed");
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn an_abandoned_hash_keeps_its_slot_until_it_finishes() {
        let gate = Arc::new(HashGate::new(1, 0));
        let (release, released) = mpsc::channel::<()>();
        let caller = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(move || released.recv().unwrap()).await }
        });
        until("the hash runs", || gate.running() == 1).await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());

        assert!(matches!(gate.run(|| ()).await, Err(HashError::Busy)));
        release.send(()).unwrap();
        until("the hash finishes", || gate.running() == 0).await;
        // Its permits are released with the blocking task, just after the count drops.
        tokio::time::timeout(Duration::from_secs(10), async {
            while gate.run(|| ()).await.is_err() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the slot is free again");
        assert_eq!(gate.peak(), 1);
    }

    #[test]
    fn at_least_one_worker() {
        let gate = HashGate::new(0, 0);
        assert_eq!(gate.running.available_permits(), 1);
        assert!(HashGate::for_this_machine().running.available_permits() >= 1);
    }
}
