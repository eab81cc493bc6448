//! Command-line interface of `outpost-collector`.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Outpost collector: the agent port (mutual-TLS gRPC), the store and the web console.
#[derive(Debug, Parser)]
#[command(name = "outpost-collector", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, default_value = "human", value_parser = ["human", "json"], env = "OUTPOST_LOG_FORMAT")]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the collector keeps its state.
#[derive(Debug, Clone, Args)]
pub struct Location {
    /// Data directory (CA, server certificate, SQLite database).
    #[arg(long, env = "OUTPOST_DATA_DIR", default_value = "/var/lib/outpost-collector")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user:pass@host/db); SQLite in the data directory when absent.
    #[arg(long, env = "OUTPOST_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the CA, the agent-port server certificate and the admin account.
    Init {
        #[command(flatten)]
        location: Location,
        /// Extra DNS name or IP address agents use to reach this collector (repeatable).
        #[arg(long = "san")]
        sans: Vec<String>,
    },
    /// Run the agent port and the console.
    Serve(ServeArgs),
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Enrolled agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Sites.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Managed RouterOS devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Discovery: what the sites' agents scan, the hosts they found, and
    /// adopting discovered RouterOS routers as devices.
    Discovery {
        #[command(subcommand)]
        command: DiscoveryCommand,
    },
    /// The agent port's server certificate.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Console users and their roles.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Console administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// API tokens for programs using the public API.
    ApiToken {
        #[command(subcommand)]
        command: ApiTokenCommand,
    },
    /// The audit log: verify its hash chain, export records.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    #[cfg(feature = "quickstart")]
    /// Set up and run a collector on SQLite with one local agent enrolled through
    /// the real enrollment path; prints the console URL and credentials.
    Quickstart {
        /// Where to keep everything (collector and agent data).
        #[arg(long, default_value = "outpost-data")]
        data_dir: PathBuf,
        /// Agent port address.
        #[arg(long, default_value = "127.0.0.1:7443")]
        agent_addr: SocketAddr,
        /// Console address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        console_addr: SocketAddr,
        /// Leave out the simulated RouterOS site.
        #[arg(long)]
        no_demo: bool,
        /// Simulated RouterOS devices in the demo site.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
        demo_devices: u16,
    },
}

/// `serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub location: Location,
    /// Address of the agent port.
    #[arg(long, env = "OUTPOST_AGENT_ADDR", default_value = "0.0.0.0:7443")]
    pub agent_addr: SocketAddr,
    /// Address of the web console (HTTPS unless --console-plain-http).
    #[arg(long, env = "OUTPOST_CONSOLE_ADDR", default_value = "127.0.0.1:8080")]
    pub console_addr: SocketAddr,
    /// The console's certificate chain (PEM, leaf first) instead of the one the
    /// collector CA issued; re-read when the file changes.
    #[arg(long, env = "OUTPOST_CONSOLE_CERT", requires = "console_key", value_name = "FILE")]
    pub console_cert: Option<PathBuf>,
    /// The private key (PEM) of --console-cert; re-read when the file changes.
    #[arg(long, env = "OUTPOST_CONSOLE_KEY", requires = "console_cert", value_name = "FILE")]
    pub console_key: Option<PathBuf>,
    /// Serve the console as plain HTTP, for a TLS-terminating reverse proxy on
    /// the same host; only allowed on a loopback --console-addr.
    #[arg(long, conflicts_with_all = ["console_cert", "console_key"])]
    pub console_plain_http: bool,
    /// A reverse proxy whose X-Forwarded-For header names the console's client
    /// (an IP address; repeatable). Other peers' headers are ignored.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<IpAddr>,
    /// Lifetime of agent certificates (e.g. 30d, 12h; at least 60s).
    #[arg(long, default_value = "30d", value_parser = parse_cert_lifetime)]
    pub agent_cert_lifetime: Duration,
    /// How long raw metric samples are kept (e.g. 48h).
    #[arg(long, default_value = "48h", value_parser = parse_duration)]
    pub metrics_raw_retention: Duration,
    /// How long 5-minute metric summaries are kept.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub metrics_5m_retention: Duration,
    /// How long 1-hour metric summaries are kept.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    pub metrics_1h_retention: Duration,
    /// Bearer token `/metrics` requires (`Authorization: Bearer TOKEN`); without
    /// it `/metrics` is open like `/healthz`, for a scraper on a trusted network.
    #[arg(long, env = "OUTPOST_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Device ports tunnels may reach (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "22,23,80,443,8080,8291,8443,8728,8729")]
    pub tunnel_ports: Vec<u16>,
    /// Open tunnels per user at once.
    #[arg(long, default_value_t = 10)]
    pub tunnel_max_per_user: usize,
    /// Open tunnels per device at once.
    #[arg(long, default_value_t = 20)]
    pub tunnel_max_per_device: usize,
    /// Open tunnels in total.
    #[arg(long, default_value_t = 200)]
    pub tunnel_max_total: usize,
    /// A tunnel with no byte either way for this long is closed.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub tunnel_idle: Duration,
    /// A tunnel is closed after this long whatever happens.
    #[arg(long, default_value = "8h", value_parser = parse_duration)]
    pub tunnel_max_duration: Duration,
    /// Where the console opens listeners for technicians without the command
    /// line (each accepts only its user's address).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub tunnel_listen_ip: IpAddr,
}

