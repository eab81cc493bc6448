//! The agent's durable outbox.
//!
//! # Invariants
//! 1. Every observation is written here, with its sequence number, and the
//!    write transaction committed (fsync) *before* it is offered to the uplink.
//! 2. Sequence numbers start at 1 and strictly increase; `next_seq` is stored in
//!    the same transaction as the records, so a number is never reused, even
//!    after a crash.
//! 3. A record is deleted only by [`Outbox::ack_through`], which the uplink
//!    calls with the collector's cumulative acknowledgement — sent only after
//!    the collector's database commit. After a crash or an outage everything
//!    still here is sent again; the collector deduplicates on (agent, seq).
//! 4. When the outbox holds `max_records`, the oldest *metric samples* are
//!    thinned to make room; host facts (and, later, inventory, events and
//!    config backups) are never dropped. Thinning is logged and counted.
//!
//! # On-disk layout (redb, one file `outbox.redb`)
//! * table `records`: `u64` seq → `[kind: u8][protobuf Observation]`
//! * table `meta`: `"next_seq"` → `u64`, `"thinned"` → `u64` (metrics dropped when full)
use std::path::Path;
use std::sync::Arc;

use outpost_proto::agent_v1::{Observation, observation};
use prost::Message as _;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// Record kinds, stored as the first byte so thinning needs no decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Metric = 1,
    Other = 2,
}

