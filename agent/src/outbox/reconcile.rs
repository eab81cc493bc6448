//! Applying the collector's high-water mark at the first `Welcome`, with the
//! crash-safe, chunked renumbering described in the module documentation.
use std::sync::atomic::Ordering;

use outpost_proto::agent_v1::Observation;
use prost::Message as _;
use redb::{ReadableTable, WriteTransaction};

use super::store::Outcome;
use super::{Kind, META, NEXT_SEQ, Outbox, OutboxError, RECORDS};

const FROM: &str = "reconcile_from";
const SHIFT: &str = "reconcile_shift";
const CURSOR: &str = "reconcile_cursor";
const ACKED: &str = "reconcile_acked";

/// A renumbering in progress, as stored in `meta`.
///
/// Records below `from` are old copies still to drop; records in
/// `[from, cursor)` still have to move to `seq + shift`; everything from
/// `cursor` up is either moved already or was appended after the job started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) from: u64,
    pub(crate) shift: u64,
    pub(crate) cursor: u64,
    /// The collector's high-water mark the job was started for.
    pub(crate) acked: u64,
}

impl Job {
    pub(crate) fn load(meta: &impl ReadableTable<&'static str, u64>) -> Result<Option<Self>, OutboxError> {
        let get = |key: &'static str| -> Result<Option<u64>, OutboxError> { Ok(meta.get(key)?.map(|v| v.value())) };
        match (get(FROM)?, get(SHIFT)?, get(CURSOR)?, get(ACKED)?) {
            (Some(from), Some(shift), Some(cursor), Some(acked)) => Ok(Some(Self {
                from,
                shift,
                cursor,
                acked,
            })),
            (None, None, None, None) => Ok(None),
            _ => Err(OutboxError::Meta {
                key: FROM,
                reason: "a renumbering job is only partly recorded".into(),
            }),
        }
    }

    pub(crate) fn save(&self, meta: &mut redb::Table<'_, &'static str, u64>) -> Result<(), OutboxError> {
        meta.insert(FROM, self.from)?;
        meta.insert(SHIFT, self.shift)?;
        meta.insert(CURSOR, self.cursor)?;
        meta.insert(ACKED, self.acked)?;
        Ok(())
    }

    fn clear(meta: &mut redb::Table<'_, &'static str, u64>) -> Result<(), OutboxError> {
        for key in [FROM, SHIFT, CURSOR, ACKED] {
            meta.remove(key)?;
        }
        Ok(())
    }
}

/// What one renumbering transaction did.
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    dropped: u64,
    moved: u64,
    corrupt: u64,
    done: bool,
}

impl Outbox {
    /// Applies the collector's committed high-water mark from `Welcome`.
    ///
    /// Normally that is [`Outbox::ack_through`]. At the first `Welcome` since
    /// this process opened the outbox, if the collector has committed numbers
    /// this file had not yet handed out when it was opened, the records
    /// numbered since are renumbered after `acked` and older ones dropped (see
    /// the module documentation). Returns how many records were dropped.
    pub fn reconcile(&self, acked: u64) -> Result<u64, OutboxError> {
        if self.reconciled.load(Ordering::SeqCst) {
            return self.ack_through(acked);
        }
        let dropped = match self.job_pending()? {
            // An earlier attempt of this process stopped part way: finish it,
            // then apply this Welcome as an acknowledgement.
            true => self.finish_job()? + self.ack_through(acked)?,
            false if acked < self.opened_next_seq => self.ack_through(acked)?,
            false => {
                self.start_job(acked)?;
                self.finish_job()?
            }
        };
        self.reconciled.store(true, Ordering::SeqCst);
        Ok(dropped)
    }

    /// Whether a renumbering is recorded and not finished.
    pub(crate) fn job_pending(&self) -> Result<bool, OutboxError> {
        self.store.read(|db| {
            use redb::ReadableDatabase as _;
            Ok(Job::load(&db.begin_read()?.open_table(META)?)?.is_some())
        })
    }