impl ServeArgs {
    /// The console transport these options ask for.
    pub fn console_transport(&self) -> crate::serve::ConsoleTransport {
        use crate::serve::ConsoleTransport;
        match (&self.console_cert, &self.console_key) {
            _ if self.console_plain_http => ConsoleTransport::PlainHttp,
            (Some(cert), Some(key)) => ConsoleTransport::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => ConsoleTransport::CollectorCertificate,
        }
    }

    /// The tunnel policy these options ask for.
    pub fn tunnel_policy(&self) -> outpost_agent_port::tunnels::TunnelPolicy {
        outpost_agent_port::tunnels::TunnelPolicy {
            ports: self.tunnel_ports.clone(),
            per_user: self.tunnel_max_per_user,
            per_device: self.tunnel_max_per_device,
            total: self.tunnel_max_total,
            idle: self.tunnel_idle,
            max_duration: self.tunnel_max_duration,
            listen_ip: self.tunnel_listen_ip,
            ..Default::default()
        }
    }

    /// The metric retention these options ask for.
    pub fn metrics_retention(&self) -> outpost_store::metrics::Retention {
        outpost_store::metrics::Retention {
            raw: self.metrics_raw_retention,
            five_minutes: self.metrics_5m_retention,
            one_hour: self.metrics_1h_retention,
            ..Default::default()
        }
    }
}

/// `token` sub-commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a single-use enrollment token for a site (creating tenant and site if needed).
    Create {
        #[command(flatten)]
        location: Location,
        /// Tenant (client organisation) name.
        #[arg(long)]
        tenant: String,
        /// Site name.
        #[arg(long)]
        site: String,
        /// How long the token stays valid (e.g. 24h, 30m, 7d).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

/// `agent` sub-commands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// List agents with tenant, site, status, last seen, version and outbox depth.
    List {
        #[command(flatten)]
        location: Location,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an agent: it is refused at the TLS handshake from now on.
    Revoke {
        #[command(flatten)]
        location: Location,
        /// Agent id (UUID).
        id: String,
    },
}

/// `site` sub-commands.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Delete a site: its unused enrollment tokens stop working and its agents are revoked.
    Delete {
        #[command(flatten)]
        location: Location,
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Site name.
        #[arg(long)]
        site: String,
    },
}

/// `device` sub-commands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a RouterOS device to a site; the site's agent starts polling it.
    /// The password comes from OUTPOST_ROS_PASSWORD, or a prompt; it is
    /// stored sealed with the tenant's vault key.
    Add {
        #[command(flatten)]
        location: Location,
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Site name.
        #[arg(long)]
        site: String,
        /// The device's address as the site's agent reaches it.
        address: String,
        /// API user (its group needs the `api` policy, and `ssh` and `read`
        /// for configuration backups).
        #[arg(long)]
        user: String,
        /// Use API-SSL (8729, certificate pinned on first use) instead of the plain API (8728).
        #[arg(long)]
        tls: bool,
        /// API port, when not the default.
        #[arg(long)]
        port: Option<u16>,
        /// SSH port for configuration backups.
        #[arg(long, default_value_t = 22)]
        ssh_port: u16,
        /// Seconds between polls (10 to 86400).
        #[arg(long, default_value_t = 60)]
        interval: u32,
    },
    /// Add the devices of a CSV file to a site, in one transaction. The
    /// header line names the columns: address,port,user,tls and optionally
    /// ssh_port and interval (empty port: 8728, or 8729 with tls; empty
    /// ssh_port: 22; empty interval: 60). Every line is checked first; when
    /// any is bad, nothing is added. Devices the site already has (same
    /// address and port) are skipped and counted. One password for all,
    /// from OUTPOST_ROS_PASSWORD or a prompt, sealed per device with the
    /// tenant's vault key.
    Import {
        #[command(flatten)]
        location: Location,
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Site name.
        #[arg(long)]
        site: String,
        /// CSV file (`-` for standard input).
        file: PathBuf,
    },
    /// List devices with state, identity, version and the agent polling them.
    List {
        #[command(flatten)]
        location: Location,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a device; its agent stops polling it.
    Delete {
        #[command(flatten)]
        location: Location,
        /// Device id.
        id: String,
    },
    /// Trust the API-SSL certificate a device presented instead of its pinned one.
    AcceptCertificate {
        #[command(flatten)]
        location: Location,
        /// Device id.
        id: String,
    },
    /// Trust the SSH host key a device presented (for configuration backups)
    /// instead of its pinned one.
    AcceptHostKey {
        #[command(flatten)]
        location: Location,
        /// Device id.
        id: String,
    },
}

