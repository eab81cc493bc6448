//! The agent's durable outbox.
//!
//! # Invariants
//! 1. Every observation is written here, with its sequence number, and the
//!    write transaction committed (fsync) *before* it is offered to the uplink.
//! 2. Sequence numbers start at 1 and strictly increase; `next_seq` is stored in
//!    the same transaction as the records, so a number is never reused, even
//!    after a crash or an I/O error.
//! 3. A record is deleted only by [`Outbox::ack_through`], which the uplink
//!    calls with the collector's cumulative acknowledgement — sent only after
//!    the collector's database commit — or by [`Outbox::reconcile`] (below).
//!    After a crash or an outage everything still here is sent again; the
//!    collector deduplicates on (agent, seq).
//! 4. When the outbox holds `max_records`, the oldest *metric samples* are
//!    thinned to make room; host facts (and, later, inventory, events and
//!    config backups) are never dropped. Thinning is logged and counted.
//! 5. When free space on the outbox's filesystem is below the reserve
//!    (`outbox_min_free_mb`), new metric samples are refused (they get no
//!    number; logged, rate-limited, and counted in `meta.refused`); every
//!    other record is still written.
//! 6. An I/O error (full disk, failed fsync, redb's `PreviousIo`) never wedges
//!    the outbox: the database is reopened in place and the operation retried
//!    (module `store`), exactly once for writes. If reopening keeps failing, every
//!    call returns [`OutboxError::Failed`] and [`Outbox::failed_token`] is
//!    cancelled: the agent exits non-zero and its service manager restarts it.
//!
//! # Reconciliation
//! If, at the first `Welcome` after the process opened the file, the collector
//! has committed numbers the file had not handed out when it was opened (the
//! outbox was lost or restored from an old copy), the records numbered since
//! opening are new data whose numbers collide with committed ones. They are
//! renumbered by a constant shift to start after the collector's high-water
//! mark, never deleted; older records are copies of what the collector already
//! committed and are dropped. This runs in chunks of bounded size, each its own
//! transaction, with the job's progress in `meta` in the same transaction:
//! * the first transaction records the job and raises `next_seq` above every
//!   target, so records appended meanwhile can never collide with one;
//! * records are moved from the highest down: a target is always above its
//!   source, so no record is overwritten, and `[from, cursor)` holds exactly
//!   the records not yet moved;
//! * a crash between chunks leaves a job in `meta` that the next open finishes
//!   before anything else, so nothing is lost, duplicated or sent under a
//!   colliding number;
//! * the in-memory "reconciled" flag is set only after the job is finished.
//!
//! A record that cannot be decoded is logged and skipped (when sending, it is
//! left for the next acknowledgement to remove; when renumbering, dropped).
//!
//! # Owner and instance id
//! The outbox records who its records belong to ([`OutboxOwner`]: tenant,
//! site, agent, collector CA) and carries a random instance id that survives
//! restarts but not copies of the file (module `instance`). An outbox owned by
//! someone else is set aside ([`set_aside`]), never sent.
//!
//! # On-disk layout (redb, one file `outbox.redb`)
//! * table `records`: `u64` seq → `[kind: u8][protobuf Observation]`, kind 1 =
//!   metric sample, 2 = anything else (lets thinning pick samples without decoding)
//! * table `meta` (`&str` → `u64`): `next_seq`; `thinned` (samples dropped
//!   because the outbox was full); `refused` (samples refused for lack of disk
//!   space); `write_token` (random, per write transaction, see module `store`);
//!   `location_dev`, `location_ino` (where the file lives, Unix); while a
//!   renumbering runs: `reconcile_from`, `reconcile_shift`, `reconcile_cursor`,
//!   `reconcile_acked`
//! * table `labels` (`&str` → `&str`): `instance_id`, `machine_id`,
//!   `owner_tenant`, `owner_site`, `owner_agent`, `owner_ca` (hex SHA-256)
//!
//! # Access
//! All methods block on disk I/O (and, while recovering from an I/O error, on
//! the pauses between reopen attempts): call them from `spawn_blocking`
//! ([`blocking`]). Any number of calls may run at once; writes are serialized.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use outpost_proto::agent_v1::{Observation, observation};
use prost::Message as _;
use redb::{ReadableDatabase as _, ReadableTable, ReadableTableMetadata as _, TableDefinition, WriteTransaction};
use tokio_util::sync::CancellationToken;

mod error;
mod instance;
mod owner;
mod reconcile;
mod reserve;
mod store;

pub use error::OutboxError;
pub use owner::{OutboxOwner, OwnerMatch, set_aside};

use store::{Outcome, Retry, Store};

