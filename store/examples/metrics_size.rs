//! Bytes per stored metric sample, and the insert rate.
//!
//! Stores one day of samples at a 60 s poll interval for 1,000 series (50
//! devices of 20 series each: integer percents, bytes, counts and dBm, and
//! fractional rates and voltages), one transaction per minute holding every
//! device's poll, then reports the size of each table and index from SQLite's
//! `dbstat` after a WAL checkpoint.
//!
//! ```sh
//! cargo run --release -p outpost-store --example metrics_size
//! # also on PostgreSQL (pg_total_relation_size), in a new database:
//! OUTPOST_BENCH_DATABASE_URL=postgres://... cargo run --release -p outpost-store --example metrics_size
//! ```
//! `DEVICES` and `MINUTES` change the shape (defaults 50 and 1440).
use std::time::{Duration, Instant};

use outpost_certs::AgentCertificate;
use outpost_certs::ca::{CertificateAuthority, Validity};
use outpost_certs::keys::generate_key_and_csr;
use outpost_certs::token::EnrollmentToken;
use outpost_store::metrics::{DevicePoll, Retention, Sample};
use outpost_store::tokens::EnrollAsk;
use outpost_store::{AgentScope, Store};
use sqlx::Connection as _;

type BoxError = Box<dyn std::error::Error>;

/// A fixed-seed generator, so every run stores the same values.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const INTERFACES: [&str; 4] = ["ether1", "ether2", "sfp1", "wlan1"];
const CLIENTS: [&str; 5] = [
    "AA:BB:CC:00:00:01",
    "AA:BB:CC:00:00:02",
    "AA:BB:CC:00:00:03",
    "AA:BB:CC:00:00:04",
    "AA:BB:CC:00:00:05",
];

