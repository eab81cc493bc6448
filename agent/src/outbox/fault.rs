//! A storage backend that fails on command, for tests: redb's own file
//! backend with a switch in front of every call that changes the file.
use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

use super::store::OpenFn;

/// The switch, shared by the test and every backend opened through [`Faults::opener`].
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Writing calls (`write`, `set_len`, `sync_data`) still allowed before
    /// the next one fails; negative: disarmed.
    countdown: AtomicI64,
    /// Whether, once fired, every later writing call fails too (until disarmed).
    persistent: AtomicBool,
    /// Whether only `sync_data` calls count and fail.
    syncs_only: AtomicBool,
    fired: AtomicU64,
    calls: AtomicU64,
}

impl Faults {
    pub(crate) fn new() -> Arc<Self> {
        let f = Self::default();
        f.countdown.store(-1, Ordering::SeqCst);
        Arc::new(f)
    }

    /// Lets `after` writing calls through, then fails the next one (and, if
    /// `persistent`, every one after it).
    pub(crate) fn arm(&self, after: u32, persistent: bool) {
        self.persistent.store(persistent, Ordering::SeqCst);
        self.syncs_only.store(false, Ordering::SeqCst);
        self.countdown.store(i64::from(after), Ordering::SeqCst);
    }

    /// Fails the next `sync_data` only: by then a commit's pages and header
    /// have been written, so the commit may well be on disk although it failed.
    pub(crate) fn arm_next_sync(&self) {
        self.persistent.store(false, Ordering::SeqCst);
        self.syncs_only.store(true, Ordering::SeqCst);
        self.countdown.store(0, Ordering::SeqCst);
    }

    pub(crate) fn disarm(&self) {
        self.countdown.store(-1, Ordering::SeqCst);
    }

    /// How many calls have failed so far.
    pub(crate) fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    /// How many writing calls were made so far, failed ones included.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn check(&self, sync: bool) -> std::io::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !sync && self.syncs_only.load(Ordering::SeqCst) {
            return Ok(());
        }
        let left = self.countdown.load(Ordering::SeqCst);
        if left < 0 {
            return Ok(());
        }
        if left > 0 {
            self.countdown.store(left - 1, Ordering::SeqCst);
            return Ok(());
        }
        if !self.persistent.load(Ordering::SeqCst) {
            self.disarm();
        }
        self.fired.fetch_add(1, Ordering::SeqCst);
        Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "injected fault"))
    }

    /// Opens the database at `path` on a faulty backend, for [`super::Outbox::open_using`].
    pub(crate) fn opener(self: &Arc<Self>, path: &Path) -> OpenFn {
        let (faults, path): (Arc<Self>, PathBuf) = (self.clone(), path.to_owned());
        Box::new(move || {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            redb::Builder::new().create_with_backend(Faulty {
                inner: FileBackend::new(file)?,
                faults: faults.clone(),
            })
        })
    }
}

#[derive(Debug)]
struct Faulty {
    inner: FileBackend,
    faults: Arc<Faults>,
}

impl StorageBackend for Faulty {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.faults.check(false)?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.faults.check(true)?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.faults.check(false)?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    // Locking is passed through, so a second handle on the same file is
    // refused as it is without faults.
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