/// `discovery` sub-commands.
#[derive(Debug, Subcommand)]
pub enum DiscoveryCommand {
    /// Discovery jobs: the networks a site's agents scan, and how. Without
    /// any, agents scan their own connected networks hourly.
    Job {
        #[command(subcommand)]
        command: DiscoveryJobCommand,
    },
    /// List discovered hosts (gone ones included) with address, MAC, name,
    /// vendor, open ports and state.
    Hosts {
        #[command(flatten)]
        location: Location,
        /// Only this tenant's hosts.
        #[arg(long)]
        tenant: Option<String>,
        /// Only hosts that look like RouterOS and are not managed devices yet.
        #[arg(long)]
        adoptable: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The RouterOS login a site's discovered routers are adopted with.
    Profile {
        #[command(subcommand)]
        command: DiscoveryProfileCommand,
    },
    /// Adopt a discovered router as a managed RouterOS device, with its
    /// site's credential profile (API-SSL when port 8729 is open, else the
    /// API on 8728; SSH on 22).
    Adopt {
        #[command(flatten)]
        location: Location,
        /// Host id (from `discovery hosts`).
        id: String,
    },
}

/// The SNMPv3 user of `discovery job add`.
#[derive(Debug, Args)]
pub struct SnmpV3Args {
    /// SNMPv3 user (authPriv) to query hosts with; its passwords come from
    /// --snmp-v3-auth-password-file / --snmp-v3-priv-password-file or
    /// OUTPOST_SNMP_V3_AUTH_PASSWORD / OUTPOST_SNMP_V3_PRIV_PASSWORD, never
    /// the command line, and are stored sealed with the tenant's vault key.
    #[arg(long)]
    pub snmp_v3_user: Option<String>,
    /// SNMPv3 authentication protocol: SHA (SHA-1), SHA-224, SHA-256,
    /// SHA-384, SHA-512 or MD5.
    #[arg(long, default_value = "SHA", requires = "snmp_v3_user")]
    pub snmp_v3_auth: String,
    /// File holding the SNMPv3 authentication password (one line).
    #[arg(long, requires = "snmp_v3_user")]
    pub snmp_v3_auth_password_file: Option<PathBuf>,
    /// SNMPv3 privacy protocol: AES (AES-128), AES-192, AES-256 or DES.
    #[arg(long, default_value = "AES", requires = "snmp_v3_user")]
    pub snmp_v3_priv: String,
    /// File holding the SNMPv3 privacy password (one line).
    #[arg(long, requires = "snmp_v3_user")]
    pub snmp_v3_priv_password_file: Option<PathBuf>,
}

/// `discovery job` sub-commands.
#[derive(Debug, Subcommand)]
pub enum DiscoveryJobCommand {
    /// Add a discovery job to a site; its agents get it within seconds.
    Add {
        #[command(flatten)]
        location: Location,
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Site name.
        #[arg(long)]
        site: String,
        /// Networks or addresses to scan, comma-separated (10.0.0.0/24,fd00::/120,192.0.2.7);
        /// at most 4096 addresses in all, what an agent scans in one job.
        #[arg(long)]
        targets: String,
        /// TCP ports to probe, comma-separated, ranges allowed (22,80,8000-8100);
        /// the agent's default list (nmap's top 100 and MikroTik's) when absent.
        #[arg(long)]
        ports: Option<String>,
        /// Probes per second (0: the agent's default).
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Seconds between scheduled runs (0: only when asked to).
        #[arg(long, default_value_t = 3600)]
        interval: u32,
        /// SNMP v2c community to query hosts with; stored sealed with the
        /// tenant's vault key. Prefer the environment variable: a command
        /// line is visible to other users of the machine.
        #[arg(long, env = "OUTPOST_SNMP_COMMUNITY", hide_env_values = true)]
        snmp_community: Option<String>,
        #[command(flatten)]
        snmp_v3: Box<SnmpV3Args>,
    },
    /// List discovery jobs.
    List {
        #[command(flatten)]
        location: Location,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a discovery job; the site's agents stop running it.
    Delete {
        #[command(flatten)]
        location: Location,
        /// Job id.
        id: String,
    },
}

/// `discovery profile` sub-commands.
#[derive(Debug, Subcommand)]
pub enum DiscoveryProfileCommand {
    /// Set the RouterOS user (and password, from OUTPOST_ROS_PASSWORD or a
    /// prompt; stored sealed with the tenant's vault key) that discovered
    /// routers of a site are adopted with.
    Set {
        #[command(flatten)]
        location: Location,
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Site name.
        #[arg(long)]
        site: String,
        /// RouterOS user (its group needs the `api` policy, and `ssh` and
        /// `read` for configuration backups).
        #[arg(long)]
        user: String,
    },
}

/// `cert` sub-commands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a new agent-port server certificate from the same CA (agents
    /// notice nothing). A running `serve` picks it up within seconds.
    Renew {
        /// Data directory (CA, server certificate).
        #[arg(long, env = "OUTPOST_DATA_DIR", default_value = "/var/lib/outpost-collector")]
        data_dir: PathBuf,
        /// A DNS name or IP address to add to the names the current certificate covers (repeatable).
        #[arg(long = "san")]
        sans: Vec<String>,
    },
    /// Print the SHA-256 fingerprint of the collector's CA (what agents'
    /// enrollment tokens and `outpost login --ca-fingerprint` pin).
    Fingerprint {
        /// Data directory (CA).
        #[arg(long, env = "OUTPOST_DATA_DIR", default_value = "/var/lib/outpost-collector")]
        data_dir: PathBuf,
    },
}

/// `api-token` sub-commands.
#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Make an API token for a user (its scope is capped by that user's role
    /// whenever it is used); printed once, on the last line.
    Create {
        #[command(flatten)]
        location: Location,
        /// The user it acts for.
        #[arg(long)]
        user: String,
        /// The tenant (by name) it is bound to; every tenant when omitted.
        #[arg(long)]
        tenant: Option<String>,
        /// read, operate or admin.
        #[arg(long, default_value = "read", value_parser = ["read", "operate", "admin"])]
        scope: String,
        /// A label ("psa-sync").
        #[arg(long)]
        name: String,
        /// How long it stays valid (e.g. 30d); 90 days when omitted.
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
    },
    /// List every API token.
    List {
        #[command(flatten)]
        location: Location,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by its id.
    Revoke {
        #[command(flatten)]
        location: Location,
        /// The token's id.
        id: String,
    },
}

/// `user` sub-commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a console user with a random password (printed once): an MSP
    /// administrator (`--msp-admin`) or a member of one tenant.
    Add {
        #[command(flatten)]
        location: Location,
        /// User name.
        #[arg(long)]
        username: String,
        /// Tenant (by name) the user joins.
        #[arg(long, required_unless_present = "msp_admin", conflicts_with = "msp_admin")]
        tenant: Option<String>,
        /// Role in that tenant.
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// An MSP-wide administrator instead.
        #[arg(long)]
        msp_admin: bool,
    },
    /// List users with their roles.
    List {
        #[command(flatten)]
        location: Location,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's role in a tenant (`none` removes them from it).
    Role {
        #[command(flatten)]
        location: Location,
        /// User name.
        #[arg(long)]
        username: String,
        /// Tenant (by name).
        #[arg(long)]
        tenant: String,
        /// Role.
        #[arg(long, value_parser = ["viewer", "operator", "admin", "none"])]
        role: String,
    },
    /// Delete a user (their sessions end).
    Remove {
        #[command(flatten)]
        location: Location,
        /// User name.
        #[arg(long)]
        username: String,
    },
}

/// `admin` sub-commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set a new random password for a console administrator and print it.
    ResetPassword {
        #[command(flatten)]
        location: Location,
        /// User name.
        #[arg(long, default_value = "admin")]
        username: String,
    },
}

