//! Device reports into the outbox, in groups.
//!
//! Every outbox append is a durable commit (an fsync). Thousands of devices
//! each reporting once a minute would mean hundreds of commits a second, so
//! device tasks hand their reports to one writer that appends whatever has
//! gathered, at most every [`GATHER`].
//!
//! What waits for the writer is bounded in bytes as well as in reports
//! ([`QUEUE_BYTES`]): after a start, thousands of first configuration backups
//! of tens of KB each would otherwise queue hundreds of MB. A sender waits
//! for room, which slows polling and backups down to what the disk takes.
use std::sync::Arc;
use std::time::Duration;

use outpost_proto::agent_v1::observation::Body;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::outbox::{Outbox, blocking};
use crate::signals::Signals;

/// Longest a report waits for others to join it.
const GATHER: Duration = Duration::from_millis(200);
/// Most reports in one append.
const MAX_GROUP: usize = 2_000;
/// Reports waiting for the writer; device tasks wait when it is full, which
/// slows polling down to what the disk can take instead of growing memory.
const QUEUE: usize = 10_000;
/// Bytes of reports waiting for the writer, at most (in KiB permits).
const QUEUE_BYTES: usize = 16 << 20;

fn kib(body: &Body) -> u32 {
    u32::try_from(body.encoded_len().div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// Where device tasks send their reports.
#[derive(Clone, Debug)]
pub struct ReportSink {
    tx: mpsc::Sender<(i64, Body)>,
    room: Arc<tokio::sync::Semaphore>,
}

impl ReportSink {
    /// Queues one report observed at `at_ms`. Fails only when the agent is
    /// stopping.
    pub async fn send(&self, at_ms: i64, body: Body) -> bool {
        // A report larger than the whole budget still goes, alone.
        let want = kib(&body).min(u32::try_from(QUEUE_BYTES / 1024).unwrap_or(u32::MAX));
        match self.room.acquire_many(want).await {
            // Given back by the writer once the report is in the outbox.
            Ok(permit) => permit.forget(),
            Err(_) => return false,
        }
        self.tx.send((at_ms, body)).await.is_ok()
    }

    /// A sink whose reports go to `rx`, for tests.
    #[cfg(test)]
    pub fn for_tests() -> (Self, mpsc::Receiver<(i64, Body)>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        // Tests read reports themselves and give nothing back: no byte bound.
        let room = Arc::new(tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS));
        (Self { tx, room }, rx)
    }
}

/// Starts the writer; it stops when `stop` is cancelled, after writing what
/// it already holds.
pub fn start(
    outbox: Arc<Outbox>,
    signals: Arc<Signals>,
    stop: CancellationToken,
) -> (ReportSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<(i64, Body)>(QUEUE);
    let room = Arc::new(tokio::sync::Semaphore::new(QUEUE_BYTES / 1024));
    let writer_room = room.clone();
    let task = tokio::spawn(async move {
        let room = writer_room;
        loop {
            let first = tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => return },
                () = stop.cancelled() => return,
            };
            let mut group = vec![first];
            let deadline = tokio::time::Instant::now() + GATHER;
            while group.len() < MAX_GROUP {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(r)) => group.push(r),
                    Ok(None) | Err(_) => break,
                }
            }
            let n = group.len();
            let held: usize = group
                .iter()
                .map(|(_, b)| kib(b).min(u32::try_from(QUEUE_BYTES / 1024).unwrap_or(u32::MAX)) as usize)
                .sum();
            let result = blocking(&outbox, move |o| o.append(group)).await;
            room.add_permits(held);
            match result {
                Ok(seqs) if !seqs.is_empty() => signals.new_data.notify_one(),
                // Metric-like polls refused below the free-space reserve are
                // counted and logged by the outbox.
                Ok(_) => {}
                Err(error) => tracing::error!(%error, reports = n, "recording device reports failed"),
            }
        }
    });
    (ReportSink { tx, room }, task)
}