/// Outbox errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The database file could not be opened (often: another agent process holds it).
    #[error("cannot open the outbox {path}: {source}")]
    Open {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: redb::DatabaseError,
    },
    /// A read or write failed.
    #[error("outbox storage error: {0}")]
    Storage(String),
    /// A stored record could not be decoded.
    #[error("outbox record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for OutboxError {
            fn from(e: $t) -> Self {
                Self::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The outbox. All methods block on disk I/O: call them from `spawn_blocking`.
pub struct Outbox {
    db: Database,
    max_records: u64,
    /// `next_seq` when this process opened the file: numbers from here on were
    /// handed out by this process and cannot have reached the collector before
    /// the first `Welcome`.
    opened_next_seq: u64,
    /// Whether the first `Welcome` has been applied.
    reconciled: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("max_records", &self.max_records)
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

impl Outbox {
    /// Opens or creates the outbox file.
    pub fn open(path: &Path, max_records: u64) -> Result<Self, OutboxError> {
        let db = Database::create(path).map_err(|source| OutboxError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let txn = db.begin_write()?;
        let opened_next_seq;
        {
            txn.open_table(RECORDS)?;
            let mut meta = txn.open_table(META)?;
            let next = meta.get("next_seq")?.map(|v| v.value());
            opened_next_seq = next.unwrap_or(1);
            if next.is_none() {
                meta.insert("next_seq", 1)?;
            }
        }
        txn.commit()?;
        Ok(Self {
            db,
            max_records: max_records.max(1),
            opened_next_seq,
            reconciled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Applies the collector's committed high-water mark from `Welcome`.
    ///
    /// Normally that is [`Outbox::ack_through`]. But if, at the first `Welcome`
    /// since this process opened the outbox, the collector has committed
    /// numbers this file had not yet handed out when it was opened, the file
    /// was lost or restored from an old copy: records numbered from the
    /// opening point on are new data whose numbers collide with committed ones.
    /// They are renumbered after `acked` (never deleted); older records are
    /// copies of what the collector already committed and are dropped.
    /// Returns how many records were dropped.
    pub fn reconcile(&self, acked: u64) -> Result<u64, OutboxError> {
        let first = !self.reconciled.swap(true, std::sync::atomic::Ordering::SeqCst);
        if !first || acked < self.opened_next_seq {
            return self.ack_through(acked);
        }
        let txn = self.db.begin_write()?;
        let (dropped, moved);
        {
            let mut records = txn.open_table(RECORDS)?;
            let mut held = Vec::new();
            for entry in records.iter()? {
                let (k, v) = entry?;
                held.push((k.value(), v.value().to_vec()));
            }
            records.retain(|_, _| false)?;
            let mut next = acked.saturating_add(1);
            let (mut d, mut m) = (0u64, 0u64);
            for (seq, raw) in held {
                if seq < self.opened_next_seq {
                    d += 1;
                    continue;
                }
                let kind = raw.first().copied().unwrap_or(Kind::Other as u8);
                let mut obs =
                    Observation::decode(raw.get(1..).unwrap_or_default()).map_err(|e| OutboxError::Corrupt {
                        seq,
                        reason: e.to_string(),
                    })?;
                obs.seq = next;
                let mut buf = vec![kind];
                obs.encode(&mut buf).map_err(|e| OutboxError::Storage(e.to_string()))?;
                records.insert(next, buf.as_slice())?;
                next += 1;
                m += 1;
            }
            let mut meta = txn.open_table(META)?;
            meta.insert("next_seq", next)?;
            (dropped, moved) = (d, m);
        }
        txn.commit()?;
        tracing::warn!(
            acked,
            opened_next_seq = self.opened_next_seq,
            dropped,
            renumbered = moved,
            "the collector has committed sequence numbers this outbox never handed out \
             (outbox lost or restored); new records renumbered"
        );
        Ok(dropped)
    }

    /// Appends observations in one transaction; returns their sequence numbers.
    pub fn append(&self, items: Vec<(i64, Body)>) -> Result<Vec<u64>, OutboxError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let mut seqs = Vec::with_capacity(items.len());
        {
            let mut records = txn.open_table(RECORDS)?;
            let mut meta = txn.open_table(META)?;
            let mut next = meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
            let incoming = items.len() as u64;
            let len = records.len()?;
            if len + incoming > self.max_records {
                let dropped = thin_metrics(&mut records, len + incoming - self.max_records)?;
                if dropped > 0 {
                    let total = meta.get("thinned")?.map(|v| v.value()).unwrap_or(0) + dropped;
                    meta.insert("thinned", total)?;
                    tracing::warn!(
                        dropped,
                        total,
                        max_records = self.max_records,
                        "outbox full: oldest metric samples thinned"
                    );
                }
            }
            let mut buf = Vec::with_capacity(64);
            for (observed_at_ms, body) in items {
                let kind = match body {
                    observation::Body::Metric(_) => Kind::Metric,
                    _ => Kind::Other,
                };
                let obs = Observation {
                    seq: next,
                    observed_at_ms,
                    source: None,
                    body: Some(body),
                };
                buf.clear();
                buf.push(kind as u8);
                obs.encode(&mut buf).map_err(|e| OutboxError::Storage(e.to_string()))?;
                records.insert(next, buf.as_slice())?;
                seqs.push(next);
                next += 1;
            }
            meta.insert("next_seq", next)?;
        }
        txn.commit()?;
        Ok(seqs)
    }

    /// Up to `max` records with sequence number greater than `after`, in order,
    /// stopping before `max_bytes` of encoded observations.
    pub fn read_after(&self, after: u64, max: usize, max_bytes: usize) -> Result<Vec<Record>, OutboxError> {
        let txn = self.db.begin_read()?;
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
    }

    /// Deletes every record with sequence number `<= seq`. Returns how many.
    pub fn ack_through(&self, seq: u64) -> Result<u64, OutboxError> {
        let txn = self.db.begin_write()?;
        let removed;
        {
            let mut records = txn.open_table(RECORDS)?;
            let before = records.len()?;
            records.retain_in(..=seq, |_, _| false)?;
            removed = before - records.len()?;
            // The collector has committed up to `seq`: never hand out those numbers
            // again (e.g. after an outbox file was lost), or new data would be
            // mistaken for duplicates.
            let mut meta = txn.open_table(META)?;
            let next = meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
            if seq >= next {
                meta.insert("next_seq", seq.saturating_add(1))?;
                tracing::warn!(
                    acked = seq,
                    next_seq = next,
                    "collector acknowledged beyond our sequence numbers; skipping ahead"
                );
            } else if removed == 0 {
                drop(meta);
                drop(records);
                txn.abort()?;
                return Ok(0);
            }
        }
        txn.commit()?;
        Ok(removed)
    }

    /// Records waiting to be acknowledged.
    pub fn depth(&self) -> Result<u64, OutboxError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(RECORDS)?.len()?)
    }

    /// The lowest sequence number still held, or the next one to be assigned.
    pub fn first_unacked(&self) -> Result<u64, OutboxError> {
        let txn = self.db.begin_read()?;
        if let Some((k, _)) = txn.open_table(RECORDS)?.first()? {
            return Ok(k.value());
        }
        Ok(txn.open_table(META)?.get("next_seq")?.map(|v| v.value()).unwrap_or(1))
    }

    /// Metric samples dropped because the outbox was full, since it was created.
    pub fn thinned(&self) -> Result<u64, OutboxError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(META)?.get("thinned")?.map(|v| v.value()).unwrap_or(0))
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
mod tests;
