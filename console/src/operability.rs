//! What operators and their tools ask of a running collector, on the console
//! port, without signing in:
//!
//! * `GET /healthz`: the process answers (200 `ok`);
//! * `GET /readyz`: 200 `ready` when the database answers a trivial query
//!   and the agent port is listening, else 503 with the reason;
//! * `GET /metrics`: Prometheus metrics in the OpenMetrics text format.
//!
//! None of them reveals a tenant's data, but `/metrics` shows fleet-wide
//! counts, so it is meant for a scraper on a trusted network. Setting
//! `OUTPOST_METRICS_TOKEN` makes `/metrics` require `Authorization: Bearer
//! <token>` (compared in constant time); without it the endpoint is open.
//!
//! Metric names follow Prometheus' conventions: `outpost_` prefix, base units
//! in the name (`_seconds`), `_total` on counters only (the library appends
//! it, so counters are registered without it). Counters and the histogram are
//! fed where things happen ([`Metrics`] is shared with the collector's agent
//! port); gauges are read when scraped: from the store (agents online, outbox
//! depths, console sessions), from the collector (agent streams on this
//! collector), and from this console (open live-update streams).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::csrf::tokens_match;
use crate::state::ConsoleState;

/// How long `/readyz` waits for the database.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The collector's metrics and the registry they are served from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Observations committed by the ingest path.
    pub observations_ingested: Counter,
    /// How long committing one agent batch took.
    pub batch_commit_seconds: Histogram,
    login_failures: Counter,
    database_errors: Counter,
    agents_online: Gauge,
    agent_streams: Gauge,
    outbox_depth: Gauge,
    outbox_depth_max: Gauge,
    console_sessions: Gauge,
    event_streams: Gauge,
    /// Serialises the refresh of scraped values (two scrapes at once would
    /// otherwise both add the same database errors).
    scrape: tokio::sync::Mutex<()>,
    /// `Some` when `/metrics` requires a bearer token.
    token: Option<String>,
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
    fn sync_database_errors(&self) {
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

    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// `GET /readyz`.
pub(crate) async fn readyz(State(state): State<ConsoleState>) -> Response {
    match tokio::time::timeout(READY_DB_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: the database does not answer\n");
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within 2 s");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database did not answer within 2 s\n",
            );
        }
    }
    if !state.agent_port.get() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: the agent port is not listening\n");
    }
    text(StatusCode::OK, "ready\n")
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let m = &state.metrics;
    if let Some(token) = &m.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !tokens_match(token, presented) {
            let mut res = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    let _one = m.scrape.lock().await;
    match state.store.operability_gauges().await {
        Ok(g) => {
            m.agents_online.set(g.agents_online);
            m.outbox_depth.set(g.outbox_depth_sum);
            m.outbox_depth_max.set(g.outbox_depth_max);
            m.console_sessions.set(g.console_sessions);
        }
        // The gauges keep their last values; the error counter says why.
        Err(error) => tracing::warn!(%error, "reading gauges for /metrics failed"),
    }
    m.agent_streams
        .set(i64::try_from(state.agents.streaming_agents()).unwrap_or(i64::MAX));
    m.event_streams
        .set(i64::try_from(state.feed.streams()).unwrap_or(i64::MAX));
    m.sync_database_errors();
    let mut body = String::new();
    if let Err(error) = encode(&mut body, &m.registry) {
        tracing::error!(%error, "encoding metrics failed");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed\n");
    }
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    res
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}
