//! The metrics store, on every engine of the store suite.
use outpost_certs::{AgentId, AgentIdentity};

use super::query::Resolution;
use super::{Conn, DevicePoll, FIVE_MINUTES_S, ONE_HOUR_S, Retention, RollupStats, Sample};
use crate::row_scope::RowScope;
use crate::tests::engines;
use crate::{AdminScope, AgentScope, Store, on_pool};

/// Noon, 2026-01-01 UTC, in seconds: a whole hour.
const T0: i64 = 1_767_268_800;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// An agent of a new site of `tenant`, and `n` devices of that site.
async fn devices(store: &Store, tenant: &str, n: usize) -> (AgentScope, Vec<String>) {
    let site = store
        .ensure_site(&AdminScope::verified(), tenant, "hq")
        .await
        .expect("site");
    let scope = AgentScope::verified(AgentIdentity {
        tenant: site.tenant,
        site: site.site,
        agent: AgentId::random(),
    });
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query(
                "INSERT INTO devices (id, tenant_id, site_id, address, api_port, username, password_sealed, \
                 created_at_ms, updated_at_ms, state_since_ms) VALUES ($1, $2, $3, $1, 8728, 'admin', $4, 0, 0, 0)",
            )
            .bind(&id)
            .bind(site.tenant.to_string())
            .bind(site.site.to_string())
            .bind(vec![0u8; 4])
            .execute(pool)
            .await
            .expect("device");
        });
        ids.push(id);
    }
    (scope, ids)
}

async fn rows(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let (n,): (i64,) = on_pool!(store, RowScope::All, pool, _Db => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await.expect("count")
    });
    n
}

/// Every summary row, in order, for comparing passes.
async fn summaries(store: &Store) -> Vec<(i64, i64, f64, f64, f64, i64)> {
    let mut all = Vec::new();
    for table in ["metric_5m", "metric_1h"] {
        let sql = format!(
            "SELECT series_id, bucket_ts, CAST(min_value AS DOUBLE PRECISION), CAST(max_value AS DOUBLE PRECISION), \
             CAST(sum_value AS DOUBLE PRECISION), samples FROM {table} ORDER BY series_id, bucket_ts"
        );
        let part: Vec<(i64, i64, f64, f64, f64, i64)> = on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("summaries")
        });
        all.extend(part);
    }
    all
}

fn cpu(value: f64) -> [Sample<'static>; 1] {
    [Sample {
        metric: "cpu_load",
        subject: "",
        value,
    }]
}

/// Records polls of one sample set each, a few hundred per transaction.
async fn record_many(store: &Store, scope: &AgentScope, polls: &[(&str, i64, Vec<Sample<'_>>)]) {
    for chunk in polls.chunks(500) {
        let batch: Vec<DevicePoll<'_>> = chunk
            .iter()
            .map(|(device_id, at_s, samples)| DevicePoll {
                device_id,
                at_ms: at_s * 1_000,
                samples,
            })
            .collect();
        store.record_samples(scope, &batch).await.expect("record");
    }
}

async fn record(store: &Store, scope: &AgentScope, device: &str, at_s: i64, samples: &[Sample<'_>]) -> usize {
    store
        .record_samples(
            scope,
            &[DevicePoll {
                device_id: device,
                at_ms: at_s * 1_000,
                samples,
            }],
        )
        .await
        .expect("record")
}

#[tokio::test]
async fn series_are_interned_once_and_race_free() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 1).await;
        let dev = devs[0].as_str();
        let samples = [
            Sample {
                metric: "if_rx_bps",
                subject: "ether1",
                value: 1.5,
            },
            Sample {
                metric: "if_rx_bps",
                subject: "ether2",
                value: 2.5,
            },
        ];
        // Eight writers meet an unknown series at once (on PostgreSQL, on
        // eight connections).
        let writers = (0..8).map(|i| {
            let store = store.clone();
            let dev = dev.to_owned();
            tokio::spawn(async move { record(&store, &scope, &dev, T0 + i, &samples).await })
        });
        let writers: Vec<_> = writers.collect();
        for w in writers {
            assert_eq!(w.await.expect("join"), 2, "{store:?}");
        }
        assert_eq!(rows(store, "metric_series").await, 2, "{store:?}");
        assert_eq!(rows(store, "metric_raw").await, 16, "{store:?}");
        let (distinct,): (i64,) = on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT COUNT(DISTINCT series_id) FROM metric_raw").fetch_one(pool).await.expect("ids")
        });
        assert_eq!(distinct, 2);

        // A collector that starts afresh (empty cache) finds the same series.
        store.series.lock().clear();
        assert_eq!(record(store, &scope, dev, T0 + 100, &samples).await, 2);
        assert_eq!(rows(store, "metric_series").await, 2);
        assert_eq!(
            store
                .metric_subjects(&scope.tenant_scope(), dev, "if_rx_bps")
                .await
                .expect("subjects"),
            vec!["ether1", "ether2"]
        );
    }
}