/// The outbox's file name inside the data directory.
pub const FILE: &str = "outbox.redb";
/// Default free-space reserve, bytes.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;
/// Default number of reopen attempts after an I/O error.
pub const DEFAULT_REOPEN_ATTEMPTS: u32 = 5;
/// Default pause before the first reopen attempt; it doubles per attempt.
pub const DEFAULT_FIRST_REOPEN_DELAY: Duration = Duration::from_millis(500);
/// Records moved or dropped per transaction while renumbering.
const RECONCILE_CHUNK: usize = 10_000;

const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const LABELS: TableDefinition<'_, &str, &str> = TableDefinition::new("labels");

const NEXT_SEQ: &str = "next_seq";
const THINNED: &str = "thinned";
const REFUSED: &str = "refused";

/// Record kinds, stored as the first byte so thinning needs no decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Metric = 1,
    Other = 2,
}

/// How the outbox behaves; [`OutboxOptions::new`] gives the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OutboxOptions {
    /// Capacity in records; when full, the oldest metric samples are thinned.
    pub max_records: u64,
    /// Free bytes to keep on the outbox's filesystem; below, metric samples
    /// are refused. 0 turns the reserve off.
    pub min_free_bytes: u64,
    /// Reopen attempts after an I/O error before the outbox gives up (at least 1).
    pub reopen_attempts: u32,
    /// Pause before the first reopen attempt; it doubles per attempt.
    pub first_reopen_delay: Duration,
    /// Records per renumbering transaction.
    pub(crate) reconcile_chunk: usize,
}

impl OutboxOptions {
    /// The defaults, with this capacity.
    pub fn new(max_records: u64) -> Self {
        Self {
            max_records,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            reopen_attempts: DEFAULT_REOPEN_ATTEMPTS,
            first_reopen_delay: DEFAULT_FIRST_REOPEN_DELAY,
            reconcile_chunk: RECONCILE_CHUNK,
        }
    }
}

/// The outbox. All methods block on disk I/O: call them from `spawn_blocking`.
pub struct Outbox {
    store: Store,
    max_records: u64,
    reconcile_chunk: usize,
    /// `next_seq` when this process opened the file: numbers from here on were
    /// handed out by this process and cannot have reached the collector before
    /// the first `Welcome`.
    opened_next_seq: u64,
    /// Whether the first `Welcome` has been applied (set only once that is committed).
    reconciled: AtomicBool,
    instance_id: String,
    reserve: reserve::Reserve,
    /// Samples refused for lack of space, not yet added to `meta.refused`
    /// (that happens with the next write, so refusing costs no disk write).
    refused_pending: AtomicU64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.store.path())
            .field("max_records", &self.max_records)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// A body to append; the outbox assigns the sequence number.
pub type Body = observation::Body;

/// One stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Sequence number.
    pub seq: u64,
    /// The observation, `seq` filled in.
    pub observation: Observation,
}

/// redb's page cache. The outbox is a queue: a record is read back soon after
/// it is written, then deleted, so a small cache serves it; redb's default
/// (1 GiB) let an agent's memory grow with everything it ever wrote.
const CACHE_BYTES: usize = 32 << 20;

impl Outbox {
    /// Opens or creates the outbox file with default options.
    pub fn open(path: &Path, max_records: u64) -> Result<Self, OutboxError> {
        Self::open_with(path, &OutboxOptions::new(max_records))
    }

    /// Opens or creates the outbox file. An interrupted renumbering is finished here.
    pub fn open_with(path: &Path, options: &OutboxOptions) -> Result<Self, OutboxError> {
        let file = path.to_owned();
        Self::open_using(
            path,
            options,
            Box::new(move || {
                let mut builder = redb::Builder::new();
                builder.set_cache_size(CACHE_BYTES);
                builder.create(&file)
            }),
        )
    }

    /// Like [`Outbox::open_with`], with a custom way to open the database (tests
    /// inject storage faults through it).
    pub(crate) fn open_using(path: &Path, options: &OutboxOptions, open: store::OpenFn) -> Result<Self, OutboxError> {
        let retry = Retry {
            attempts: options.reopen_attempts.max(1),
            first_delay: options.first_reopen_delay,
        };
        let store = Store::open(path, open, retry)?;
        let here = instance::Location::of(path);
        let (next_seq, instance_id, job) = store.write(|txn| {
            txn.open_table(RECORDS)?;
            let mut meta = txn.open_table(META)?;
            let mut labels = txn.open_table(LABELS)?;
            let next = meta.get(NEXT_SEQ)?.map(|v| v.value());
            if next.is_none() {
                meta.insert(NEXT_SEQ, 1)?;
            }
            let id = instance::settle(&mut meta, &mut labels, &here, path)?;
            let job = reconcile::Job::load(&meta)?;
            Ok(Outcome::Commit((next.unwrap_or(1), id, job)))
        })?;
        let dir = path.parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."));
        let mut outbox = Self {
            store,
            max_records: options.max_records.max(1),
            reconcile_chunk: options.reconcile_chunk.max(1),
            opened_next_seq: next_seq,
            reconciled: AtomicBool::new(false),
            instance_id,
            reserve: reserve::Reserve::new(dir, options.min_free_bytes),
            refused_pending: AtomicU64::new(0),
        };
        if let Some(job) = job {
            tracing::warn!(
                path = %path.display(),
                acked = job.acked,
                "finishing a renumbering of the outbox that was interrupted"
            );
            outbox.finish_job()?;
            // The moved records were never sent (sending waits for the job), so
            // every number from the first target on is this file's own.
            outbox.opened_next_seq = next_seq.min(job.acked.saturating_add(1));
        }
        Ok(outbox)
    }

