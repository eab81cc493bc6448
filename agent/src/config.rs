//! The agent's configuration: `agent.toml` in the data directory.
//!
//! Every setting has a default except `collector`, which `enroll` writes.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dial::CollectorAddr;

/// The data directory when none is given: `/var/lib/outpost-agent` (what
/// the Debian package creates), or `%ProgramData%\Outpost` on Windows (what
/// the MSI creates).
pub fn default_data_dir() -> PathBuf {
    #[cfg(windows)]
    {
        let program_data = std::env::var_os("ProgramData")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from);
        program_data.join("Outpost")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/var/lib/outpost-agent")
    }
}

/// File name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "agent.toml";

/// The agent's settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The collector's agent port, `host:port`.
    pub collector: String,
    /// Seconds between host-facts reports (also the agent's heartbeat).
    #[serde(default = "defaults::host_facts_interval_secs")]
    pub host_facts_interval_secs: u64,
    /// Most observations per batch sent to the collector.
    #[serde(default = "defaults::batch_max_observations")]
    pub batch_max_observations: usize,
    /// Batches sent but not yet acknowledged.
    #[serde(default = "defaults::max_in_flight_batches")]
    pub max_in_flight_batches: usize,
    /// Outbox capacity in records; when full, the oldest metric samples are thinned.
    #[serde(default = "defaults::outbox_max_records")]
    pub outbox_max_records: u64,
    /// Longest pause between reconnect attempts, seconds.
    #[serde(default = "defaults::max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Free space to keep on the outbox's filesystem, MiB (default 64). Below
    /// it, new metric samples are refused (counted and logged) while host facts
    /// and other records are still written. 0 turns the reserve off.
    #[serde(default = "defaults::outbox_min_free_mb")]
    pub outbox_min_free_mb: u64,
    /// After an I/O error (full disk, failed fsync), how often the outbox is
    /// reopened and the operation retried, pausing 0.5 s and doubling, before
    /// the agent gives up and exits non-zero (default 5: about 15 s).
    #[serde(default = "defaults::outbox_reopen_attempts")]
    pub outbox_reopen_attempts: u32,
    /// Synthetic metric samples (`synthetic.sample`) appended per second, for
    /// load tests and benchmarks. 0 (the default) turns them off.
    #[serde(default)]
    pub synthetic_metrics_per_sec: u64,
    /// RouterOS devices talked to at once (connecting or polling); the rest
    /// wait their turn. Default 256.
    #[serde(default = "defaults::routeros_concurrency")]
    pub routeros_concurrency: usize,
    /// Scan this host's connected networks when the collector assigns no
    /// discovery job (default true).
    #[serde(default = "defaults::yes")]
    pub discovery_default_job: bool,
    /// Seconds between runs of that default job (default 3600).
    #[serde(default = "defaults::discovery_interval_secs")]
    pub discovery_interval_secs: u64,
    /// Discovery probes (ICMP echoes and TCP connects) per second, for jobs
    /// that set none (default 1000).
    #[serde(default = "defaults::discovery_rate_pps")]
    pub discovery_rate_pps: u32,
    /// How long an ICMP echo is waited for, per host, in milliseconds
    /// (default 500, as nmap -T4's initial timeout).
    #[serde(default = "defaults::discovery_ping_timeout_ms")]
    pub discovery_ping_timeout_ms: u64,
    /// Addresses one discovery job may cover; a connected network larger than
    /// this is narrowed to the block around this host (default 4096).
    #[serde(default = "defaults::discovery_max_addresses")]
    pub discovery_max_addresses: usize,
    /// Listen for MikroTik MNDP announcements (UDP 5678) during scans and ask
    /// routers to announce themselves (default true).
    #[serde(default = "defaults::yes")]
    pub discovery_mndp: bool,
    /// After each scheduled discovery scan, also run `nmap -oX -` with
    /// `discovery_nmap_args` on the same targets and import its findings
    /// (services, versions, OS guesses). Off by default; needs nmap.
    #[serde(default)]
    pub discovery_nmap: bool,
    /// Seconds from receiving a discovery job to its first run (default 30,
    /// so a burst of changes in the console does not start a scan each).
    #[serde(default = "defaults::discovery_first_run_secs")]
    pub discovery_first_run_secs: u64,
    /// nmap's arguments for `discovery_nmap` (default `-sV -T4`).
    #[serde(default = "defaults::discovery_nmap_args")]
    pub discovery_nmap_args: String,
}

