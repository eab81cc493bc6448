//! The maintenance pass: recompute dirty buckets, then expire old rows.
use super::{FIVE_MINUTES_S, ONE_HOUR_S, Retention, RollupStats, bucket_of};
use crate::row_scope::RowScope;
use crate::{Store, StoreError, on_pool};

/// The SQL of one rollup level.
struct Level {
    width_s: i64,
    /// Claims the oldest dirty marks: `$1` = how many.
    claim: &'static str,
    /// Recomputes one device bucket: `$1` device, `$2` start, `$3` end.
    recompute: &'static str,
    /// Marks the next level's bucket: `$1` device, `$2` its start.
    mark_next: Option<(&'static str, i64)>,
}

const FIVE_MINUTES: Level = Level {
    width_s: FIVE_MINUTES_S,
    claim: "DELETE FROM metric_dirty_5m WHERE (device_id, bucket_ts) IN \
            (SELECT device_id, bucket_ts FROM metric_dirty_5m ORDER BY bucket_ts LIMIT $1) \
            RETURNING device_id, bucket_ts",
    recompute: "INSERT INTO metric_5m (series_id, bucket_ts, min_value, max_value, sum_value, samples) \
                SELECT r.series_id, $2, MIN(r.value), MAX(r.value), SUM(CAST(r.value AS DOUBLE PRECISION)), COUNT(*) \
                FROM metric_series s JOIN metric_raw r ON r.series_id = s.id \
                WHERE s.device_id = $1 AND r.ts >= $2 AND r.ts < $3 GROUP BY r.series_id \
                ON CONFLICT (series_id, bucket_ts) DO UPDATE SET min_value = excluded.min_value, \
                max_value = excluded.max_value, sum_value = excluded.sum_value, samples = excluded.samples",
    mark_next: Some((
        "INSERT INTO metric_dirty_1h (device_id, bucket_ts) VALUES ($1, $2) \
         ON CONFLICT (device_id, bucket_ts) DO UPDATE SET bucket_ts = excluded.bucket_ts",
        ONE_HOUR_S,
    )),
};

const ONE_HOUR: Level = Level {
    width_s: ONE_HOUR_S,
    claim: "DELETE FROM metric_dirty_1h WHERE (device_id, bucket_ts) IN \
            (SELECT device_id, bucket_ts FROM metric_dirty_1h ORDER BY bucket_ts LIMIT $1) \
            RETURNING device_id, bucket_ts",
    recompute: "INSERT INTO metric_1h (series_id, bucket_ts, min_value, max_value, sum_value, samples) \
                SELECT f.series_id, $2, MIN(f.min_value), MAX(f.max_value), \
                SUM(CAST(f.sum_value AS DOUBLE PRECISION)), SUM(f.samples) \
                FROM metric_series s JOIN metric_5m f ON f.series_id = s.id \
                WHERE s.device_id = $1 AND f.bucket_ts >= $2 AND f.bucket_ts < $3 GROUP BY f.series_id \
                ON CONFLICT (series_id, bucket_ts) DO UPDATE SET min_value = excluded.min_value, \
                max_value = excluded.max_value, sum_value = excluded.sum_value, samples = excluded.samples",
    mark_next: None,
};

/// The SQL of one table's expiry.
struct Expiry {
    /// The oldest dirty mark of the level this table feeds (nothing at or
    /// after it may go yet), if any.
    oldest_dirty: Option<&'static str>,
    /// Deletes one chunk: `$1` first series id, `$2` cutoff (exclusive,
    /// seconds), `$3` rows; returns the series ids deleted from. Ordered by
    /// `s.id` so that the plan walks the series and seeks each one's expired
    /// prefix by primary key, instead of scanning the whole table for rows
    /// below the cutoff.
    delete: &'static str,
}

const RAW_EXPIRY: Expiry = Expiry {
    oldest_dirty: Some("SELECT MIN(bucket_ts) FROM metric_dirty_5m"),
    delete: "DELETE FROM metric_raw WHERE (series_id, ts) IN \
             (SELECT r.series_id, r.ts FROM metric_series s JOIN metric_raw r ON r.series_id = s.id \
              WHERE s.id >= $1 AND r.ts < $2 ORDER BY s.id, r.ts LIMIT $3) \
             RETURNING series_id",
};

const FIVE_MINUTES_EXPIRY: Expiry = Expiry {
    oldest_dirty: Some("SELECT MIN(bucket_ts) FROM metric_dirty_1h"),
    delete: "DELETE FROM metric_5m WHERE (series_id, bucket_ts) IN \
             (SELECT f.series_id, f.bucket_ts FROM metric_series s JOIN metric_5m f ON f.series_id = s.id \
              WHERE s.id >= $1 AND f.bucket_ts < $2 ORDER BY s.id, f.bucket_ts LIMIT $3) \
             RETURNING series_id",
};

const ONE_HOUR_EXPIRY: Expiry = Expiry {
    oldest_dirty: None,
    delete: "DELETE FROM metric_1h WHERE (series_id, bucket_ts) IN \
             (SELECT f.series_id, f.bucket_ts FROM metric_series s JOIN metric_1h f ON f.series_id = s.id \
              WHERE s.id >= $1 AND f.bucket_ts < $2 ORDER BY s.id, f.bucket_ts LIMIT $3) \
             RETURNING series_id",
};

impl Store {
    /// One maintenance pass, for the collector to run every minute: recomputes
    /// the dirty 5-minute buckets from raw samples and the dirty hours from
    /// 5-minute summaries (oldest first), then deletes what `retention` says
    /// has expired, in chunks. Work per pass is bounded by `retention`'s
    /// limits; [`RollupStats::more`] says the next pass has some left.
    /// Running it again with nothing new changes nothing.
    pub async fn roll_up(&self, now_ms: i64, retention: &Retention) -> Result<RollupStats, StoreError> {
        let mut stats = RollupStats::default();
        stats.buckets_5m = self.roll_level(&FIVE_MINUTES, retention, &mut stats.more).await?;
        stats.buckets_1h = self.roll_level(&ONE_HOUR, retention, &mut stats.more).await?;
        let now_s = now_ms.div_euclid(1_000);
        let age = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        // Expire whole buckets only, so a summary never outlives part of its data.
        let raw_cutoff = bucket_of(now_s.saturating_sub(age(retention.raw)), ONE_HOUR_S);
        let five_cutoff = bucket_of(now_s.saturating_sub(age(retention.five_minutes)), ONE_HOUR_S);
        let hour_cutoff = bucket_of(now_s.saturating_sub(age(retention.one_hour)), ONE_HOUR_S);
        let (n, chunks) = self.expire(&RAW_EXPIRY, raw_cutoff, retention, &mut stats.more).await?;
        stats.raw_deleted = n;
        stats.delete_chunks += chunks;
        let (n, chunks) = self
            .expire(&FIVE_MINUTES_EXPIRY, five_cutoff, retention, &mut stats.more)
            .await?;
        stats.five_minutes_deleted = n;
        stats.delete_chunks += chunks;
        let (n, chunks) = self
            .expire(&ONE_HOUR_EXPIRY, hour_cutoff, retention, &mut stats.more)
            .await?;
        stats.one_hour_deleted = n;
        stats.delete_chunks += chunks;
        if stats != RollupStats::default() {
            tracing::debug!(?stats, "metrics rollup pass");
        }
        Ok(stats)
    }

