//! Device metrics: interned series, raw samples, 5-minute and 1-hour rollups,
//! retention.
//!
//! # Metric names
//!
//! | metric                | unit    | subject                              |
//! |-----------------------|---------|--------------------------------------|
//! | `cpu_load`            | percent | empty                                |
//! | `memory_used_bytes`   | bytes   | empty                                |
//! | `hdd_used_bytes`      | bytes   | empty                                |
//! | `if_rx_bps`           | bit/s   | interface name                       |
//! | `if_tx_bps`           | bit/s   | interface name                       |
//! | `health`              | sensor  | sensor name, e.g. `cpu-temperature`  |
//! | `wireless_signal_dbm` | dBm     | client MAC address                   |
//! | `wireless_clients`    | count   | empty                                |
//! | `poll_duration_ms`    | ms      | empty                                |
//!
//! # Layout (migrations `0004_metrics.sql`)
//!
//! * `metric_series(id, tenant_id, device_id, metric, subject, created_at_ms)`:
//!   one row per device, metric and subject, unique on
//!   `(device_id, metric, subject)`. Created on first sight with
//!   `INSERT ... SELECT FROM devices WHERE id = ? AND tenant_id = ?
//!   ON CONFLICT DO NOTHING` followed by a `SELECT`, so two writers race
//!   harmlessly and a series can only be created for a device of the writer's
//!   own tenant. Series rows are never deleted; the [`SeriesCache`] relies on
//!   that.
//! * `metric_raw(series_id, ts, value)`, primary key `(series_id, ts)`,
//!   `WITHOUT ROWID` on SQLite, `ts` in Unix seconds. At most one sample per
//!   series and second: **a second sample in the same second is ignored**
//!   (`ON CONFLICT DO NOTHING`), which also makes a resent sample a no-op. On
//!   SQLite `value` has NUMERIC affinity, so integral values (counts,
//!   percents, bytes) are stored as short integers rather than 8-byte floats.
//!   Non-finite values (NaN, ±∞) are not stored.
//! * `metric_5m`, `metric_1h(series_id, bucket_ts, min_value, max_value,
//!   sum_value, samples)`, primary key `(series_id, bucket_ts)`, `bucket_ts`
//!   the bucket's start in Unix seconds.
//! * `metric_dirty_5m`, `metric_dirty_1h(device_id, bucket_ts)`: buckets to
//!   recompute. Dirtiness is kept per *device* rather than per series: one
//!   device poll writes all its samples at one timestamp, so one row per poll
//!   (usually a no-op upsert) instead of one per sample, and recomputing a
//!   device's bucket reads that device's series through the
//!   `metric_series_key` index.
//!
//! # Invariants
//!
//! 1. A sample and the dirty mark of its 5-minute bucket commit together
//!    (same transaction); a 5-minute summary and the dirty mark of its hour
//!    likewise.
//! 2. The rollup pass recomputes each dirty bucket from the level below and
//!    replaces the summary (`ON CONFLICT DO UPDATE`), so it is idempotent and
//!    late samples (an agent draining days of buffered polls) reach the
//!    rollups whatever their age. It claims dirty marks with `DELETE ...
//!    RETURNING` *before* reading the level below, and writers mark with an
//!    upsert that locks the mark row: on PostgreSQL a sample committed while
//!    a pass runs either waits for the pass's claim or is seen by it, never
//!    neither.
//! 3. Raw rows are deleted only below the oldest dirty 5-minute bucket, and
//!    5-minute rows only below the oldest dirty hour: nothing is expired
//!    before it has been summarised.
//! 4. Deletes run in chunks of [`Retention::chunk_rows`] rows, one short
//!    transaction each, at most [`Retention::max_chunks`] per table per pass,
//!    so SQLite's write lock is never held for long.
//!
//! Limitation: a summary is recomputed from the level below, so samples of
//! one series and one 5-minute bucket that arrive more than the raw retention
//! apart (possible only when a device moves to another agent while the old
//! one still holds days of unsent polls) leave the bucket summarising only
//! the later arrival. The same holds for hours and the 5-minute retention.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

mod query;
mod rollup;
mod write;

#[cfg(test)]
mod tests;

pub use write::DevicePoll;

/// Width of a 5-minute bucket, seconds.
pub const FIVE_MINUTES_S: i64 = 300;
/// Width of a 1-hour bucket, seconds.
pub const ONE_HOUR_S: i64 = 3_600;

/// Series ids the cache holds at most; past that it starts over (every id is
/// still in the database, a miss costs two statements).
const SERIES_CACHE_CAP: usize = 1_000_000;

