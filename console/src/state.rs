//! What every console handler shares.
use std::sync::Arc;

use outpost_store::{AdminScope, Store};

use super::feed::{FEED_INTERVAL, Feed};
use super::hashing::HashGate;
use super::metrics::{AgentPortUp, Metrics};
use super::rate_limit::LoginLimiter;

/// Shared state of the console handlers.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    /// The database.
    pub store: Store,
    /// Mark cookies `Secure`: on whenever the console is reached over HTTPS or
    /// loopback, because browsers then never send them over plain HTTP.
    pub secure_cookies: bool,
    pub(crate) limiter: Arc<LoginLimiter>,
    /// Second-factor code attempts, per user name and per address.
    pub(crate) code_limiter: Arc<LoginLimiter>,
    /// Every password check of this collector goes through it.
    pub(crate) hashing: Arc<HashGate>,
    /// The one live-update feed behind every `/events` stream.
    pub(crate) feed: Arc<Feed>,
    /// Seals device passwords added in the console and opens configuration
    /// backups for display.
    pub vault: Arc<outpost_vault::Vault>,
    /// Requests to agents: live traffic, backups.
    pub agents: Arc<dyn crate::agent_control::AgentControl>,
    /// The collector's metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether the agent port listens, for `/readyz`.
    pub agent_port: AgentPortUp,
    /// The collector CA's fingerprint, which enrollment tokens carry; without
    /// it the console issues none.
    pub ca_fingerprint: Option<outpost_certs::Fingerprint>,
}

impl ConsoleState {
    /// State with a fresh (empty) login rate limiter and a hashing cap of one
    /// password check per CPU. `admin` is the scope the live-update feed reads
    /// every tenant with (each stream then keeps only its own session's part):
    /// the one [`Store::open_as_operator`] handed out with `store`.
    pub fn new(store: Store, admin: AdminScope, vault: Arc<outpost_vault::Vault>, secure_cookies: bool) -> Self {
        Self {
            feed: Arc::new(Feed::new(store.clone(), admin, FEED_INTERVAL)),
            store,
            secure_cookies,
            limiter: Arc::new(LoginLimiter::default()),
            code_limiter: Arc::new(LoginLimiter::default()),
            hashing: Arc::new(HashGate::for_this_machine()),
            vault,
            agents: Arc::new(crate::agent_control::NoAgents),
            metrics: Arc::default(),
            agent_port: AgentPortUp::default(),
            ca_fingerprint: None,
        }
    }

    /// Serves `metrics` (shared with the collector's agent port) and reports
    /// readiness with `agent_port`.
    pub fn with_operability(mut self, metrics: Arc<Metrics>, agent_port: AgentPortUp) -> Self {
        self.metrics = metrics;
        self.agent_port = agent_port;
        self
    }

    /// Issues enrollment tokens for the CA with this fingerprint.
    pub fn with_ca_fingerprint(mut self, fingerprint: outpost_certs::Fingerprint) -> Self {
        self.ca_fingerprint = Some(fingerprint);
        self
    }

    /// Reaches agents through `agents` (the collector's).
    pub fn with_agent_control(mut self, agents: Arc<dyn crate::agent_control::AgentControl>) -> Self {
        self.agents = agents;
        self
    }
}
