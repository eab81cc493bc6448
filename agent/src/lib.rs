//! The Outpost site agent.
//!
//! Tasks, all stopped by one cancellation token:
//! * **host facts** ([`host_facts`]): appends this host's facts to the outbox on
//!   connect and every `host_facts_interval_secs`;
//! * **uplink** ([`uplink`]): streams the outbox to the collector;
//! * **renewal** ([`renew`]): keeps the certificate fresh.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod config;
pub mod credentials;
pub mod dial;
pub mod enroll;
pub mod host_facts;
pub mod outbox;
pub mod renew;
pub mod signals;
pub mod uplink;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use outpost_proto::agent_v1::{MetricSample, observation};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::credentials::Credentials;
use crate::outbox::Outbox;
use crate::outbox::blocking;
use crate::signals::Signals;
use crate::uplink::Uplink;

/// This agent's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Outbox file name inside the data directory.
pub const OUTBOX_FILE: &str = "outbox.redb";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Loads everything `run` needs, reporting the first problem.
pub fn check(data_dir: &Path) -> anyhow::Result<(AgentConfig, Credentials)> {
    let config = AgentConfig::load(data_dir)?;
    let credentials = Credentials::load(data_dir)?;
    credentials.client_config()?;
    Ok((config, credentials))
}

/// Opens the outbox of `data_dir`.
pub fn open_outbox(data_dir: &Path, max_records: u64) -> anyhow::Result<Outbox> {
    Ok(Outbox::open(&data_dir.join(OUTBOX_FILE), max_records)?)
}

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(data_dir: &Path, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (config, credentials) = check(data_dir)?;
    let addr = config.collector_addr().map_err(anyhow::Error::msg)?;
    let outbox = Arc::new(open_outbox(data_dir, config.outbox_max_records)?);
    let signals = Arc::new(Signals::default());
    signals.set_cert_not_after(credentials.not_after);
    let (tls_tx, tls_rx) = watch::channel(credentials.client_config()?);
    tracing::info!(
        agent = %credentials.identity.agent,
        tenant = %credentials.identity.tenant,
        site = %credentials.identity.site,
        collector = %addr,
        version = VERSION,
        "agent starting"
    );

    let facts = tokio::spawn(host_facts_task(
        outbox.clone(),
        signals.clone(),
        Duration::from_secs(config.host_facts_interval_secs),
        shutdown.clone(),
    ));
    let uplink = Uplink {
        addr: addr.clone(),
        tls: tls_rx,
        outbox: outbox.clone(),
        signals: signals.clone(),
        batch_max: config.batch_max_observations,
        max_in_flight: config.max_in_flight_batches,
        max_backoff: Duration::from_secs(config.max_backoff_secs),
        instance_id: String::new(),
        data_dir: data_dir.to_owned(),
    };
    let uplink = tokio::spawn(uplink.run(shutdown.clone()));
    let renewer = renew::Renewer {
        data_dir: data_dir.to_owned(),
        addr,
        credentials,
        tls: tls_tx,
        signals,
    };
    let renewer = tokio::spawn(renewer.run(shutdown.clone()));

    shutdown.cancelled().await;
    let _ = tokio::join!(facts, uplink, renewer);
    tracing::info!("agent stopped");
    Ok(())
}

async fn host_facts_task(outbox: Arc<Outbox>, signals: Arc<Signals>, every: Duration, shutdown: CancellationToken) {
    // The first report is triggered by the uplink on connect, not by the timer.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            () = signals.host_facts_now.notified() => {}
        }
        let result = blocking(&outbox, |o| {
            let facts = host_facts::collect(o.depth()?);
            o.append(vec![(now_ms(), observation::Body::HostFacts(facts))])
        })
        .await;
        match result {
            Ok(_) => signals.new_data.notify_one(),
            Err(error) => tracing::error!(%error, "recording host facts failed"),
        }
    }
}

/// Appends `count` synthetic metric samples (`synthetic.sample`) to the outbox of
/// `data_dir`, for load tests and benchmarks. The agent must not be running.
pub fn synthesize(data_dir: &Path, count: u64) -> anyhow::Result<()> {
    let config = AgentConfig::load(data_dir)?;
    let outbox = open_outbox(data_dir, config.outbox_max_records.max(count + 1_000))
        .context("opening the outbox (is the agent running?)")?;
    let mut left = count;
    let mut i = 0u64;
    while left > 0 {
        let n = left.min(10_000);
        let now = now_ms();
        let items = (0..n)
            .map(|k| {
                let v = (i + k) as f64;
                (
                    now,
                    observation::Body::Metric(MetricSample {
                        name: "synthetic.sample".into(),
                        value: v,
                        subject: String::new(),
                    }),
                )
            })
            .collect();
        outbox.append(items)?;
        i += n;
        left -= n;
    }
    Ok(())
}
