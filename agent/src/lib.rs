//! The Outpost site agent.
//!
//! Tasks, all stopped by one cancellation token (cancelled on shutdown, or
//! when the outbox gives up after I/O errors, which makes [`run`] fail):
//! * **host facts** ([`host_facts`]): appends this host's facts to the outbox on
//!   connect and every `host_facts_interval_secs`;
//! * **synthetic load** (only when `synthetic_metrics_per_sec` > 0): appends
//!   metric samples at that rate, for load tests and benchmarks;
//! * **uplink** ([`uplink`]): streams the outbox to the collector;
//! * **renewal** ([`renew`]): keeps the certificate fresh.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod config;
pub mod credentials;
pub mod dial;
pub mod discovery;
pub mod enroll;
pub mod host_facts;
pub mod outbox;
pub mod renew;
pub mod routeros;
pub mod signals;
pub mod tunnel;
pub mod uplink;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use outpost_certs::Fingerprint;
use outpost_proto::agent_v1::{MetricSample, observation};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::credentials::Credentials;
use crate::outbox::{Outbox, OutboxOptions, OutboxOwner, OwnerMatch, blocking};
use crate::signals::Signals;
use crate::uplink::Uplink;

/// This agent's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Outbox file name inside the data directory.
pub const OUTBOX_FILE: &str = outbox::FILE;

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

/// Opens the outbox of `data_dir`, whoever it belongs to.
pub fn open_outbox(data_dir: &Path, options: &OutboxOptions) -> anyhow::Result<Outbox> {
    Ok(Outbox::open_with(&data_dir.join(OUTBOX_FILE), options)?)
}

/// The outbox owner the credentials stand for.
pub fn outbox_owner(credentials: &Credentials) -> OutboxOwner {
    OutboxOwner {
        tenant: credentials.identity.tenant,
        site: credentials.identity.site,
        agent: credentials.identity.agent,
        ca: Fingerprint::of_der(&credentials.ca),
    }
}

/// Opens the outbox of `data_dir` for the agent `credentials` name: an outbox
/// without an owner is claimed; one of the same tenant, site and CA under an
/// earlier agent id (re-enrolled) is kept and claimed; any other is set aside,
/// never sent, and a fresh one opened. The agent must not be running.
pub fn open_outbox_for(data_dir: &Path, credentials: &Credentials, options: &OutboxOptions) -> anyhow::Result<Outbox> {
    open_outbox_owned_by(data_dir, &outbox_owner(credentials), options)
}

/// [`open_outbox_for`] with the owner already worked out.
fn open_outbox_owned_by(data_dir: &Path, wanted: &OutboxOwner, options: &OutboxOptions) -> anyhow::Result<Outbox> {
    let outbox = open_outbox(data_dir, options)?;
    match OwnerMatch::of(outbox.owner()?.as_ref(), wanted) {
        OwnerMatch::Same => {}
        OwnerMatch::Unowned => {
            outbox.set_owner(wanted)?;
            tracing::info!(owner = %wanted, "outbox owner recorded");
        }
        OwnerMatch::Reenrolled { previous } => {
            outbox.set_owner(wanted)?;
            tracing::warn!(
                previous_agent = %previous.agent,
                agent = %wanted.agent,
                "the outbox was written under an earlier enrollment of this site; its records are kept and sent as this agent"
            );
        }
        OwnerMatch::Foreign { previous } => {
            // Closed first: setting aside refuses an outbox that is open.
            drop(outbox);
            let why = format!("its records belong to {previous}, but this agent is {wanted}");
            let moved = outbox::set_aside(data_dir, &why).context("setting aside an outbox of another owner")?;
            tracing::error!(
                stored_owner = %previous,
                owner = %wanted,
                set_aside = ?moved,
                "the outbox belongs to another tenant, site or collector; it was set aside and will not be sent"
            );
            let fresh = open_outbox(data_dir, options)?;
            fresh.set_owner(wanted)?;
            return Ok(fresh);
        }
    }
    Ok(outbox)
}

