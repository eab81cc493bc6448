//! The shared state of one logged-in session: which tags are in flight, the
//! task that reads and routes replies, the task that writes sentences.
//!
//! Invariants:
//! - every command in flight has exactly one entry in `pending`, keyed by its
//!   tag; tags are never reused, so a late reply to a finished or cancelled
//!   command finds no entry and is dropped;
//! - once the session is dead (`!fatal`, I/O or framing error, close), `dead`
//!   holds the reason, `pending` is empty and stays empty, and every waiting
//!   command sees its channel close and reports that reason;
//! - the reader is the only task reading the socket and the writer the only
//!   task writing it, in queue order, so a command's `/cancel` is never
//!   written before the command; both end when the session dies or closes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::connection::Connection;
use crate::error::Error;
use crate::frame;
use crate::sentence::{Attrs, Reply, Tagged};

/// Rows buffered per command before the reader waits (`run`) or gives up on
/// the consumer (streams).
pub(crate) const ROWS_PER_COMMAND: usize = 256;

/// A byte stream the session can own: TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// What the reader hands a waiting command.
#[derive(Debug)]
pub(crate) enum Event {
    Row(Attrs),
    Trap { message: String, category: Option<u32> },
    Done,
}

/// How the reader delivers rows to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `run`: the caller drains promptly; wait for room.
    Collect,
    /// Streams: a consumer that stops reading loses the stream, not the session.
    Stream,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: mpsc::Sender<Event>,
    mode: Mode,
    command: String,
}

