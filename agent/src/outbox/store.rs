//! The outbox's database handle, reopened in place after an I/O error.
//!
//! redb marks a database as failed after one failed write or fsync: every
//! later call returns `PreviousIo` until the handle is dropped and the file
//! opened again. [`Store::run`] hides that from the outbox's callers: an
//! operation that fails with an I/O error is retried on a freshly opened
//! handle, after a pause that doubles per attempt. When every attempt fails,
//! the store is *failed* for good: each later call returns
//! [`OutboxError::Failed`] and the failure token is cancelled, which makes the
//! agent exit (its service manager restarts it).
//!
//! Operations may therefore run more than once. For reads that is harmless.
//! Writes go through [`Store::write`], which makes a retry exactly-once: a
//! commit that reports a failure may still have reached the disk (the
//! failing call can be the last fsync, after the new header was written), so
//! every write transaction also stores a random token in `meta`, and before
//! retrying, the token of the failed attempt is looked for. Found: that
//! attempt committed, and its result is returned instead of writing again.
//! This is exact because one writer at a time runs (a mutex that also spans
//! the recovery), so no other commit can come between an attempt and its check.
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use redb::{Database, DatabaseError, ReadableDatabase as _, WriteTransaction};
use tokio_util::sync::CancellationToken;

use super::{META, OutboxError};

/// `meta` key of the token of the last committed write transaction.
const WRITE_TOKEN: &str = "write_token";

/// What a write operation wants done with its transaction.
pub(crate) enum Outcome<T> {
    /// Commit it and return the value.
    Commit(T),
    /// Nothing changed: abort it (no disk write) and return the value.
    Unchanged(T),
}

/// Opens (or creates) the database; called for the first open and for every reopen.
pub(crate) type OpenFn = Box<dyn Fn() -> Result<Database, DatabaseError> + Send + Sync>;

/// How often, and how patiently, a failed database is reopened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    /// Reopen attempts before giving up.
    pub(crate) attempts: u32,
    /// Pause before the first attempt; it doubles for each further one.
    pub(crate) first_delay: Duration,
}

impl Retry {
    fn delay(&self, attempt: u32) -> Duration {
        self.first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
    }
}

/// Why the store gave up.
#[derive(Debug)]
struct Failure {
    attempts: u32,
    cause: String,
}

struct Slot {
    /// `None` only once the store has failed for good.
    db: Option<Database>,
    /// Bumped on every reopen, so a caller that saw a failure can tell whether
    /// someone else already replaced the handle it failed on.
    generation: u64,
}

pub(crate) struct Store {
    path: PathBuf,
    open: OpenFn,
    retry: Retry,
    /// Held by each write operation for its whole run, retries included.
    writer: Mutex<()>,
    slot: RwLock<Slot>,
    failure: OnceLock<Failure>,
    failed: CancellationToken,
}