/// Runs the agent until `shutdown` is cancelled. Fails when the outbox gives
/// up after I/O errors, so that the process exits non-zero and its service
/// manager restarts it.
pub async fn run(data_dir: &Path, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (config, credentials) = check(data_dir)?;
    let addr = config.collector_addr().map_err(anyhow::Error::msg)?;
    let outbox = {
        // Blocking (disk I/O, and pauses if the outbox needs reopening).
        let (dir, owner, options) = (data_dir.to_owned(), outbox_owner(&credentials), config.outbox_options());
        let open = tokio::task::spawn_blocking(move || open_outbox_owned_by(&dir, &owner, &options));
        Arc::new(open.await.context("opening the outbox")??)
    };
    let signals = Arc::new(Signals::default());
    signals.set_cert_not_after(credentials.not_after);
    // Stops every task: on shutdown, or when the outbox gives up.
    let stop = shutdown.child_token();
    let (tls_tx, tls_rx) = watch::channel(credentials.client_config()?);
    tracing::info!(
        agent = %credentials.identity.agent,
        tenant = %credentials.identity.tenant,
        site = %credentials.identity.site,
        collector = %addr,
        version = VERSION,
        outbox_instance = %outbox.instance_id(),
        "agent starting"
    );

    let facts = tokio::spawn(host_facts_task(
        outbox.clone(),
        signals.clone(),
        Duration::from_secs(config.host_facts_interval_secs),
        stop.clone(),
    ));
    let synthetic = (config.synthetic_metrics_per_sec > 0).then(|| {
        tokio::spawn(synthetic_task(
            outbox.clone(),
            signals.clone(),
            config.synthetic_metrics_per_sec,
            stop.clone(),
        ))
    });
    let (sink, sink_task) = routeros::sink::start(outbox.clone(), signals.clone(), stop.clone());
    let (live_tx, live_rx) = tokio::sync::mpsc::channel(routeros::live::QUEUE);
    let (fleet_tx, fleet_rx) = tokio::sync::mpsc::channel(64);
    let fleet = routeros::fleet::Fleet::new(sink.clone(), live_tx, config.routeros_concurrency, stop.clone());
    let fleet = tokio::spawn(fleet.run(fleet_rx));
    let (progress_tx, progress_rx) = tokio::sync::mpsc::channel(64);
    let (discovery_tx, discovery_rx) = tokio::sync::mpsc::channel(16);
    let discovery = discovery::service::Discovery {
        sink: sink.clone(),
        outbox: outbox.clone(),
        signals: signals.clone(),
        progress: progress_tx,
        settings: config.discovery_settings(),
        data_dir: data_dir.to_owned(),
        stop: stop.clone(),
    };
    let discovery = tokio::spawn(discovery.run(discovery_rx));
    let uplink = Uplink {
        addr: addr.clone(),
        tls: tls_rx,
        outbox: outbox.clone(),
        signals: signals.clone(),
        batch_max: config.batch_max_observations,
        max_in_flight: config.max_in_flight_batches,
        max_backoff: Duration::from_secs(config.max_backoff_secs),
        instance_id: outbox.instance_id(),
        data_dir: data_dir.to_owned(),
        fleet: fleet_tx,
        discovery: discovery_tx,
        live: tokio::sync::Mutex::new(live_rx),
        progress: tokio::sync::Mutex::new(progress_rx),
        tunnels: Arc::default(),
    };
    let uplink = tokio::spawn(uplink.run(stop.clone()));
    let renewer = renew::Renewer {
        data_dir: data_dir.to_owned(),
        addr,
        credentials,
        tls: tls_tx,
        signals,
    };
    let renewer = tokio::spawn(renewer.run(stop.clone()));

    let outbox_failed = outbox.failed_token();
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = outbox_failed.cancelled() => {}
    }
    stop.cancel();
    let _ = tokio::join!(facts, uplink, renewer, fleet, discovery, sink_task);
    if let Some(task) = synthetic {
        let _ = task.await;
    }
    if let Some(error) = outbox.failure() {
        tracing::error!(%error, "agent stopping: the outbox is unusable");
        return Err(error.into());
    }
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

/// Appends synthetic metric samples at `per_sec`, in batches every 100 ms.
async fn synthetic_task(outbox: Arc<Outbox>, signals: Arc<Signals>, per_sec: u64, stop: CancellationToken) {
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut made = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Paced by the clock, not by ticks, so slow appends make bigger
        // batches instead of a lower rate; after a long stall (an outbox
        // recovering from an I/O error), at most one second's worth.
        let owed = (u128::from(per_sec) * start.elapsed().as_millis() / 1000) as u64;
        let mut due = owed.saturating_sub(made);
        if due > per_sec {
            made += due - per_sec;
            due = per_sec;
        }
        if due == 0 {
            continue;
        }
        let items = synthetic_samples(made, due, now_ms());
        made += due;
        match blocking(&outbox, move |o| o.append(items)).await {
            Ok(seqs) if !seqs.is_empty() => signals.new_data.notify_one(),
            // Refused below the free-space reserve: counted and logged by the outbox.
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "appending synthetic metric samples failed"),
        }
    }
}

/// `count` samples named `synthetic.sample` with values `first`, `first + 1`, …
fn synthetic_samples(first: u64, count: u64, now: i64) -> Vec<(i64, observation::Body)> {
    (first..first + count)
        .map(|v| {
            (
                now,
                observation::Body::Metric(MetricSample {
                    name: "synthetic.sample".into(),
                    value: v as f64,
                    subject: String::new(),
                }),
            )
        })
        .collect()
}

