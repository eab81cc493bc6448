//! Reading series for charts.
use super::{FIVE_MINUTES_S, ONE_HOUR_S, Point, SeriesPoints};
use crate::row_scope::RowScope;
use crate::{Store, StoreError, TenantScope, on_pool};

/// Ranges up to this long read raw samples: 120 points at the usual 60 s poll
/// interval, 720 at 10 s, and always inside the raw retention (48 h) when
/// recent.
const RAW_UP_TO_MS: i64 = 2 * 3_600 * 1_000;
/// Ranges up to this long read 5-minute summaries (at most 864 points); longer
/// ones read hours (720 points for 30 days, 8,760 for a year, thinned to
/// `max_points`).
const FIVE_MINUTES_UP_TO_MS: i64 = 3 * 24 * 3_600 * 1_000;

/// The resolutions, finest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    Raw,
    FiveMinutes,
    OneHour,
}

impl Resolution {
    /// The finest resolution worth reading for a range of `span_ms`.
    pub(crate) fn for_span(span_ms: i64) -> Self {
        if span_ms <= RAW_UP_TO_MS {
            Self::Raw
        } else if span_ms <= FIVE_MINUTES_UP_TO_MS {
            Self::FiveMinutes
        } else {
            Self::OneHour
        }
    }

    fn coarser(self) -> Option<Self> {
        match self {
            Self::Raw => Some(Self::FiveMinutes),
            Self::FiveMinutes => Some(Self::OneHour),
            Self::OneHour => None,
        }
    }

    fn width_s(self) -> i64 {
        match self {
            Self::Raw => 1,
            Self::FiveMinutes => FIVE_MINUTES_S,
            Self::OneHour => ONE_HOUR_S,
        }
    }

    /// Rows (subject, ts, sum, min, max, samples) of one metric of one device
    /// of the tenant: `$1` tenant, `$2` device, `$3` metric, `$4` first ts,
    /// `$5` last ts, then `$6` subject for the `_subject` variant.
    fn sql(self, one_subject: bool) -> &'static str {
        macro_rules! rollup {
            ($table:literal, $subject:literal) => {
                concat!(
                    "SELECT s.subject, f.bucket_ts, CAST(f.sum_value AS DOUBLE PRECISION), ",
                    "CAST(f.min_value AS DOUBLE PRECISION), CAST(f.max_value AS DOUBLE PRECISION), f.samples ",
                    "FROM metric_series s JOIN ",
                    $table,
                    " f ON f.series_id = s.id ",
                    "WHERE s.tenant_id = $1 AND s.device_id = $2 AND s.metric = $3 ",
                    "AND f.bucket_ts >= $4 AND f.bucket_ts <= $5",
                    $subject,
                    " ORDER BY s.subject, f.bucket_ts"
                )
            };
        }
        macro_rules! raw {
            ($subject:literal) => {
                concat!(
                    "SELECT s.subject, r.ts, CAST(r.value AS DOUBLE PRECISION), CAST(r.value AS DOUBLE PRECISION), ",
                    "CAST(r.value AS DOUBLE PRECISION), CAST(1 AS BIGINT) ",
                    "FROM metric_series s JOIN metric_raw r ON r.series_id = s.id ",
                    "WHERE s.tenant_id = $1 AND s.device_id = $2 AND s.metric = $3 AND r.ts >= $4 AND r.ts <= $5",
                    $subject,
                    " ORDER BY s.subject, r.ts"
                )
            };
        }
        match (self, one_subject) {
            (Self::Raw, false) => raw!(""),
            (Self::Raw, true) => raw!(" AND s.subject = $6"),
            (Self::FiveMinutes, false) => rollup!("metric_5m", ""),
            (Self::FiveMinutes, true) => rollup!("metric_5m", " AND s.subject = $6"),
            (Self::OneHour, false) => rollup!("metric_1h", ""),
            (Self::OneHour, true) => rollup!("metric_1h", " AND s.subject = $6"),
        }
    }
}

type Row = (String, i64, f64, f64, f64, i64);