/// One device's poll at `minute`: 20 samples.
fn poll(rng: &mut Lcg, device: usize, minute: usize) -> Vec<Sample<'static>> {
    let d = device as f64;
    let m = minute as f64;
    let mut s = vec![
        Sample {
            metric: "cpu_load",
            subject: "",
            value: (rng.next() * 40.0).round(),
        },
        Sample {
            metric: "memory_used_bytes",
            subject: "",
            value: (120_000_000.0 + d * 1_000_000.0 + rng.next() * 8_000_000.0).round(),
        },
        Sample {
            metric: "hdd_used_bytes",
            subject: "",
            value: (60_000_000.0 + m * 16.0).round(),
        },
        Sample {
            metric: "wireless_clients",
            subject: "",
            value: (rng.next() * 30.0).round(),
        },
        Sample {
            metric: "poll_duration_ms",
            subject: "",
            value: (20.0 + rng.next() * 200.0).round(),
        },
        Sample {
            metric: "health",
            subject: "cpu-temperature",
            value: (40.0 + rng.next() * 15.0).round(),
        },
        Sample {
            metric: "health",
            subject: "voltage",
            value: (240.0 + rng.next() * 5.0).round() / 10.0,
        },
    ];
    for i in INTERFACES {
        // Rates from counter deltas over the poll interval: fractional.
        s.push(Sample {
            metric: "if_rx_bps",
            subject: i,
            value: rng.next() * 50_000_000.0 / 60.0 * 8.0,
        });
        s.push(Sample {
            metric: "if_tx_bps",
            subject: i,
            value: rng.next() * 10_000_000.0 / 60.0 * 8.0,
        });
    }
    for c in CLIENTS {
        s.push(Sample {
            metric: "wireless_signal_dbm",
            subject: c,
            value: (-45.0 - rng.next() * 35.0).round(),
        });
    }
    s
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// An enrolled agent of a new site of tenant `bench`.
async fn agent(store: &Store, admin: &outpost_store::AdminScope) -> Result<(AgentScope, String, String), BoxError> {
    let site = store.ensure_site(admin, "bench", "hq").await?;
    let ca = CertificateAuthority::generate("bench")?;
    let token = EnrollmentToken::generate(ca.fingerprint());
    store
        .create_token(
            admin,
            &site,
            &token,
            Duration::from_secs(60),
            &outpost_store::audit::Actor::local_operator(),
        )
        .await?;
    let ask = EnrollAsk {
        hostname: "bench",
        version: "0",
        csr_key_sha256: "bench".into(),
        previous: None,
    };
    let enrolled = store
        .enroll(&token, &ask, None, |id| {
            let req = generate_key_and_csr("bench").map_err(|e| e.to_string())?;
            ca.sign_agent_csr(&req.csr_der, id, Validity::starting_now(Duration::from_secs(3_600)))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?;
    let cert = AgentCertificate::parse(&enrolled.certificate.der)?;
    Ok((
        AgentScope::from_certificate(&cert),
        site.tenant.to_string(),
        site.site.to_string(),
    ))
}

const INSERT_DEVICE: &str = "INSERT INTO devices (id, tenant_id, site_id, address, api_port, username, \
                             password_sealed, created_at_ms, updated_at_ms, state_since_ms) \
                             VALUES ($1, $2, $3, $1, 8728, 'admin', $4, 0, 0, 0)";

/// Stores the day; returns (samples, seconds).
async fn fill(store: &Store, scope: &AgentScope, devices: &[String], minutes: usize) -> Result<(usize, f64), BoxError> {
    let mut rng = Lcg(42);
    let start_s: i64 = 1_767_225_600; // 2026-01-01T00:00Z
    let mut total = 0;
    let t = Instant::now();
    for minute in 0..minutes {
        let samples: Vec<Vec<Sample<'static>>> = (0..devices.len()).map(|d| poll(&mut rng, d, minute)).collect();
        let at_ms = (start_s + minute as i64 * 60) * 1_000;
        let polls: Vec<DevicePoll<'_>> = devices
            .iter()
            .zip(&samples)
            .map(|(device_id, samples)| DevicePoll {
                device_id,
                at_ms,
                samples,
            })
            .collect();
        total += store.record_samples(scope, &polls).await?;
    }
    Ok((total, t.elapsed().as_secs_f64()))
}

async fn roll_all(store: &Store, minutes: usize) -> Result<f64, BoxError> {
    let start_s: i64 = 1_767_225_600;
    let now_ms = (start_s + minutes as i64 * 60) * 1_000;
    let t = Instant::now();
    while store.roll_up(now_ms, &Retention::default()).await?.more {}
    Ok(t.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let n_devices = env_or("DEVICES", 50);
    let minutes = env_or("MINUTES", 1_440);
    let devices: Vec<String> = (0..n_devices).map(|_| uuid::Uuid::new_v4().to_string()).collect();

    let dir = tempfile::tempdir()?;
    let (store, admin) = Store::open_as_operator(dir.path(), None).await?;
    let (scope, tenant, site) = agent(&store, &admin).await?;
    let db = dir.path().join(outpost_store::SQLITE_FILE);
    let mut side = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    for id in &devices {
        sqlx::query(INSERT_DEVICE)
            .bind(id)
            .bind(&tenant)
            .bind(&site)
            .bind(vec![0u8; 4])
            .execute(&mut side)
            .await?;
    }
    let (samples, secs) = fill(&store, &scope, &devices, minutes).await?;
    println!(
        "sqlite: {} series x {minutes} samples: {samples} samples stored in {secs:.2} s = {:.0} samples/s \
         (one transaction per minute of {} samples, synchronous=FULL)",
        n_devices * 20,
        samples as f64 / secs,
        n_devices * 20
    );
    report_sqlite(&mut side, samples, "before rollup").await?;
    let rolled = roll_all(&store, minutes).await?;
    println!("sqlite: rollup of the day: {rolled:.2} s");
    report_sqlite(&mut side, samples, "after rollup").await?;
    store.close().await;

    if let Ok(url) = std::env::var("OUTPOST_BENCH_DATABASE_URL") {
        postgres(&url, &devices, minutes).await?;
    }
    Ok(())
}

async fn report_sqlite(side: &mut sqlx::SqliteConnection, samples: usize, when: &str) -> Result<(), BoxError> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *side)
        .await?;
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT name, SUM(pgsize), SUM(payload), SUM(ncell) FROM dbstat \
         WHERE name LIKE 'metric%' OR name LIKE 'sqlite_autoindex_metric%' GROUP BY name ORDER BY name",
    )
    .fetch_all(&mut *side)
    .await?;
    let (pages, page_size): (i64, i64) =
        sqlx::query_as("SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size)")
            .fetch_one(&mut *side)
            .await?;
    let per = |bytes: i64| bytes as f64 / samples as f64;
    println!("sqlite ({when}): table/index, bytes on pages, payload bytes, cells, bytes per sample");
    let mut raw = 0;
    let mut ingest = 0;
    for (name, size, payload, cells) in &rows {
        println!("  {name:<28} {size:>12} {payload:>12} {cells:>10} {:>8.2}", per(*size));
        if name == "metric_raw" {
            raw = *size;
        }
        if ["metric_raw", "metric_series", "metric_series_key", "metric_dirty_5m"].contains(&name.as_str()) {
            ingest += size;
        }
    }
    println!(
        "  raw only: {:.2} B/sample; raw + series + series index + dirty marks: {:.2} B/sample; \
         whole file: {} pages x {page_size} = {:.2} B/sample",
        per(raw),
        per(ingest),
        pages,
        per(pages * page_size)
    );
    Ok(())
}

async fn postgres(url: &str, devices: &[String], minutes: usize) -> Result<(), BoxError> {
    let name = format!("outpost_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin_conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin_conn)
        .await?;
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .ok_or("database URL without a path")?;
    let db_url = format!("{base}/{name}");
    let (store, admin) = Store::open_as_operator(std::path::Path::new("."), Some(&db_url)).await?;
    let (scope, tenant, site) = agent(&store, &admin).await?;
    let mut side = sqlx::PgConnection::connect(&db_url).await?;
    for id in devices {
        sqlx::query(INSERT_DEVICE)
            .bind(id)
            .bind(&tenant)
            .bind(&site)
            .bind(vec![0u8; 4])
            .execute(&mut side)
            .await?;
    }
    let (samples, secs) = fill(&store, &scope, devices, minutes).await?;
    println!(
        "postgres: {samples} samples stored in {secs:.2} s = {:.0} samples/s",
        samples as f64 / secs
    );
    sqlx::query("VACUUM ANALYZE metric_raw").execute(&mut side).await?;
    for table in ["metric_raw", "metric_series", "metric_dirty_5m"] {
        let (total,): (i64,) = sqlx::query_as("SELECT pg_total_relation_size($1::regclass)")
            .bind(table)
            .fetch_one(&mut side)
            .await?;
        println!(
            "  postgres {table:<16} {total:>12} bytes (with indexes) = {:.2} B/sample",
            total as f64 / samples as f64
        );
    }
    store.close().await;
    side.close().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut admin_conn)
        .await?;
    Ok(())
}