    /// Records the job and raises `next_seq` above every target.
    fn start_job(&self, acked: u64) -> Result<(), OutboxError> {
        let from = self.opened_next_seq;
        let out_of_range = || OutboxError::OutOfRange { acked };
        let shift = acked.checked_add(1).ok_or_else(out_of_range)? - from;
        self.store.write(|txn| {
            let mut meta = txn.open_table(META)?;
            if Job::load(&meta)?.is_some() {
                // Recorded by an attempt whose commit was reported as failed.
                return Ok(Outcome::Unchanged(()));
            }
            let records = txn.open_table(RECORDS)?;
            let highest = records.last()?.map(|(k, _)| k.value()).filter(|&k| k >= from);
            let (cursor, top) = match highest {
                Some(h) => (
                    h + 1,
                    h.checked_add(shift)
                        .and_then(|t| t.checked_add(1))
                        .ok_or_else(out_of_range)?,
                ),
                None => (from, 0),
            };
            let next = meta.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1);
            meta.insert(NEXT_SEQ, next.max(top).max(acked + 1))?;
            Job {
                from,
                shift,
                cursor,
                acked,
            }
            .save(&mut meta)?;
            Ok(Outcome::Commit(()))
        })
    }

    /// Runs the recorded job to the end, one chunk per transaction. Returns
    /// how many records were dropped (old copies and undecodable ones).
    pub(crate) fn finish_job(&self) -> Result<u64, OutboxError> {
        let mut total = Step::default();
        let mut acked = None;
        loop {
            let step = self.store.write(|txn| {
                let job = {
                    let meta = txn.open_table(META)?;
                    Job::load(&meta)?
                };
                match job {
                    // Finished by an attempt whose commit was reported as failed.
                    None => Ok(Outcome::Unchanged((
                        Step {
                            done: true,
                            ..Step::default()
                        },
                        None,
                    ))),
                    Some(job) => Ok(Outcome::Commit((
                        step(txn, job, self.reconcile_chunk)?,
                        Some(job.acked),
                    ))),
                }
            })?;
            let (step, job_acked) = step;
            acked = acked.or(job_acked);
            total.dropped += step.dropped;
            total.moved += step.moved;
            total.corrupt += step.corrupt;
            if step.done {
                break;
            }
        }
        if let Some(acked) = acked {
            tracing::warn!(
                acked,
                opened_next_seq = self.opened_next_seq,
                dropped = total.dropped,
                renumbered = total.moved,
                corrupt = total.corrupt,
                "the collector has committed sequence numbers this outbox never handed out \
                 (outbox lost or restored); new records renumbered"
            );
        }
        Ok(total.dropped + total.corrupt)
    }
}

/// One chunk: drop old copies first, then move the highest unmoved records.
fn step(txn: &WriteTransaction, mut job: Job, chunk: usize) -> Result<Step, OutboxError> {
    let mut records = txn.open_table(RECORDS)?;
    let mut meta = txn.open_table(META)?;
    let old = records
        .range(..job.from)?
        .take(chunk)
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<Vec<u64>, _>>()?;
    if !old.is_empty() {
        for seq in &old {
            records.remove(seq)?;
        }
        return Ok(Step {
            dropped: old.len() as u64,
            ..Step::default()
        });
    }
    let batch = records
        .range(job.from..job.cursor)?
        .rev()
        .take(chunk)
        .map(|e| e.map(|(k, v)| (k.value(), v.value().to_vec())))
        .collect::<Result<Vec<(u64, Vec<u8>)>, _>>()?;
    let Some(&(lowest, _)) = batch.last() else {
        Job::clear(&mut meta)?;
        return Ok(Step {
            done: true,
            ..Step::default()
        });
    };
    let mut out = Step::default();
    let mut buf = Vec::with_capacity(64);
    for (seq, raw) in &batch {
        records.remove(seq)?;
        let target = seq
            .checked_add(job.shift)
            .ok_or(OutboxError::OutOfRange { acked: job.acked })?;
        let mut obs = match Observation::decode(raw.get(1..).unwrap_or_default()) {
            Ok(o) => o,
            Err(e) => {
                // Logged, not fatal: one damaged record must not stop the
                // renumbering (and with it the uplink).
                tracing::error!(seq, error = %e, "outbox record is corrupt; dropping it while renumbering");
                out.corrupt += 1;
                continue;
            }
        };
        obs.seq = target;
        buf.clear();
        buf.push(raw.first().copied().unwrap_or(Kind::Other as u8));
        obs.encode(&mut buf).map_err(OutboxError::encode)?;
        records.insert(target, buf.as_slice())?;
        out.moved += 1;
    }
    job.cursor = lowest;
    job.save(&mut meta)?;
    Ok(out)
}