mod defaults {
    pub(super) fn routeros_concurrency() -> usize {
        256
    }

    pub(super) fn yes() -> bool {
        true
    }

    pub(super) fn discovery_first_run_secs() -> u64 {
        30
    }

    pub(super) fn discovery_nmap_args() -> String {
        "-sV -T4".into()
    }

    pub(super) fn discovery_interval_secs() -> u64 {
        3600
    }

    pub(super) fn discovery_ping_timeout_ms() -> u64 {
        500
    }

    pub(super) fn discovery_rate_pps() -> u32 {
        outpost_discovery::scan::DEFAULT_RATE
    }

    pub(super) fn discovery_max_addresses() -> usize {
        outpost_discovery::targets::DEFAULT_MAX_ADDRESSES
    }

    pub(super) fn host_facts_interval_secs() -> u64 {
        60
    }
    pub(super) fn batch_max_observations() -> usize {
        5_000
    }
    pub(super) fn max_in_flight_batches() -> usize {
        4
    }
    pub(super) fn outbox_max_records() -> u64 {
        // ~24 h of 1,000 devices × 40 samples/min, a few GB at most.
        60_000_000
    }
    pub(super) fn max_backoff_secs() -> u64 {
        60
    }
    pub(super) fn outbox_min_free_mb() -> u64 {
        crate::outbox::DEFAULT_MIN_FREE_BYTES / MIB
    }
    pub(super) fn outbox_reopen_attempts() -> u32 {
        crate::outbox::DEFAULT_REOPEN_ATTEMPTS
    }
    pub(super) const MIB: u64 = 1024 * 1024;
}

