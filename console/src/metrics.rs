//! The collector's metrics: counters and a histogram fed where things
//! happen (this console, the collector's agent port), gauges set when
//! `/metrics` is scraped (see `operability`).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The collector's metrics and the registry they are served from.
#[derive(Debug)]
pub struct Metrics {
    pub(crate) registry: Registry,
    /// Observations committed by the ingest path.
    pub observations_ingested: Counter,
    /// How long committing one agent batch took.
    pub batch_commit_seconds: Histogram,
    login_failures: Counter,
    database_errors: Counter,
    pub(crate) agents_online: Gauge,
    pub(crate) agent_streams: Gauge,
    pub(crate) outbox_depth: Gauge,
    pub(crate) outbox_depth_max: Gauge,
    pub(crate) console_sessions: Gauge,
    pub(crate) event_streams: Gauge,
    /// Serialises the refresh of scraped values (two scrapes at once would
    /// otherwise both add the same database errors).
    pub(crate) scrape: tokio::sync::Mutex<()>,
    /// `Some` when `/metrics` requires a bearer token.
    pub(crate) token: Option<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// Fresh metrics; `token`, when set, is required to read them.
    pub fn new(token: Option<String>) -> Self {
        let mut registry = Registry::with_prefix("outpost");
        let observations_ingested = Counter::default();
        registry.register(
            "observations_ingested",
            "Observations (metric samples, host facts, device and discovery reports) committed from agent batches",
            observations_ingested.clone(),
        );
        // 1 ms to about 16 s.
        let batch_commit_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register_with_unit(
            "batch_commit",
            "Time to commit one agent batch to the database",
            Unit::Seconds,
            batch_commit_seconds.clone(),
        );
        let login_failures = Counter::default();
        registry.register(
            "console_login_failures",
            "Refused console sign-ins (wrong credentials or too many attempts)",
            login_failures.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Queries the database refused or failed, in this process",
            database_errors.clone(),
        );
        let agents_online = Gauge::default();
        registry.register(
            "agents_online",
            "Agents connected (to any collector of this database) and heard from recently",
            agents_online.clone(),
        );
        let agent_streams = Gauge::default();
        registry.register(
            "agent_streams",
            "Agent streams open on this collector",
            agent_streams.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "agent_outbox_observations",
            "Observations waiting in the outboxes of unrevoked agents, as last reported, summed",
            outbox_depth.clone(),
        );
        let outbox_depth_max = Gauge::default();
        registry.register(
            "agent_outbox_observations_max",
            "The deepest outbox of an unrevoked agent, as last reported",
            outbox_depth_max.clone(),
        );
        let console_sessions = Gauge::default();
        registry.register(
            "console_sessions",
            "Console sessions that have not expired or signed out",
            console_sessions.clone(),
        );
        let event_streams = Gauge::default();
        registry.register(
            "console_event_streams",
            "Live-update (Server-Sent Events) streams open on this console",
            event_streams.clone(),
        );
        Self {
            registry,
            observations_ingested,
            batch_commit_seconds,
            login_failures,
            database_errors,
            agents_online,
            agent_streams,
            outbox_depth,
            outbox_depth_max,
            console_sessions,
            event_streams,
            scrape: tokio::sync::Mutex::new(()),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Counts a refused console sign-in.
    pub(crate) fn login_failed(&self) {
        self.login_failures.inc();
    }

    /// Brings the counter of database errors up to the store's count.
    pub(crate) fn sync_database_errors(&self) {
        let seen = outpost_store::database_errors();
        let have = self.database_errors.get();
        if seen > have {
            self.database_errors.inc_by(seen - have);
        }
    }
}

/// Whether the agent port is accepting connections; set by the collector.
#[derive(Clone, Debug, Default)]
pub struct AgentPortUp(Arc<AtomicBool>);

impl AgentPortUp {
    /// Records whether the agent port listens.
    pub fn set(&self, up: bool) {
        self.0.store(up, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