    /// The random id of this outbox instance: kept across restarts, replaced
    /// when the file turns out to be a copy (see the module documentation).
    pub fn instance_id(&self) -> String {
        self.instance_id.clone()
    }

    /// Cancelled when the outbox gives up after I/O errors ([`OutboxError::Failed`]).
    pub fn failed_token(&self) -> CancellationToken {
        self.store.failed_token()
    }

    /// The permanent failure, once the outbox has given up.
    pub fn failure(&self) -> Option<OutboxError> {
        self.store.failure()
    }

    /// Appends observations in one transaction; returns the sequence numbers of
    /// what was stored, in order. Metric samples refused because free disk
    /// space is below the reserve are left out and get no number.
    pub fn append(&self, items: Vec<(i64, Body)>) -> Result<Vec<u64>, OutboxError> {
        let metrics = items.iter().filter(|(_, b)| kind_of(b) == Kind::Metric).count() as u64;
        let items: Vec<(i64, Body)> = if metrics > 0 && !self.reserve.admit_metrics(metrics) {
            self.refused_pending.fetch_add(metrics, Ordering::Relaxed);
            items.into_iter().filter(|(_, b)| kind_of(b) != Kind::Metric).collect()
        } else {
            items
        };
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let refused = self.refused_pending.swap(0, Ordering::Relaxed);
        let result = self.store.write(|txn| {
            let mut records = txn.open_table(RECORDS)?;
            let mut meta = txn.open_table(META)?;
            let mut next = meta.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1);
            let incoming = items.len() as u64;
            let len = records.len()?;
            if len + incoming > self.max_records {
                let dropped = thin_metrics(&mut records, len + incoming - self.max_records)?;
                if dropped > 0 {
                    let total = meta.get(THINNED)?.map(|v| v.value()).unwrap_or(0) + dropped;
                    meta.insert(THINNED, total)?;
                    tracing::warn!(
                        dropped,
                        total,
                        max_records = self.max_records,
                        "outbox full: oldest metric samples thinned"
                    );
                }
            }
            if refused > 0 {
                let total = meta.get(REFUSED)?.map(|v| v.value()).unwrap_or(0) + refused;
                meta.insert(REFUSED, total)?;
            }
            let mut seqs = Vec::with_capacity(items.len());
            let mut buf = Vec::with_capacity(64);
            for (observed_at_ms, body) in &items {
                let obs = Observation {
                    seq: next,
                    observed_at_ms: *observed_at_ms,
                    source: None,
                    body: Some(body.clone()),
                };
                buf.clear();
                buf.push(kind_of(body) as u8);
                obs.encode(&mut buf).map_err(OutboxError::encode)?;
                records.insert(next, buf.as_slice())?;
                seqs.push(next);
                next += 1;
            }
            meta.insert(NEXT_SEQ, next)?;
            Ok(Outcome::Commit(seqs))
        });
        if result.is_err() {
            self.refused_pending.fetch_add(refused, Ordering::Relaxed);
        }
        result
    }

    /// Up to `max` records with sequence number greater than `after`, in order,
    /// stopping before `max_bytes` of encoded observations.
    pub fn read_after(&self, after: u64, max: usize, max_bytes: usize) -> Result<Vec<Record>, OutboxError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let records = txn.open_table(RECORDS)?;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            for entry in records.range(after.saturating_add(1)..)? {
                let (k, v) = entry?;
                let seq = k.value();
                let raw = v.value();
                if !out.is_empty() && bytes + raw.len() > max_bytes {
                    break;
                }
                bytes += raw.len();
                let observation = match Observation::decode(raw.get(1..).unwrap_or_default()) {
                    Ok(o) => o,
                    Err(e) => {
                        // Skipped, not fatal: the next cumulative acknowledgement
                        // removes it, and one damaged record cannot stall the uplink.
                        tracing::error!(seq, error = %e, "outbox record is corrupt; skipping it");
                        continue;
                    }
                };
                out.push(Record { seq, observation });
                if out.len() >= max {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Deletes every record with sequence number `<= seq`. Returns how many.
    ///
    /// A renumbering left unfinished (its records not yet moved carry numbers
    /// the collector has committed) is finished first, so an acknowledgement
    /// can never delete new data.
    pub fn ack_through(&self, seq: u64) -> Result<u64, OutboxError> {
        let dropped = if self.job_pending()? { self.finish_job()? } else { 0 };
        Ok(dropped + self.store.write(|txn| ack_in(txn, seq))?)
    }

    /// Records waiting to be acknowledged.
    pub fn depth(&self) -> Result<u64, OutboxError> {
        self.store.read(|db| Ok(db.begin_read()?.open_table(RECORDS)?.len()?))
    }

    /// The lowest sequence number still held, or the next one to be assigned.
    pub fn first_unacked(&self) -> Result<u64, OutboxError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            if let Some((k, _)) = txn.open_table(RECORDS)?.first()? {
                return Ok(k.value());
            }
            Ok(txn.open_table(META)?.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1))
        })
    }

    /// The next sequence number to be assigned: every number below it has been
    /// handed out (or skipped over after the collector acknowledged it).
    pub fn next_seq(&self) -> Result<u64, OutboxError> {
        self.meta(NEXT_SEQ).map(|v| v.unwrap_or(1))
    }

    /// Metric samples dropped because the outbox was full, since it was created.
    pub fn thinned(&self) -> Result<u64, OutboxError> {
        self.meta(THINNED).map(|v| v.unwrap_or(0))
    }

    /// Metric samples refused because free disk space was below the reserve,
    /// since the outbox was created.
    pub fn refused(&self) -> Result<u64, OutboxError> {
        let stored = self.meta(REFUSED)?.unwrap_or(0);
        Ok(stored + self.refused_pending.load(Ordering::Relaxed))
    }

    fn meta(&self, key: &'static str) -> Result<Option<u64>, OutboxError> {
        self.store
            .read(|db| Ok(db.begin_read()?.open_table(META)?.get(key)?.map(|v| v.value())))
    }
}

