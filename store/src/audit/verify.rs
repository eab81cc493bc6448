//! Walking the chain: every record's hash recomputed from its stored fields
//! and the hash before it, the first that does not fit named with what is
//! wrong.
use std::fmt;

use super::{Fields, GENESIS_HASH, Head, chain_hash};
use crate::row_scope::RowScope;
use crate::{AdminScope, Store, StoreError, on_pool};

/// Records read per query while walking.
const PAGE: i64 = 1000;

/// The first place the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The record's stored fields are not what was hashed: edited.
    Edited {
        /// The record.
        seq: i64,
    },
    /// The records `from..=to` are gone: deleted (from the middle, or from
    /// the end when the head names a later record).
    Missing {
        /// First missing seq.
        from: i64,
        /// Last missing seq.
        to: i64,
    },
    /// The record at `seq` was chained after the record now stored at
    /// `follows`, not after `seq - 1`: records were moved (swapped, reordered).
    Reordered {
        /// The record.
        seq: i64,
        /// Where the record it was chained after is now.
        follows: i64,
    },
    /// The record names a previous hash that no record has, and its own hash
    /// does not fit: rewritten.
    Relinked {
        /// The record.
        seq: i64,
    },
    /// `audit_head` does not name the newest record (it was edited, or
    /// records were added behind the log's back).
    HeadMismatch {
        /// What the head says.
        head: Head,
        /// The newest record.
        last: Head,
    },
}

impl ChainBreak {
    /// The seq of the first broken record.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Edited { seq } | Self::Reordered { seq, .. } | Self::Relinked { seq } => *seq,
            Self::Missing { from, .. } => *from,
            Self::HeadMismatch { head, last } => head.seq.min(last.seq).max(1),
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Edited { seq } => write!(f, "record {seq} was edited: its stored content does not match its hash"),
            Self::Missing { from, to } if from == to => write!(f, "record {from} is missing (deleted)"),
            Self::Missing { from, to } => write!(f, "records {from} to {to} are missing (deleted)"),
            Self::Reordered { seq, follows } => write!(
                f,
                "record {seq} is out of order: it was written after the record now at seq {follows}, \
                 not after seq {} (records moved or swapped)",
                seq - 1
            ),
            Self::Relinked { seq } => write!(
                f,
                "record {seq} was rewritten: it names a previous hash no record has and its own hash does not fit"
            ),
            Self::HeadMismatch { head, last } => {
                write!(f, "the log's head ({head}) does not match its newest record ({last})")
            }
        }
    }
}

/// What [`Store::verify_audit_chain`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Records checked (up to the first break).
    pub checked: i64,
    /// The head as of the start of the walk.
    pub head: Head,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

/// seq, at, tenant, actor, source, action, object, outcome, details, prev_hash, hash
type ChainRow = (
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
);

impl Store {
    /// Walks the whole chain, up to the head as it was when the walk began
    /// (later appends are left for the next walk), and stops at the first
    /// break.
    pub async fn verify_audit_chain(&self, _admin: &AdminScope) -> Result<ChainReport, StoreError> {
        let (head_seq, head_hash): (i64, String) = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(pool).await?
        });
        let head = Head {
            seq: head_seq,
            hash: head_hash,
        };
        let mut expected = 1_i64;
        let mut running = GENESIS_HASH.to_owned();
        let mut checked = 0_i64;
        let broken = 'walk: loop {
            let rows: Vec<ChainRow> = on_pool!(self, RowScope::All, pool, _Db => {
                sqlx::query_as(
                    "SELECT seq, at_ms, tenant_id, actor, source, action, object, outcome, details, prev_hash, hash \
                     FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                )
                .bind(expected)
                .bind(head.seq)
                .bind(PAGE)
                .fetch_all(pool)
                .await?
            });
            let Some(last_seq) = rows.last().map(|r| r.0) else {
                break None;
            };
            for (seq, at_ms, tenant, actor, source, action, object, outcome, details, prev_hash, hash) in &rows {
                if *seq != expected {
                    break 'walk Some(ChainBreak::Missing {
                        from: expected,
                        to: seq - 1,
                    });
                }
                let fields = Fields {
                    seq: *seq,
                    at_ms: *at_ms,
                    tenant: tenant.as_deref(),
                    actor,
                    source: source.as_deref(),
                    action,
                    object,
                    outcome,
                    details,
                };
                let fits = chain_hash(&running, &fields).as_deref() == Some(hash.as_str());
                if !fits {
                    if *prev_hash == running {
                        break 'walk Some(ChainBreak::Edited { seq: *seq });
                    }
                    break 'walk Some(match self.audit_seq_of_hash(prev_hash).await? {
                        Some(follows) => ChainBreak::Reordered { seq: *seq, follows },
                        None => ChainBreak::Relinked { seq: *seq },
                    });
                }
                running.clone_from(hash);
                expected += 1;
                checked += 1;
            }
            if last_seq >= head.seq || rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
                break None;
            }
        };
        let broken = broken.or_else(|| {
            let last = Head {
                seq: expected - 1,
                hash: running,
            };
            if last.seq < head.seq {
                Some(ChainBreak::Missing {
                    from: expected,
                    to: head.seq,
                })
            } else if last != head {
                Some(ChainBreak::HeadMismatch {
                    head: head.clone(),
                    last,
                })
            } else {
                None
            }
        });
        Ok(ChainReport { checked, head, broken })
    }

    async fn audit_seq_of_hash(&self, hash: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT seq FROM audit_log WHERE hash = $1 ORDER BY seq LIMIT 1")
                .bind(hash)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(seq,)| seq))
    }
}