#[derive(Debug, Default)]
struct Table {
    pending: HashMap<u64, Entry>,
    dead: Option<Error>,
    /// Sentences for the writer, in order. Unbounded so that a `/cancel`
    /// (sent from `Drop`) never blocks or fails and always follows its
    /// command; it holds at most one command and one `/cancel` per call in
    /// flight, which the caller bounds. A queue under the table's lock
    /// rather than a channel: an agent keeps thousands of idle sessions, and
    /// a tokio channel allocates a block of slots up front for each.
    writes: VecDeque<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct Session {
    table: Mutex<Table>,
    next_tag: AtomicU64,
    /// Wakes the writer: a sentence was queued or the session died.
    written: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Session {
    /// Starts the reader and writer tasks on a logged-in connection.
    pub(crate) fn start(conn: Connection<Box<dyn Io>>) -> Arc<Self> {
        let (stream, buffered) = conn.into_parts();
        let (read, write) = tokio::io::split(stream);
        let session = Arc::new(Self {
            table: Mutex::new(Table::default()),
            next_tag: AtomicU64::new(1),
            written: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let reader = tokio::spawn(read_loop(Arc::clone(&session), Connection::from_parts(read, buffered)));
        let writer = tokio::spawn(write_loop(Arc::clone(&session), write));
        session.tasks().extend([reader, writer]);
        session
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a table that is still
        // consistent (each operation is a single insert/remove), so carry on.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a command and queues it for writing; returns its tag and the
    /// channel its replies arrive on.
    pub(crate) fn send(&self, command: &crate::Command, mode: Mode) -> Result<(u64, mpsc::Receiver<Event>), Error> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(ROWS_PER_COMMAND);
        let bytes = frame::encode_sentence(&command.words(Some(tag)));
        {
            let mut table = self.table();
            if let Some(reason) = &table.dead {
                return Err(reason.clone());
            }
            let command = command.path().to_owned();
            table.pending.insert(tag, Entry { tx, mode, command });
            table.writes.push_back(bytes);
        }
        self.written.notify_one();
        Ok((tag, rx))
    }

    /// Stops routing replies for `tag` and asks the router to stop it; what
    /// the router still sends for it is dropped.
    pub(crate) fn cancel(&self, tag: u64) {
        let mut table = self.table();
        // Once the session is dead nothing is written any more.
        if table.pending.remove(&tag).is_some() && table.dead.is_none() {
            let bytes = frame::encode_sentence(&["/cancel".to_owned(), format!("=tag={tag}")]);
            table.writes.push_back(bytes);
            drop(table);
            self.written.notify_one();
        }
    }

    /// Removes `tag`'s entry; whether it was still there.
    pub(crate) fn forget(&self, tag: u64) -> bool {
        self.table().pending.remove(&tag).is_some()
    }

    /// Why the session ended, or [`Error::Closed`] if it has not.
    pub(crate) fn death(&self) -> Error {
        self.table().dead.clone().unwrap_or(Error::Closed)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.table().dead.is_some()
    }

    /// Marks the session dead (the first reason wins) and drops every pending
    /// command's sender, so each waiter wakes and reports the reason.
    pub(crate) fn kill(&self, reason: Error) {
        let orphans = {
            let mut table = self.table();
            if table.dead.is_none() {
                tracing::debug!(error = %reason, "RouterOS API session ended");
                table.dead = Some(reason);
            }
            (std::mem::take(&mut table.pending), std::mem::take(&mut table.writes))
        };
        drop(orphans);
        // The writer sees the session dead and ends.
        self.written.notify_one();
    }

    /// Kills the session and stops both tasks, which closes the socket.
    pub(crate) fn shutdown(&self) {
        self.kill(Error::Closed);
        for task in self.tasks().drain(..) {
            task.abort();
        }
    }

    /// Delivers one reply to the command it belongs to.
    async fn route(&self, reply: Tagged) {
        let tag = reply.tag.as_deref().and_then(|t| t.parse::<u64>().ok());
        let event = match reply.reply {
            Reply::Re(attrs) => Event::Row(attrs),
            Reply::Done(_) => Event::Done,
            Reply::Trap { message, category, .. } => Event::Trap { message, category },
            Reply::Empty => return,
            Reply::Fatal(reason) => return self.kill(Error::Fatal(reason)),
            Reply::Unknown { word, .. } => {
                tracing::debug!(word, ?tag, "skipping an unknown RouterOS reply word");
                return;
            }
        };
        let Some(tag) = tag else {
            // Replies to untagged sentences (our `/cancel`s) need no delivery.
            return;
        };
        let done = matches!(event, Event::Done);
        let target = {
            let mut table = self.table();
            if done {
                table.pending.remove(&tag)
            } else {
                table.pending.get(&tag).cloned()
            }
        };
        let Some(entry) = target else {
            tracing::debug!(tag, "dropping a reply for a finished or cancelled command");
            return;
        };
        match entry.mode {
            Mode::Collect => {
                // A closed channel means the caller gave up; its guard cancels.
                // Waiting for room is boxed: the reader's future lives as long
                // as the session, and is only as large as what it holds
                // across its awaits.
                if let Err(mpsc::error::TrySendError::Full(event)) = entry.tx.try_send(event) {
                    let _ = Box::pin(entry.tx.send(event)).await;
                }
            }
            Mode::Stream => {
                if let Err(mpsc::error::TrySendError::Full(_)) = entry.tx.try_send(event) {
                    tracing::debug!(tag, command = entry.command, "stream consumer fell behind; cancelling");
                    self.cancel(tag);
                }
            }
        }
    }
}

async fn read_loop(session: Arc<Session>, mut conn: Connection<ReadHalf<Box<dyn Io>>>) {
    let reason = loop {
        match conn.read_sentence().await {
            Ok(Some(words)) => {
                if let Some(reply) = Tagged::parse(&words) {
                    session.route(reply).await;
                    if session.is_dead() {
                        return;
                    }
                }
            }
            Ok(None) => break Error::Closed,
            Err(e) => break Error::protocol(e),
        }
    };
    session.kill(reason);
}

async fn write_loop(session: Arc<Session>, mut write: WriteHalf<Box<dyn Io>>) {
    loop {
        let next = {
            let mut table = session.table();
            if table.dead.is_some() {
                return;
            }
            table.writes.pop_front()
        };
        let Some(bytes) = next else {
            // `notify_one` keeps a wake-up for a writer not yet waiting.
            session.written.notified().await;
            continue;
        };
        let written = async {
            write.write_all(&bytes).await?;
            write.flush().await
        };
        if let Err(e) = written.await {
            session.kill(Error::protocol(e.into()));
            return;
        }
    }
}
