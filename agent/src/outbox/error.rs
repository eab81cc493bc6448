//! Outbox errors, split by what the caller (or the outbox itself) can do about them.

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
    /// The storage failed: an I/O error, a full disk, or redb's memory of an
    /// earlier one (`PreviousIo`). Callers never see it: the outbox reopens its
    /// database and retries, and reports [`OutboxError::Failed`] when that
    /// keeps failing.
    #[error("{0}")]
    Io(String),
    /// A storage error that reopening cannot cure (a bug or a limit).
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
    /// A bookkeeping value in the outbox's `meta` or `labels` table is unreadable.
    #[error("outbox metadata {key:?} is invalid: {reason}")]
    Meta {
        /// Key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The collector acknowledged a number that leaves no room to renumber new records.
    #[error("the collector acknowledged sequence number {acked}, which leaves no room for new numbers")]
    OutOfRange {
        /// The acknowledged number.
        acked: u64,
    },
    /// The outbox is unusable: after an I/O error it was reopened and the
    /// operation retried `attempts` times, and every attempt failed. Every later
    /// call returns this too; the agent must exit so its service manager
    /// restarts it.
    #[error("the outbox {path} is unusable: {attempts} attempts to reopen it and retry failed; last error: {cause}")]
    Failed {
        /// File.
        path: String,
        /// Reopen attempts made.
        attempts: u32,
        /// The last error.
        cause: String,
    },
}

impl OutboxError {
    /// Whether the error comes from the storage itself, so that the database
    /// must be reopened (redb refuses every later call with `PreviousIo`).
    pub(crate) fn needs_reopen(&self) -> bool {
        matches!(self, Self::Io(_))
    }

    pub(crate) fn encode(e: prost::EncodeError) -> Self {
        Self::Storage(format!("encoding an observation: {e}"))
    }
}

impl From<redb::StorageError> for OutboxError {
    fn from(e: redb::StorageError) -> Self {
        use redb::StorageError as S;
        match e {
            // Corrupted is listed because a damaged page may come from a failed
            // write; a reopen repairs what redb can, and a lasting failure then
            // stops the agent instead of looping.
            S::Io(_) | S::PreviousIo | S::Backend(_) | S::DatabaseClosed | S::Corrupted(_) | S::LockPoisoned(_) => {
                Self::Io(e.to_string())
            }
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for OutboxError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => s.into(),
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<redb::TableError> for OutboxError {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => s.into(),
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for OutboxError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => s.into(),
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<redb::DatabaseError> for OutboxError {
    /// For a reopen: every way a reopen fails counts as the storage failing.
    fn from(e: redb::DatabaseError) -> Self {
        Self::Io(e.to_string())
    }
}