/// `audit` sub-commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole hash chain; name the first broken record and exit
    /// non-zero, or print the head (seq and hash) to keep elsewhere.
    Verify {
        #[command(flatten)]
        location: Location,
    },
    /// Write the records of a time range as CSV (RFC 4180) to standard output.
    Export {
        #[command(flatten)]
        location: Location,
        /// Start of the range, RFC 3339 (e.g. 2025-01-31T00:00:00Z), inclusive.
        #[arg(long)]
        from: String,
        /// End of the range, RFC 3339, exclusive.
        #[arg(long)]
        to: String,
        /// Only this tenant's records (by name).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// A certificate lifetime: a duration of at least a minute, so renewal (at two
/// thirds of it) never turns into a busy loop.
pub fn parse_cert_lifetime(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(60) {
        return Err(format!("certificate lifetime {s:?} is too short: the minimum is 60s"));
    }
    Ok(d)
}

/// Parses `90s`, `30m`, `24h`, `7d`, `2w` (or a bare number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 90s, 30m, 24h, 7d"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("invalid duration unit {unit:?} in {s:?}: use s, m, h, d or w")),
    };
    let total = n
        .checked_mul(secs)
        .ok_or_else(|| format!("duration {s:?} is too large"))?;
    if total == 0 {
        return Err("duration must be greater than zero".into());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