#[tokio::test]
async fn a_rolled_back_series_is_not_cached() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 1).await;
        let tenant = scope.tenant().to_string();
        store.series.lock().clear();
        on_pool!(store, RowScope::All, pool, _Db => {
            let mut tx = pool.begin().await.expect("begin");
            let mut writer = store.sample_writer();
            let n = writer
                .record_samples(Conn::from(&mut *tx), &tenant, &devs[0], T0 * 1_000, &cpu(5.0))
                .await
                .expect("record");
            // The same series again in the same transaction: found, not recreated.
            let again = writer
                .record_samples(Conn::from(&mut *tx), &tenant, &devs[0], (T0 + 1) * 1_000, &cpu(6.0))
                .await
                .expect("record");
            assert_eq!((n, again), (1, 1));
            tx.rollback().await.expect("rollback");
        });
        assert!(store.series.lock().is_empty(), "{store:?}: a rolled-back id was cached");
        assert_eq!(rows(store, "metric_series").await, 0);
        assert_eq!(record(store, &scope, &devs[0], T0, &cpu(5.0)).await, 1);
        assert_eq!(store.series.lock().len(), 1, "committed ids are cached");
    }
}

#[tokio::test]
async fn bad_values_and_a_second_sample_in_the_same_second_are_not_stored() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 1).await;
        assert_eq!(record(store, &scope, &devs[0], T0, &cpu(f64::NAN)).await, 0);
        assert_eq!(record(store, &scope, &devs[0], T0, &cpu(f64::INFINITY)).await, 0);
        assert_eq!(record(store, &scope, &devs[0], T0, &cpu(7.0)).await, 1);
        // Same second: the first value stays.
        assert_eq!(record(store, &scope, &devs[0], T0, &cpu(9.0)).await, 0);
        let pts = store
            .metric_points(
                &scope.tenant_scope(),
                &devs[0],
                "cpu_load",
                None,
                T0 * 1_000,
                T0 * 1_000,
                10,
            )
            .await
            .expect("points");
        assert_eq!(pts[0].points[0].avg, 7.0, "{store:?}");
    }
}

#[tokio::test]
async fn rollups_hold_min_max_avg_and_count() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 2).await;
        let (dev, other) = (devs[0].as_str(), devs[1].as_str());
        // Bucket T0: 10, 20, 30, 41.5; bucket T0+300: 5; T0+3600 (next hour): 100.
        for (dt, v) in [
            (0, 10.0),
            (60, 20.0),
            (120, 30.0),
            (299, 41.5),
            (300, 5.0),
            (3_600, 100.0),
        ] {
            record(store, &scope, dev, T0 + dt, &cpu(v)).await;
        }
        record(store, &scope, other, T0, &cpu(99.0)).await;
        let stats = store
            .roll_up((T0 + 3_700) * 1_000, &Retention::default())
            .await
            .expect("roll up");
        assert_eq!((stats.buckets_5m, stats.buckets_1h), (4, 3), "{store:?}");

        let tenant = scope.tenant_scope();
        // 12 hours: 5-minute summaries.
        let five = store
            .metric_points(
                &tenant,
                dev,
                "cpu_load",
                None,
                T0 * 1_000,
                T0 * 1_000 + 12 * HOUR_MS,
                1_000,
            )
            .await
            .expect("5m");
        assert_eq!(five.len(), 1);
        assert_eq!(five[0].step_ms, FIVE_MINUTES_S * 1_000);
        let p = &five[0].points;
        assert_eq!(p.len(), 3, "{store:?}: {p:?}");
        assert_eq!(
            (p[0].ts_ms, p[0].min, p[0].max, p[0].avg),
            (T0 * 1_000, 10.0, 41.5, 25.375)
        );
        assert_eq!(
            (p[1].ts_ms, p[1].min, p[1].max, p[1].avg),
            ((T0 + 300) * 1_000, 5.0, 5.0, 5.0)
        );
        assert_eq!(p[2].ts_ms, (T0 + 3_600) * 1_000);

        // 10 days: hours.
        let hours = store
            .metric_points(
                &tenant,
                dev,
                "cpu_load",
                None,
                T0 * 1_000 - DAY_MS,
                T0 * 1_000 + 9 * DAY_MS,
                1_000,
            )
            .await
            .expect("1h");
        assert_eq!(hours[0].step_ms, ONE_HOUR_S * 1_000);
        let h = &hours[0].points;
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].min, h[0].max, h[0].avg), (5.0, 41.5, 106.5 / 5.0));
        assert_eq!((h[1].min, h[1].max, h[1].avg), (100.0, 100.0, 100.0));
        let (count,): (i64,) = on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT samples FROM metric_1h WHERE bucket_ts = $1 AND series_id = \
                            (SELECT id FROM metric_series WHERE device_id = $2)")
                .bind(T0).bind(dev).fetch_one(pool).await.expect("count")
        });
        assert_eq!(count, 5);
    }
}