impl Store {
    /// The points of `metric` of the tenant's device between `from_ms` and
    /// `to_ms` (inclusive), one [`SeriesPoints`] per subject (only `subject`
    /// when given), ordered by subject. The resolution follows the range's
    /// length (raw up to 2 hours, 5-minute summaries up to 3 days, hours
    /// beyond), falling back to a coarser one when the finer holds nothing
    /// (it has expired); points are then merged into equal time steps so that
    /// a series has at most `max_points` of them. Another tenant's device
    /// reads as one without data.
    #[allow(clippy::too_many_arguments)]
    pub async fn metric_points(
        &self,
        scope: &TenantScope,
        device_id: &str,
        metric: &str,
        subject: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        max_points: usize,
    ) -> Result<Vec<SeriesPoints>, StoreError> {
        if to_ms < from_ms || max_points == 0 {
            return Ok(Vec::new());
        }
        let tenant = scope.tenant().to_string();
        let mut resolution = Resolution::for_span(to_ms - from_ms);
        let rows = loop {
            let width = resolution.width_s();
            // Buckets that overlap the range.
            let first = from_ms.div_euclid(1_000) - (width - 1);
            let last = to_ms.div_euclid(1_000);
            let rows: Vec<Row> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
                let q = sqlx::query_as(resolution.sql(subject.is_some()))
                    .bind(&tenant)
                    .bind(device_id)
                    .bind(metric)
                    .bind(first.max(0))
                    .bind(last);
                match subject {
                    Some(s) => q.bind(s).fetch_all(pool).await?,
                    None => q.fetch_all(pool).await?,
                }
            });
            match resolution.coarser() {
                Some(coarser) if rows.is_empty() => resolution = coarser,
                _ => break rows,
            }
        };
        Ok(thin(rows, resolution, from_ms, to_ms, max_points))
    }

    /// The subjects of `metric` of the tenant's device, sorted; empty for
    /// another tenant's device.
    pub async fn metric_subjects(
        &self,
        scope: &TenantScope,
        device_id: &str,
        metric: &str,
    ) -> Result<Vec<String>, StoreError> {
        let tenant = scope.tenant().to_string();
        let rows: Vec<(String,)> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query_as(
                "SELECT subject FROM metric_series WHERE device_id = $1 AND metric = $2 AND tenant_id = $3 \
                 ORDER BY subject",
            )
            .bind(device_id)
            .bind(metric)
            .bind(&tenant)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }
}

/// Groups rows (sorted by subject, then time) into per-subject series. A
/// subject with more than `max_points` rows is merged into equal time steps
/// (a multiple of the resolution) so that it has at most `max_points` (at
/// least 2) points, means weighted by sample counts.
fn thin(rows: Vec<Row>, resolution: Resolution, from_ms: i64, to_ms: i64, max_points: usize) -> Vec<SeriesPoints> {
    let width_ms = resolution.width_s() * 1_000;
    let max_points = max_points.max(2);
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let subject = first.0.clone();
        let mut group = vec![first];
        while let Some(row) = rows.next_if(|r| r.0 == subject) {
            group.push(row);
        }
        let step_ms = if group.len() <= max_points {
            width_ms
        } else {
            // floor(to / step) - floor(from / step) + 1 <= max_points.
            let divisor = i64::try_from(max_points - 1).unwrap_or(i64::MAX);
            let needed = ceil_div((to_ms - from_ms).max(1), divisor);
            ceil_div(needed, width_ms) * width_ms
        };
        let mut points: Vec<Point> = Vec::new();
        let mut weight: Vec<(f64, i64)> = Vec::new();
        for (_, ts, sum, min, max, samples) in group {
            let slot = (ts * 1_000).div_euclid(step_ms) * step_ms;
            match (points.last_mut(), weight.last_mut()) {
                (Some(p), Some((s, n))) if p.ts_ms == slot => {
                    p.min = p.min.min(min);
                    p.max = p.max.max(max);
                    *s += sum;
                    *n += samples;
                }
                _ => {
                    points.push(Point {
                        ts_ms: slot,
                        avg: 0.0,
                        min,
                        max,
                    });
                    weight.push((sum, samples));
                }
            }
        }
        for (p, (sum, n)) in points.iter_mut().zip(weight) {
            p.avg = if n > 0 { sum / n as f64 } else { sum };
        }
        let raw_as_is = resolution == Resolution::Raw && step_ms == width_ms;
        out.push(SeriesPoints {
            subject,
            step_ms: if raw_as_is { 0 } else { step_ms },
            points,
        });
    }
    out
}

/// `a / b` rounded up, for positive `a` and `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}