/// One measured value of a device, as a poll reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<'a> {
    /// Metric name, see the table in the module documentation.
    pub metric: &'a str,
    /// Interface, sensor or client the value is about; empty when none.
    pub subject: &'a str,
    /// The value.
    pub value: f64,
}

/// How long each resolution is kept, and how much a rollup pass may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples (default 48 hours).
    pub raw: Duration,
    /// 5-minute summaries (default 30 days).
    pub five_minutes: Duration,
    /// 1-hour summaries (default 1 year).
    pub one_hour: Duration,
    /// Rows deleted per transaction (default 5,000).
    pub chunk_rows: usize,
    /// Delete transactions per table per pass (default 20).
    pub max_chunks: usize,
    /// Dirty buckets recomputed per transaction (default 200).
    pub buckets_per_tx: usize,
    /// Dirty buckets recomputed per level per pass (default 20,000).
    pub max_buckets: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(48 * 3_600),
            five_minutes: Duration::from_secs(30 * 24 * 3_600),
            one_hour: Duration::from_secs(365 * 24 * 3_600),
            chunk_rows: 5_000,
            max_chunks: 20,
            buckets_per_tx: 200,
            max_buckets: 20_000,
        }
    }
}

/// What one [`Store::roll_up`](crate::Store::roll_up) pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollupStats {
    /// Device 5-minute buckets recomputed.
    pub buckets_5m: u64,
    /// Device 1-hour buckets recomputed.
    pub buckets_1h: u64,
    /// Raw rows deleted.
    pub raw_deleted: u64,
    /// 5-minute rows deleted.
    pub five_minutes_deleted: u64,
    /// 1-hour rows deleted.
    pub one_hour_deleted: u64,
    /// Delete transactions run.
    pub delete_chunks: u64,
    /// The pass stopped at a limit: more work is waiting for the next one.
    pub more: bool,
}

/// One point of a series: a raw sample, or a bucket's summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Start of the bucket (or the sample's time), Unix ms.
    pub ts_ms: i64,
    /// Mean.
    pub avg: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// The points of one subject of a metric, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoints {
    /// The subject (interface, sensor, client); empty when none.
    pub subject: String,
    /// Width of one point, ms (0 for raw samples shown one by one).
    pub step_ms: i64,
    /// The points.
    pub points: Vec<Point>,
}

/// Series ids by tenant, device, metric and subject, so that steady-state
/// ingest looks nothing up. Holds only ids that are committed: an id created
/// by a transaction enters the cache after that transaction commits (see
/// [`SampleWriter`](write::SampleWriter)), so a rollback can never leave an id here that the
/// database does not have (or, on SQLite, later gives to another series).
#[derive(Debug, Default)]
pub(crate) struct SeriesCache {
    ids: Mutex<HashMap<Box<str>, i64>>,
}

impl SeriesCache {
    /// The key of a series: its fields joined by NUL, which none may contain
    /// (PostgreSQL refuses NUL in text).
    fn key_into(buf: &mut String, tenant: &str, device: &str, metric: &str, subject: &str) {
        buf.clear();
        for (i, part) in [tenant, device, metric, subject].into_iter().enumerate() {
            if i > 0 {
                buf.push('\0');
            }
            buf.push_str(part);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, i64>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert_committed(&self, entries: impl IntoIterator<Item = (Box<str>, i64)>) {
        let mut ids = self.lock();
        for (key, id) in entries {
            if ids.len() >= SERIES_CACHE_CAP {
                ids.clear();
            }
            ids.insert(key, id);
        }
    }
}

/// A connection of either engine, for functions that run inside a
/// transaction their caller owns.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut sqlx::SqliteConnection),
    Postgres(&'c mut sqlx::PgConnection),
}

impl<'c> From<&'c mut sqlx::SqliteConnection> for Conn<'c> {
    fn from(c: &'c mut sqlx::SqliteConnection) -> Self {
        Self::Sqlite(c)
    }
}

impl<'c> From<&'c mut sqlx::PgConnection> for Conn<'c> {
    fn from(c: &'c mut sqlx::PgConnection) -> Self {
        Self::Postgres(c)
    }
}

/// Runs `$body` with `$c` bound to the engine's connection and `$db` naming
/// the engine's `sqlx::Database` type, once per engine (as `on_pool!`).
macro_rules! on_conn {
    ($conn:expr, $c:ident, $db:ident => $body:expr) => {
        match $conn {
            $crate::metrics::Conn::Sqlite($c) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
            $crate::metrics::Conn::Postgres($c) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

/// Start of the bucket of width `width_s` that holds `ts` (seconds).
pub(crate) fn bucket_of(ts: i64, width_s: i64) -> i64 {
    ts.div_euclid(width_s) * width_s
}