#[tokio::test]
async fn roll_up_is_idempotent() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 3).await;
        for i in 0..120 {
            for dev in &devs {
                let samples = [
                    Sample {
                        metric: "memory_used_bytes",
                        subject: "",
                        value: (1_000_000 + i * 4_096) as f64,
                    },
                    Sample {
                        metric: "if_tx_bps",
                        subject: "ether1",
                        value: i as f64 * 1.25,
                    },
                ];
                record(store, &scope, dev, T0 + i * 60, &samples).await;
            }
        }
        let now = (T0 + 120 * 60) * 1_000;
        let first = store.roll_up(now, &Retention::default()).await.expect("first");
        assert_eq!(first.buckets_5m, 3 * 24, "{store:?}");
        let before = summaries(store).await;
        assert_eq!(before.len(), 6 * (24 + 2));
        let again = store.roll_up(now, &Retention::default()).await.expect("again");
        assert_eq!(again, RollupStats::default());
        // Recomputing every bucket (all marked dirty again) changes nothing either.
        on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query("INSERT INTO metric_dirty_5m (device_id, bucket_ts) \
                         SELECT DISTINCT s.device_id, r.ts - r.ts % 300 FROM metric_raw r \
                         JOIN metric_series s ON s.id = r.series_id WHERE r.ts >= $1")
                .bind(T0).execute(pool).await.expect("mark");
        });
        let third = store.roll_up(now, &Retention::default()).await.expect("third");
        assert_eq!(third.buckets_5m, 3 * 24);
        assert_eq!(summaries(store).await, before, "{store:?}");
    }
}

#[tokio::test]
async fn a_late_sample_reaches_the_rollups_and_then_leaves_raw() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 1).await;
        let now_s = T0 + 10 * 24 * 3_600;
        record(store, &scope, &devs[0], now_s - 60, &cpu(1.0)).await;
        // Buffered offline for three days, then drained.
        let late = now_s - 72 * 3_600;
        record(store, &scope, &devs[0], late, &cpu(42.0)).await;
        let stats = store
            .roll_up(now_s * 1_000, &Retention::default())
            .await
            .expect("roll up");
        assert_eq!(
            (stats.buckets_5m, stats.buckets_1h, stats.raw_deleted),
            (2, 2, 1),
            "{store:?}"
        );
        assert_eq!(rows(store, "metric_raw").await, 1);
        let pts = store
            .metric_points(
                &scope.tenant_scope(),
                &devs[0],
                "cpu_load",
                None,
                (late - 3_600) * 1_000,
                (late + 3_600) * 1_000,
                100,
            )
            .await
            .expect("points");
        // Two hours would read raw, which has expired: the 5-minute summary answers.
        assert_eq!(pts[0].step_ms, FIVE_MINUTES_S * 1_000, "{store:?}");
        assert_eq!(pts[0].points.len(), 1);
        assert_eq!(pts[0].points[0].max, 42.0);
    }
}

