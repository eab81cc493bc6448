//! Writing samples: series interning, raw rows, dirty marks.
use std::collections::HashMap;

use super::{Conn, FIVE_MINUTES_S, Sample, SeriesCache, bucket_of, on_conn};
use crate::row_scope::RowScope;
use crate::{AgentScope, Store, StoreError, now_ms, on_pool};

/// Rows per INSERT statement: 3 parameters each, below both engines' limits.
const ROWS_PER_STATEMENT: usize = 2_000;

/// The samples of one device poll.
#[derive(Clone, Copy, Debug)]
pub struct DevicePoll<'a> {
    /// The device (`devices.id`), which must belong to the writer's tenant.
    pub device_id: &'a str,
    /// When the device was polled, Unix ms; stored with second precision.
    pub at_ms: i64,
    /// The values.
    pub samples: &'a [Sample<'a>],
}

/// Writes samples inside a transaction its caller owns, remembering the series
/// that transaction creates. Call [`SampleWriter::committed`] after the
/// commit to publish them to the cache; dropping the writer instead (the
/// transaction failed) forgets them, and the next writer finds them in the
/// database if they were committed after all.
pub(crate) struct SampleWriter<'s> {
    cache: &'s SeriesCache,
    /// Series created by this transaction, by cache key.
    created: HashMap<Box<str>, i64>,
    key: String,
}

impl Store {
    /// A writer for one transaction.
    pub(crate) fn sample_writer(&self) -> SampleWriter<'_> {
        SampleWriter {
            cache: &self.series,
            created: HashMap::new(),
            key: String::new(),
        }
    }

    /// Stores device polls for the agent's tenant in one transaction. Returns
    /// the number of samples newly stored (a sample whose series already has
    /// one in the same second is ignored, as are non-finite values).
    ///
    /// Fails with [`StoreError::NotFound`] when a device is not one of the
    /// tenant's, and then stores nothing.
    pub async fn record_samples(&self, scope: &AgentScope, polls: &[DevicePoll<'_>]) -> Result<usize, StoreError> {
        let tenant = scope.tenant().to_string();
        on_pool!(self, RowScope::agent(scope), pool, _Db => {
            let mut tx = pool.begin().await?;
            let mut writer = self.sample_writer();
            let mut stored = 0;
            for poll in polls {
                stored += writer
                    .record_samples(Conn::from(&mut *tx), &tenant, poll.device_id, poll.at_ms, poll.samples)
                    .await?;
            }
            tx.commit().await?;
            writer.committed();
            Ok(stored)
        })
    }
}

impl SampleWriter<'_> {
    /// Stores one poll's samples of `device_id` (which must belong to
    /// `tenant_id`) at `at_ms`, and marks its 5-minute bucket dirty. Runs on
    /// the caller's transaction: the device-poll ingest calls it in the
    /// transaction that advances the agent's acknowledged sequence number.
    pub(crate) async fn record_samples(
        &mut self,
        conn: Conn<'_>,
        tenant_id: &str,
        device_id: &str,
        at_ms: i64,
        samples: &[Sample<'_>],
    ) -> Result<usize, StoreError> {
        let ts = at_ms.div_euclid(1_000);
        let usable = |s: &&Sample<'_>| {
            s.value.is_finite() && !s.metric.is_empty() && !s.metric.contains('\0') && !s.subject.contains('\0')
        };
        // Ids from the cache first, under one short lock (never held across an await).
        let mut rows: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
        let mut misses: Vec<&Sample<'_>> = Vec::new();
        {
            let ids = self.cache.lock();
            for s in samples.iter().filter(usable) {
                SeriesCache::key_into(&mut self.key, tenant_id, device_id, s.metric, s.subject);
                match ids
                    .get(self.key.as_str())
                    .or_else(|| self.created.get(self.key.as_str()))
                {
                    Some(&id) => rows.push((id, s.value)),
                    None => misses.push(s),
                }
            }
        }
        let now = now_ms();
        on_conn!(conn, c, Db => {
            let mut committed: Vec<(Box<str>, i64)> = Vec::new();
            for s in misses {
                SeriesCache::key_into(&mut self.key, tenant_id, device_id, s.metric, s.subject);
                if let Some(&id) = self.created.get(self.key.as_str()) {
                    rows.push((id, s.value));
                    continue;
                }
                // Created only for a device of this tenant; a concurrent
                // writer's row wins the conflict and is read back below.
                let inserted = sqlx::query(
                    "INSERT INTO metric_series (tenant_id, device_id, metric, subject, created_at_ms) \
                     SELECT tenant_id, id, $3, $4, $5 FROM devices WHERE id = $1 AND tenant_id = $2 \
                     ON CONFLICT (device_id, metric, subject) DO NOTHING",
                )
                .bind(device_id)
                .bind(tenant_id)
                .bind(s.metric)
                .bind(s.subject)
                .bind(now)
                .execute(&mut *c)
                .await?
                .rows_affected();
                let id: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM metric_series WHERE device_id = $1 AND metric = $2 AND subject = $3 AND tenant_id = $4",
                )
                .bind(device_id)
                .bind(s.metric)
                .bind(s.subject)
                .bind(tenant_id)
                .fetch_optional(&mut *c)
                .await?;
                let Some((id,)) = id else {
                    return Err(StoreError::NotFound(format!("device {device_id}")));
                };
                let key: Box<str> = self.key.as_str().into();
                if inserted == 0 {
                    // Not ours, so committed by another transaction.
                    committed.push((key, id));
                } else {
                    self.created.insert(key, id);
                }
                rows.push((id, s.value));
            }
            self.cache.insert_committed(committed);

            let mut stored = 0u64;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<Db>::new("INSERT INTO metric_raw (series_id, ts, value) ");
                qb.push_values(chunk, |mut b, (id, value)| {
                    b.push_bind(*id).push_bind(ts).push_bind(*value);
                });
                qb.push(" ON CONFLICT (series_id, ts) DO NOTHING");
                stored += qb.build().execute(&mut *c).await?.rows_affected();
            }
            if stored > 0 {
                // An upsert that writes (rather than DO NOTHING) so that on
                // PostgreSQL it locks the mark until this transaction ends: a
                // rollup pass claiming it waits, then sees these samples.
                sqlx::query(
                    "INSERT INTO metric_dirty_5m (device_id, bucket_ts) VALUES ($1, $2) \
                     ON CONFLICT (device_id, bucket_ts) DO UPDATE SET bucket_ts = excluded.bucket_ts",
                )
                .bind(device_id)
                .bind(bucket_of(ts, FIVE_MINUTES_S))
                .execute(&mut *c)
                .await?;
            }
            Ok(usize::try_from(stored).unwrap_or(usize::MAX))
        })
    }

    /// The transaction committed: its new series ids may now be cached.
    pub(crate) fn committed(self) {
        self.cache.insert_committed(self.created);
    }
}