impl Store {
    /// Opens the database. A failure here is returned as is, not retried: at
    /// startup the caller decides (the agent exits with the message).
    pub(crate) fn open(path: &Path, open: OpenFn, retry: Retry) -> Result<Self, OutboxError> {
        let db = open().map_err(|source| OutboxError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            open,
            retry,
            writer: Mutex::new(()),
            slot: RwLock::new(Slot {
                db: Some(db),
                generation: 0,
            }),
            failure: OnceLock::new(),
            failed: CancellationToken::new(),
        })
    }

    /// Runs a read-only `op`, reopening the database and retrying `op` after
    /// an I/O error.
    pub(crate) fn read<T>(&self, op: impl Fn(&Database) -> Result<T, OutboxError>) -> Result<T, OutboxError> {
        self.run(op)
    }

    /// Runs `op` in a write transaction and commits it (unless `op` reports
    /// nothing changed), reopening the database and retrying after an I/O
    /// error, exactly once (see the module documentation). `op` must not
    /// commit or abort the transaction itself.
    pub(crate) fn write<T: Clone>(
        &self,
        op: impl Fn(&WriteTransaction) -> Result<Outcome<T>, OutboxError>,
    ) -> Result<T, OutboxError> {
        // Guards no data of its own: a panic elsewhere leaves nothing to repair.
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        // The token and result of the last attempt that reached `commit`.
        let attempted: RefCell<Option<(u64, T)>> = RefCell::new(None);
        self.run(|db| {
            if let Some((token, value)) = attempted.borrow().as_ref() {
                let txn = db.begin_read()?;
                let stored = txn.open_table(META)?.get(WRITE_TOKEN)?.map(|v| v.value());
                if stored == Some(*token) {
                    tracing::info!("the outbox write reported as failed had reached the disk; not repeating it");
                    return Ok(value.clone());
                }
            }
            let txn = db.begin_write()?;
            match op(&txn)? {
                Outcome::Unchanged(value) => {
                    txn.abort()?;
                    Ok(value)
                }
                Outcome::Commit(value) => {
                    let token = rand::random::<u64>();
                    txn.open_table(META)?.insert(WRITE_TOKEN, token)?;
                    *attempted.borrow_mut() = Some((token, value.clone()));
                    txn.commit()?;
                    Ok(value)
                }
            }
        })
    }

    /// Runs `op` against the database, reopening it and retrying `op` after an
    /// I/O error (see the module documentation).
    fn run<T>(&self, op: impl Fn(&Database) -> Result<T, OutboxError>) -> Result<T, OutboxError> {
        let (generation, error) = {
            // A panic inside `op` cannot leave the slot half-updated (only
            // `recover` writes it), so a poisoned lock is still usable.
            let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
            let Some(db) = slot.db.as_ref() else {
                return Err(self.failed_error());
            };
            match op(db) {
                Err(e) if e.needs_reopen() => (slot.generation, e),
                other => return other,
            }
        };
        self.recover(generation, error, &op)
    }

    /// The reopen-and-retry loop. Holds the slot exclusively throughout, so
    /// other callers wait instead of failing on the broken handle.
    fn recover<T>(
        &self,
        failed_generation: u64,
        mut last: OutboxError,
        op: &impl Fn(&Database) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        let Some(db) = slot.db.as_ref() else {
            return Err(self.failed_error());
        };
        if slot.generation != failed_generation {
            // Another caller reopened the database while this one waited.
            match op(db) {
                Err(e) if e.needs_reopen() => last = e,
                other => return other,
            }
        }
        let path = self.path.display().to_string();
        tracing::warn!(path, error = %last, "outbox I/O error; reopening the database");
        for attempt in 1..=self.retry.attempts {
            // Dropping the failed handle first releases its file lock, which the
            // new handle needs.
            slot.db = None;
            std::thread::sleep(self.retry.delay(attempt));
            match (self.open)() {
                Err(e) => {
                    last = e.into();
                    tracing::warn!(path, attempt, error = %last, "reopening the outbox failed");
                }
                Ok(db) => {
                    slot.generation += 1;
                    let db = slot.db.insert(db);
                    match op(db) {
                        Err(e) if e.needs_reopen() => {
                            tracing::warn!(path, attempt, error = %e, "the outbox still fails after reopening");
                            last = e;
                        }
                        other => {
                            tracing::info!(path, attempt, "outbox reopened; it works again");
                            return other;
                        }
                    }
                }
            }
        }
        slot.db = None;
        let failure = self.failure.get_or_init(|| Failure {
            attempts: self.retry.attempts,
            cause: last.to_string(),
        });
        tracing::error!(
            path,
            attempts = failure.attempts,
            error = %failure.cause,
            "the outbox keeps failing after reopening; giving up"
        );
        self.failed.cancel();
        Err(self.failed_error())
    }

    /// The error every call returns once the store has given up.
    fn failed_error(&self) -> OutboxError {
        match self.failure.get() {
            Some(f) => OutboxError::Failed {
                path: self.path.display().to_string(),
                attempts: f.attempts,
                cause: f.cause.clone(),
            },
            // Unreachable in practice: the slot is emptied only after the
            // failure is recorded. Still an error, never a panic.
            None => OutboxError::Failed {
                path: self.path.display().to_string(),
                attempts: 0,
                cause: "the database handle is gone".into(),
            },
        }
    }

    /// The permanent failure, if the store has given up.
    pub(crate) fn failure(&self) -> Option<OutboxError> {
        self.failure.get().map(|_| self.failed_error())
    }

    /// Cancelled when the store gives up.
    pub(crate) fn failed_token(&self) -> CancellationToken {
        self.failed.clone()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