/// Problems with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source} (has `outpost-agent enroll` been run for this data directory?)")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid {path}: {message}")]
    Value {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl AgentConfig {
    /// Defaults for a collector address.
    pub fn new(collector: &CollectorAddr) -> Self {
        Self {
            collector: collector.to_string(),
            host_facts_interval_secs: defaults::host_facts_interval_secs(),
            batch_max_observations: defaults::batch_max_observations(),
            max_in_flight_batches: defaults::max_in_flight_batches(),
            outbox_max_records: defaults::outbox_max_records(),
            max_backoff_secs: defaults::max_backoff_secs(),
            outbox_min_free_mb: defaults::outbox_min_free_mb(),
            outbox_reopen_attempts: defaults::outbox_reopen_attempts(),
            synthetic_metrics_per_sec: 0,
            routeros_concurrency: defaults::routeros_concurrency(),
            discovery_default_job: true,
            discovery_interval_secs: defaults::discovery_interval_secs(),
            discovery_rate_pps: defaults::discovery_rate_pps(),
            discovery_max_addresses: defaults::discovery_max_addresses(),
            discovery_mndp: true,
            discovery_nmap: false,
            discovery_first_run_secs: defaults::discovery_first_run_secs(),
            discovery_nmap_args: defaults::discovery_nmap_args(),
            discovery_ping_timeout_ms: defaults::discovery_ping_timeout_ms(),
        }
    }

    /// The discovery service's settings.
    pub fn discovery_settings(&self) -> crate::discovery::service::Settings {
        crate::discovery::service::Settings {
            default_job: self.discovery_default_job,
            default_interval: std::time::Duration::from_secs(self.discovery_interval_secs),
            rate_pps: self.discovery_rate_pps,
            ping_timeout: std::time::Duration::from_millis(self.discovery_ping_timeout_ms.clamp(1, 60_000)),
            max_addresses: self.discovery_max_addresses,
            mndp: self.discovery_mndp,
            first_run: std::time::Duration::from_secs(self.discovery_first_run_secs),
            nmap_args: self
                .discovery_nmap
                .then(|| self.discovery_nmap_args.split_whitespace().map(str::to_owned).collect()),
        }
    }

    /// The outbox's options from these settings.
    pub fn outbox_options(&self) -> crate::outbox::OutboxOptions {
        let mut o = crate::outbox::OutboxOptions::new(self.outbox_max_records);
        o.min_free_bytes = self.outbox_min_free_mb.saturating_mul(defaults::MIB);
        o.reopen_attempts = self.outbox_reopen_attempts;
        o
    }

    /// Loads and checks `agent.toml` from `data_dir`.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&path, &text)
    }

    /// Parses and checks configuration text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let bad = |message: String| ConfigError::Value {
            path: path.to_owned(),
            message,
        };
        config.collector_addr().map_err(bad)?;
        if config.host_facts_interval_secs == 0 {
            return Err(bad("host_facts_interval_secs must be at least 1".into()));
        }
        if !(1..=outpost_proto::MAX_BATCH_OBSERVATIONS).contains(&config.batch_max_observations) {
            return Err(bad(format!(
                "batch_max_observations must be 1 to {}",
                outpost_proto::MAX_BATCH_OBSERVATIONS
            )));
        }
        if !(1..=64).contains(&config.max_in_flight_batches) {
            return Err(bad("max_in_flight_batches must be 1 to 64".into()));
        }
        if config.outbox_max_records < 1_000 {
            return Err(bad("outbox_max_records must be at least 1000".into()));
        }
        if config.max_backoff_secs == 0 {
            return Err(bad("max_backoff_secs must be at least 1".into()));
        }
        if !(1..=20).contains(&config.outbox_reopen_attempts) {
            return Err(bad("outbox_reopen_attempts must be 1 to 20".into()));
        }
        if config.outbox_min_free_mb > 1 << 30 {
            return Err(bad("outbox_min_free_mb must be at most 1073741824 (1 PiB)".into()));
        }
        if !(1..=65_536).contains(&config.routeros_concurrency) {
            return Err(bad("routeros_concurrency must be 1 to 65536".into()));
        }
        if config
            .discovery_nmap_args
            .split_whitespace()
            .any(|a| a.starts_with("-o") || a == "-iL" || a == "--resume")
        {
            return Err(bad(
                "discovery_nmap_args must not choose nmap's output or input (-o…, -iL, --resume): the agent reads XML from nmap's standard output".into(),
            ));
        }
        if config.discovery_first_run_secs > 86_400 {
            return Err(bad("discovery_first_run_secs must be at most 86400".into()));
        }
        if config.discovery_interval_secs < 60 {
            return Err(bad("discovery_interval_secs must be at least 60".into()));
        }
        if !(1..=1_000_000).contains(&config.discovery_rate_pps) {
            return Err(bad("discovery_rate_pps must be 1 to 1000000".into()));
        }
        if !(1..=1 << 20).contains(&config.discovery_max_addresses) {
            return Err(bad("discovery_max_addresses must be 1 to 1048576".into()));
        }
        if config.synthetic_metrics_per_sec > 1_000_000 {
            return Err(bad("synthetic_metrics_per_sec must be at most 1000000".into()));
        }
        Ok(config)
    }

    /// The collector address.
    pub fn collector_addr(&self) -> Result<CollectorAddr, String> {
        self.collector.parse()
    }

    /// Writes the configuration to `data_dir`.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let text = toml::to_string(self).map_err(std::io::Error::other)?;
        let header = "# Outpost agent configuration. Check it with `outpost-agent check-config`.\n";
        outpost_certs::files::write_public(&data_dir.join(CONFIG_FILE), format!("{header}{text}").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_gets_defaults() {
        let c = AgentConfig::parse(Path::new("agent.toml"), "collector = \"c.example:7443\"\n").expect("valid");
        assert_eq!(c.host_facts_interval_secs, 60);
        assert_eq!(c.outbox_min_free_mb, 64);
        assert_eq!(c.outbox_options().min_free_bytes, 64 * 1024 * 1024);
        assert_eq!(c.outbox_reopen_attempts, 5);
        assert_eq!(c.synthetic_metrics_per_sec, 0);
        assert_eq!(c.collector_addr().expect("addr").to_string(), "c.example:7443");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = AgentConfig::parse(Path::new("agent.toml"), "collector = \"c:7443\"\nbogus = 1\n")
            .expect_err("unknown key");
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = AgentConfig::parse(Path::new("agent.toml"), "collector = \"nope\"\n").expect_err("bad addr");
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
        let e = AgentConfig::parse(
            Path::new("agent.toml"),
            "collector = \"c:1\"\nbatch_max_observations = 0\n",
        )
        .expect_err("range");
        assert!(e.to_string().contains("batch_max_observations"), "{e}");
        let e = AgentConfig::parse(
            Path::new("agent.toml"),
            "collector = \"c:1\"\noutbox_reopen_attempts = 0\n",
        )
        .expect_err("range");
        assert!(e.to_string().contains("outbox_reopen_attempts"), "{e}");
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = AgentConfig::new(&"127.0.0.1:7443".parse().expect("addr"));
        c.save(dir.path()).expect("save");
        assert_eq!(AgentConfig::load(dir.path()).expect("load"), c);
    }
}