    /// Recomputes up to `retention.max_buckets` dirty device buckets of one
    /// level, `retention.buckets_per_tx` per transaction.
    async fn roll_level(&self, level: &Level, retention: &Retention, more: &mut bool) -> Result<u64, StoreError> {
        let per_tx = retention.buckets_per_tx.max(1);
        let mut done = 0u64;
        loop {
            if done >= retention.max_buckets as u64 {
                *more = true;
                return Ok(done);
            }
            let claimed = on_pool!(self, RowScope::All, pool, _Db => {
                let mut tx = pool.begin().await?;
                let claimed: Vec<(String, i64)> = sqlx::query_as(level.claim)
                    .bind(i64::try_from(per_tx).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
                for (device, bucket) in &claimed {
                    sqlx::query(level.recompute)
                        .bind(device)
                        .bind(*bucket)
                        .bind(*bucket + level.width_s)
                        .execute(&mut *tx)
                        .await?;
                    if let Some((mark, width)) = level.mark_next {
                        sqlx::query(mark)
                            .bind(device)
                            .bind(bucket_of(*bucket, width))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                claimed.len()
            });
            done += claimed as u64;
            if claimed < per_tx {
                return Ok(done);
            }
        }
    }

    /// Deletes rows older than `cutoff` (seconds) and older than the oldest
    /// dirty bucket of the level the table feeds, in chunks, each its own
    /// transaction. Returns rows and chunks.
    async fn expire(
        &self,
        expiry: &Expiry,
        cutoff: i64,
        retention: &Retention,
        more: &mut bool,
    ) -> Result<(u64, u64), StoreError> {
        let chunk = retention.chunk_rows.max(1);
        on_pool!(self, RowScope::All, pool, _Db => {
            let mut cutoff = cutoff;
            if let Some(sql) = expiry.oldest_dirty {
                let (oldest,): (Option<i64>,) = sqlx::query_as(sql).fetch_one(pool).await?;
                cutoff = oldest.map_or(cutoff, |o| o.min(cutoff));
            }
            let (mut deleted, mut chunks, mut from_series) = (0u64, 0u64, i64::MIN);
            loop {
                if chunks >= retention.max_chunks as u64 {
                    *more = true;
                    return Ok((deleted, chunks));
                }
                let ids: Vec<(i64,)> = sqlx::query_as(expiry.delete)
                    .bind(from_series)
                    .bind(cutoff)
                    .bind(i64::try_from(chunk).unwrap_or(i64::MAX))
                    .fetch_all(pool)
                    .await?;
                if ids.is_empty() {
                    return Ok((deleted, chunks));
                }
                chunks += 1;
                deleted += ids.len() as u64;
                if ids.len() < chunk {
                    return Ok((deleted, chunks));
                }
                // Every series before the last one touched is done.
                from_series = ids.iter().map(|(id,)| *id).max().unwrap_or(from_series);
            }
        })
    }
}