#[tokio::test]
async fn raw_waits_for_its_rollup_before_expiring() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 1).await;
        let now_s = T0 + 10 * 24 * 3_600;
        record(store, &scope, &devs[0], now_s - 72 * 3_600, &cpu(42.0)).await;
        // A pass that may not recompute anything may not expire it either.
        let stingy = Retention {
            max_buckets: 0,
            ..Retention::default()
        };
        let stats = store.roll_up(now_s * 1_000, &stingy).await.expect("roll up");
        assert_eq!(
            (stats.buckets_5m, stats.raw_deleted, stats.more),
            (0, 0, true),
            "{store:?}"
        );
        assert_eq!(rows(store, "metric_raw").await, 1);
        let stats = store
            .roll_up(now_s * 1_000, &Retention::default())
            .await
            .expect("roll up");
        assert_eq!((stats.buckets_5m, stats.raw_deleted), (1, 1));
        assert_eq!(rows(store, "metric_5m").await, 1);
    }
}

#[tokio::test]
async fn retention_deletes_in_chunks() {
    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 2).await;
        // 3 days of one sample per minute on two devices: 8,640 raw rows.
        let start = T0;
        let mut polls = Vec::new();
        for m in 0..(3 * 24 * 60) {
            for dev in &devs {
                polls.push((dev.as_str(), start + m * 60, cpu((m % 100) as f64).to_vec()));
            }
        }
        record_many(store, &scope, &polls).await;
        let now = (start + 3 * 24 * 3_600) * 1_000;
        let small = Retention {
            chunk_rows: 500,
            max_chunks: 2,
            ..Retention::default()
        };
        // Roll everything up first (the pass stops at its chunk limit).
        let mut pass = store.roll_up(now, &small).await.expect("pass");
        assert!(pass.buckets_5m > 0);
        let expired = 2 * 24 * 60; // older than 48 hours, in whole hours
        let mut deleted = pass.raw_deleted;
        let mut passes = 1;
        while pass.more {
            assert!(pass.raw_deleted <= 1_000, "{store:?}: {pass:?}");
            assert!(pass.delete_chunks <= 6);
            pass = store.roll_up(now, &small).await.expect("pass");
            deleted += pass.raw_deleted;
            passes += 1;
        }
        assert_eq!(deleted, expired, "{store:?}");
        assert_eq!(passes, 3, "2,880 rows in chunks of 500, two chunks per pass");
        assert_eq!(rows(store, "metric_raw").await, 2 * 3 * 24 * 60 - expired as i64);
        let (oldest,): (i64,) = on_pool!(store, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT MIN(ts) FROM metric_raw").fetch_one(pool).await.expect("min")
        });
        assert_eq!(oldest, start + 24 * 3_600);
        // Summaries are kept (30 days, 1 year).
        assert_eq!(rows(store, "metric_5m").await, 2 * 3 * 24 * 12);
        assert_eq!(rows(store, "metric_1h").await, 2 * 3 * 24);
        // And go in turn.
        let later = now + 400 * DAY_MS;
        let mut gone = (0, 0);
        loop {
            let pass = store.roll_up(later, &small).await.expect("pass");
            gone.0 += pass.five_minutes_deleted;
            gone.1 += pass.one_hour_deleted;
            if !pass.more {
                break;
            }
        }
        assert_eq!(gone, (2 * 3 * 24 * 12, 2 * 3 * 24));
        assert_eq!(rows(store, "metric_raw").await, 0);
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_series() {
    let e = engines().await;
    for store in &e.stores {
        let (a, a_devs) = devices(store, "acme", 1).await;
        let (b, _) = devices(store, "globex", 1).await;
        record(store, &a, &a_devs[0], T0, &cpu(5.0)).await;
        store
            .roll_up((T0 + 60) * 1_000, &Retention::default())
            .await
            .expect("roll up");
        let mine = store
            .metric_points(
                &a.tenant_scope(),
                &a_devs[0],
                "cpu_load",
                None,
                0,
                (T0 + 60) * 1_000,
                100,
            )
            .await
            .expect("points");
        assert_eq!(mine.len(), 1);
        for from in [T0 * 1_000, T0 * 1_000 - DAY_MS, 0] {
            let theirs = store
                .metric_points(
                    &b.tenant_scope(),
                    &a_devs[0],
                    "cpu_load",
                    None,
                    from,
                    (T0 + 60) * 1_000,
                    100,
                )
                .await
                .expect("points");
            assert!(theirs.is_empty(), "{store:?}: {theirs:?}");
        }
        assert!(
            store
                .metric_subjects(&b.tenant_scope(), &a_devs[0], "cpu_load")
                .await
                .expect("subjects")
                .is_empty()
        );
        // Writing to another tenant's device is refused, whether its series
        // exists (and is cached) or not.
        for metric in ["cpu_load", "hdd_used_bytes"] {
            let s = [Sample {
                metric,
                subject: "",
                value: 1.0,
            }];
            let poll = [DevicePoll {
                device_id: &a_devs[0],
                at_ms: (T0 + 1) * 1_000,
                samples: &s,
            }];
            let refused = store.record_samples(&b, &poll).await;
            assert!(
                matches!(refused, Err(crate::StoreError::NotFound(_))),
                "{store:?}: {refused:?}"
            );
        }
        assert_eq!(rows(store, "metric_raw").await, 1);
        assert_eq!(rows(store, "metric_series").await, 1);
    }
}