/// Appends `count` synthetic metric samples (`synthetic.sample`, values 0 to
/// `count - 1`) to the outbox of `data_dir`, for load tests and benchmarks.
/// The agent must not be running. Returns how many were stored: fewer when
/// free disk space is below the reserve.
pub fn synthesize(data_dir: &Path, count: u64) -> anyhow::Result<u64> {
    let config = AgentConfig::load(data_dir)?;
    let mut options = config.outbox_options();
    options.max_records = options.max_records.max(count + 1_000);
    let outbox = open_outbox(data_dir, &options).context("opening the outbox (is the agent running?)")?;
    let (mut done, mut stored) = (0u64, 0u64);
    while done < count {
        let n = (count - done).min(10_000);
        stored += outbox.append(synthetic_samples(done, n, now_ms()))?.len() as u64;
        done += n;
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use outpost_certs::ca::{CertificateAuthority, Validity};
    use outpost_certs::keys::generate_key_and_csr;
    use outpost_certs::{AgentId, AgentIdentity, SiteId, TenantId};

    use super::*;
    use crate::outbox::Body;

    /// Credentials for `id`, issued by `ca`, stored in `dir`.
    fn credentials(dir: &Path, ca: &CertificateAuthority, id: &AgentIdentity) -> Credentials {
        let req = generate_key_and_csr("t").expect("csr");
        let cert = ca
            .sign_agent_csr(&req.csr_der, id, Validity::starting_now(Duration::from_secs(3600)))
            .expect("sign");
        Credentials::store(
            dir,
            &req.key_pem,
            &[cert.der, ca.cert_der().to_vec()],
            Some(ca.cert_der()),
            |_| Ok(()),
        )
        .expect("store credentials")
    }

    fn identity() -> AgentIdentity {
        AgentIdentity {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
        }
    }

    fn options() -> OutboxOptions {
        let mut o = OutboxOptions::new(1000);
        o.min_free_bytes = 0;
        o
    }

    /// An outbox in `dir` owned by `owner`, holding one record.
    fn outbox_of(dir: &Path, owner: &OutboxOwner) {
        let ob = open_outbox(dir, &options()).expect("open");
        ob.set_owner(owner).expect("owner");
        ob.append(vec![(0, Body::HostFacts(Default::default()))])
            .expect("append");
    }

    fn set_aside_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("outbox.set-aside."))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_unowned_outbox_is_claimed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("ca").expect("ca");
        let creds = credentials(dir.path(), &ca, &identity());
        {
            // From before owners existed: records, no owner.
            let ob = open_outbox(dir.path(), &options()).expect("open");
            ob.append(vec![(0, Body::HostFacts(Default::default()))])
                .expect("append");
        }
        let ob = open_outbox_for(dir.path(), &creds, &options()).expect("open");
        assert_eq!(ob.owner().expect("owner"), Some(outbox_owner(&creds)));
        assert_eq!(ob.depth().expect("depth"), 1, "records kept");
        assert!(set_aside_files(dir.path()).is_empty());
    }

    #[test]
    fn a_re_enrolled_agent_of_the_same_site_keeps_the_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("ca").expect("ca");
        let old = identity();
        let earlier = outbox_owner(&credentials(dir.path(), &ca, &old));
        outbox_of(dir.path(), &earlier);
        let creds = credentials(
            dir.path(),
            &ca,
            &AgentIdentity {
                agent: AgentId::random(),
                ..old
            },
        );
        let ob = open_outbox_for(dir.path(), &creds, &options()).expect("open");
        assert_eq!(ob.owner().expect("owner"), Some(outbox_owner(&creds)));
        assert_ne!(outbox_owner(&creds), earlier);
        assert_eq!(ob.depth().expect("depth"), 1, "the same site's data is kept");
        assert!(set_aside_files(dir.path()).is_empty());
    }

    #[test]
    fn an_outbox_of_another_site_or_collector_is_set_aside_and_never_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("ca").expect("ca");
        let other_ca = CertificateAuthority::generate("other").expect("ca");
        let old = identity();
        let cases = [
            (
                &ca,
                AgentIdentity {
                    site: SiteId::random(),
                    ..old
                },
            ),
            (
                &ca,
                AgentIdentity {
                    tenant: TenantId::random(),
                    ..old
                },
            ),
            (&other_ca, old),
        ];
        for (n, (issuer, id)) in cases.into_iter().enumerate() {
            let earlier = outbox_owner(&credentials(dir.path(), &ca, &old));
            outbox_of(dir.path(), &earlier);
            let creds = credentials(dir.path(), issuer, &id);
            let ob = open_outbox_for(dir.path(), &creds, &options()).expect("open");
            assert_eq!(ob.owner().expect("owner"), Some(outbox_owner(&creds)), "case {n}");
            assert_eq!(ob.depth().expect("depth"), 0, "case {n}: a fresh outbox");
            let aside = set_aside_files(dir.path());
            assert_eq!(aside.len(), n + 1, "case {n}: {aside:?}");
            assert!(
                aside.iter().all(|a| a.ends_with(&format!(".{}.redb", old.agent))),
                "{aside:?}"
            );
            drop(ob);
            std::fs::remove_file(dir.path().join(OUTBOX_FILE)).expect("remove");
        }
    }
}