/// Deletes every record `<= seq` inside `txn`; the body of [`Outbox::ack_through`].
fn ack_in(txn: &WriteTransaction, seq: u64) -> Result<Outcome<u64>, OutboxError> {
    let mut records = txn.open_table(RECORDS)?;
    let before = records.len()?;
    records.retain_in(..=seq, |_, _| false)?;
    let removed = before - records.len()?;
    // The collector has committed up to `seq`: never hand out those numbers
    // again (e.g. after an outbox file was lost), or new data would be
    // mistaken for duplicates.
    let mut meta = txn.open_table(META)?;
    let next = meta.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1);
    if seq >= next {
        meta.insert(NEXT_SEQ, seq.saturating_add(1))?;
        tracing::warn!(
            acked = seq,
            next_seq = next,
            "collector acknowledged beyond our sequence numbers; skipping ahead"
        );
    } else if removed == 0 {
        return Ok(Outcome::Unchanged(0));
    }
    Ok(Outcome::Commit(removed))
}

fn kind_of(body: &Body) -> Kind {
    match body {
        observation::Body::Metric(_) => Kind::Metric,
        // A poll that carries only samples may be thinned like metrics; one
        // that carries a changed section (addresses, neighbours, ...) may not,
        // as the agent sends each change once.
        observation::Body::DevicePoll(p)
            if p.system.is_none()
                && p.addresses.is_none()
                && p.neighbors.is_none()
                && p.wireless_clients.is_none()
                && p.dhcp_leases.is_none() =>
        {
            Kind::Metric
        }
        _ => Kind::Other,
    }
}

/// Drops up to `want` of the oldest metric records; returns how many.
fn thin_metrics(records: &mut redb::Table<'_, u64, &[u8]>, want: u64) -> Result<u64, OutboxError> {
    let mut victims = Vec::new();
    for entry in records.iter()? {
        let (k, v) = entry?;
        if v.value().first() == Some(&(Kind::Metric as u8)) {
            victims.push(k.value());
            if victims.len() as u64 >= want {
                break;
            }
        }
    }
    for seq in &victims {
        records.remove(seq)?;
    }
    Ok(victims.len() as u64)
}

/// Runs `f` on the blocking pool: outbox calls fsync.
pub async fn blocking<T: Send + 'static>(
    outbox: &Arc<Outbox>,
    f: impl FnOnce(&Outbox) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    let outbox = outbox.clone();
    tokio::task::spawn_blocking(move || f(&outbox))
        .await
        .map_err(|e| OutboxError::Storage(format!("outbox task failed: {e}")))?
}

#[cfg(test)]
mod fault;
#[cfg(test)]
mod tests;