#[tokio::test]
async fn the_resolution_follows_the_range() {
    assert_eq!(Resolution::for_span(HOUR_MS), Resolution::Raw);
    assert_eq!(Resolution::for_span(2 * HOUR_MS), Resolution::Raw);
    assert_eq!(Resolution::for_span(2 * HOUR_MS + 1), Resolution::FiveMinutes);
    assert_eq!(Resolution::for_span(3 * DAY_MS), Resolution::FiveMinutes);
    assert_eq!(Resolution::for_span(3 * DAY_MS + 1), Resolution::OneHour);

    let e = engines().await;
    for store in &e.stores {
        let (scope, devs) = devices(store, "acme", 1).await;
        // One sample every 10 s for 4 hours, on two interfaces.
        let mut polls = Vec::new();
        for i in 0..(4 * 360) {
            let samples = vec![
                Sample {
                    metric: "if_rx_bps",
                    subject: "ether1",
                    value: i as f64,
                },
                Sample {
                    metric: "if_rx_bps",
                    subject: "ether2",
                    value: 2.0 * i as f64,
                },
            ];
            polls.push((devs[0].as_str(), T0 + i * 10, samples));
        }
        record_many(store, &scope, &polls).await;
        let now = (T0 + 4 * 3_600) * 1_000;
        store.roll_up(now, &Retention::default()).await.expect("roll up");
        let tenant = scope.tenant_scope();
        let get = |from: i64, to: i64, subject: Option<&'static str>, max: usize| {
            let dev = devs[0].clone();
            async move {
                store
                    .metric_points(&tenant, &dev, "if_rx_bps", subject, from, to, max)
                    .await
                    .expect("points")
            }
        };
        // 1 hour: raw, 360 points per subject.
        let raw = get(T0 * 1_000, T0 * 1_000 + HOUR_MS - 1, None, 1_000).await;
        assert_eq!(raw.len(), 2, "{store:?}");
        assert_eq!(
            (raw[0].subject.as_str(), raw[0].step_ms, raw[0].points.len()),
            ("ether1", 0, 360)
        );
        assert_eq!(raw[1].points[10].avg, 20.0);
        // The same hour in at most 61 points: one per minute, mean of six.
        let thin = get(T0 * 1_000, T0 * 1_000 + HOUR_MS - 1, Some("ether1"), 61).await;
        assert_eq!(thin.len(), 1);
        assert_eq!((thin[0].step_ms, thin[0].points.len()), (60_000, 60));
        let p = thin[0].points[1];
        assert_eq!((p.ts_ms, p.min, p.max, p.avg), ((T0 + 60) * 1_000, 6.0, 11.0, 8.5));
        // 4 hours: 5-minute summaries.
        let five = get(T0 * 1_000, now - 1, Some("ether2"), 1_000).await;
        assert_eq!((five[0].step_ms, five[0].points.len()), (300_000, 48), "{store:?}");
        // A week: hours.
        let week = get(now - 7 * DAY_MS, now, None, 1_000).await;
        assert_eq!((week[0].step_ms, week[0].points.len()), (3_600_000, 4));
        let h = week[0].points[0];
        assert_eq!((h.min, h.max, h.avg), (0.0, 359.0, 179.5));
    }
}
