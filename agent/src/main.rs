use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use outpost_agent::dial::CollectorAddr;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[cfg(windows)]
mod windows_service;

/// Thousands of device tasks allocate and free on every thread; glibc's
/// per-thread arenas kept much of that memory (bench/results.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Outpost site agent.
#[derive(Debug, Parser)]
#[command(name = "outpost-agent", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, default_value = "human", value_parser = ["human", "json"], env = "OUTPOST_LOG_FORMAT")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll with a collector using a single-use token.
    Enroll {
        /// The collector's agent port, HOST:PORT.
        #[arg(long)]
        collector: CollectorAddr,
        /// The token printed by `outpost-collector token create`. Other users of
        /// the machine can read command lines (`ps`): prefer --token-file or
        /// OUTPOST_ENROLL_TOKEN, which is used when neither option is given.
        #[arg(long, conflicts_with = "token_file")]
        token: Option<String>,
        /// A file holding the token; surrounding whitespace is ignored.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// Data directory for the key, certificate, configuration and outbox.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value_os_t = outpost_agent::config::default_data_dir())]
        data_dir: PathBuf,
    },
    /// Run the agent.
    Run {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value_os_t = outpost_agent::config::default_data_dir())]
        data_dir: PathBuf,
    },
    /// Run as the Windows service (what the service control manager starts;
    /// in a console, use `run`).
    #[cfg(windows)]
    Service {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value_os_t = outpost_agent::config::default_data_dir())]
        data_dir: PathBuf,
    },
    /// Check agent.toml and the credentials, then exit.
    CheckConfig {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value_os_t = outpost_agent::config::default_data_dir())]
        data_dir: PathBuf,
    },
    /// Check a RouterOS device and its credentials: log in over the API and
    /// print identity, version, board, uptime, CPU and memory. The password
    /// comes from OUTPOST_ROS_PASSWORD, or a prompt.
    ProbeRouteros {
        /// The router's address (IP or name).
        address: String,
        /// API user name.
        #[arg(long)]
        user: String,
        /// Use API-SSL (8729) instead of the plain API (8728).
        #[arg(long)]
        tls: bool,
        /// API port, when not the default for --tls.
        #[arg(long)]
        port: Option<u16>,
        /// With --tls: accept only this certificate (SHA-256, hex).
        #[arg(long, requires = "tls")]
        pin: Option<outpost_routeros::Fingerprint>,
    },
    /// Discover the network once and print what is there: ICMP echo sweep,
    /// neighbour table, TCP connect scan with a look at each open port,
    /// reverse DNS. Without targets, this host's connected networks.
    Discover {
        /// CIDRs or addresses, e.g. 192.168.1.0/24 fd00::10.
        targets: Vec<String>,
        /// Ports: `top100` (nmap's top 100 plus MikroTik's 8291, 8728, 8729)
        /// or a list such as 22,80,8000-8010.
        #[arg(long, default_value = "top100")]
        ports: String,
        /// Probes (ICMP echoes and TCP connects) per second at most.
        #[arg(long, default_value_t = outpost_discovery::scan::DEFAULT_RATE)]
        rate: u32,
        /// How long to wait for an echo reply, milliseconds.
        #[arg(long, default_value_t = 500)]
        ping_timeout_ms: u64,
        /// Refuse targets holding more addresses than this.
        #[arg(long, default_value_t = outpost_discovery::targets::DEFAULT_MAX_ADDRESSES)]
        max_addresses: usize,
        /// Skip reverse DNS lookups.
        #[arg(long)]
        no_names: bool,
        /// SNMP v2c community to try on every host that is up (repeatable).
        #[arg(long = "snmp-community", env = "OUTPOST_SNMP_COMMUNITY", value_delimiter = ',')]
        snmp_communities: Vec<String>,
        /// SNMP v3 user to try: USER[:AUTH:AUTHPASS[:PRIV:PRIVPASS]], e.g.
        /// outpost:sha:authpass1:aes:privpass1 (repeatable).
        #[arg(long = "snmp-v3", env = "OUTPOST_SNMP_V3")]
        snmp_v3: Vec<String>,
        /// Listen for MikroTik MNDP announcements on this UDP address
        /// during the scan.
        #[arg(long, default_value = "0.0.0.0:5678")]
        mndp_listen: std::net::SocketAddr,
        /// Where to send the MNDP refresh request that makes routers
        /// announce themselves at once.
        #[arg(long, default_value = "255.255.255.255:5678")]
        mndp_refresh: std::net::SocketAddr,
        /// Do not send the refresh request (listen only).
        #[arg(long)]
        no_mndp_refresh: bool,
        /// No MNDP at all.
        #[arg(long)]
        no_mndp: bool,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Import an nmap scan (`nmap -oX FILE ...`): its hosts, MACs, names,
    /// open ports with services and OS guesses go to the collector's
    /// inventory. A malformed file is refused with the position of the fault.
    ImportNmap {
        /// The XML file.
        file: PathBuf,
        /// Data directory of the agent that sends it.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value_os_t = outpost_agent::config::default_data_dir())]
        data_dir: PathBuf,
    },
    /// Append synthetic metric samples to the outbox (load tests, benchmarks).
    Synth {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value_os_t = outpost_agent::config::default_data_dir())]
        data_dir: PathBuf,
        /// How many samples.
        #[arg(long)]
        count: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service has no console: it sets up its own logging and runtime.
    #[cfg(windows)]
    if let Command::Service { data_dir } = cli.command {
        return match windows_service::run(data_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let color = {
        use std::io::IsTerminal as _;
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color);
    if cli.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Enroll {
            collector,
            token,
            token_file,
            data_dir,
        } => {
            let token = enrollment_token(token, token_file.as_deref(), std::env::var_os(TOKEN_ENV))?;
            let e = outpost_agent::enroll::enroll(&collector, &token, &data_dir).await?;
            if let Some(path) = &e.outbox_set_aside {
                println!(
                    "The previous outbox belonged to another tenant, site or collector: moved aside to {} \
                     (kept on disk, never sent).",
                    path.display()
                );
            }
            if e.kept_id {
                println!(
                    "Re-enrolled as agent {} (tenant {:?}, site {:?}): kept its id and its outbox; \
                     the previous certificate no longer works.",
                    e.agent_id, e.tenant, e.site
                );
            } else {
                println!(
                    "Enrolled as agent {} (tenant {:?}, site {:?}).",
                    e.agent_id, e.tenant, e.site
                );
            }
            println!("Start it with: outpost-agent run --data-dir {}", data_dir.display());
            Ok(())
        }
        Command::Run { data_dir } => {
            let shutdown = CancellationToken::new();
            let token = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                token.cancel();
            });
            outpost_agent::run(&data_dir, shutdown).await
        }
        #[cfg(windows)]
        Command::Service { .. } => bail!("`service` runs from main, outside the console runtime"),
        Command::CheckConfig { data_dir } => {
            let (config, creds) = outpost_agent::check(&data_dir)?;
            println!(
                "{} is valid.",
                data_dir.join(outpost_agent::config::CONFIG_FILE).display()
            );
            println!("  collector: {}", config.collector);
            println!(
                "  agent: {} (tenant {}, site {})",
                creds.identity.agent, creds.identity.tenant, creds.identity.site
            );
            println!(
                "  certificate valid until {} (Unix time), renewal at {}",
                creds.not_after,
                creds.renew_at()
            );
            Ok(())
        }
        Command::ProbeRouteros {
            address,
            user,
            tls,
            port,
            pin,
        } => {
            let password = ros_password()?;
            match outpost_agent::routeros::probe::probe(&address, port, tls, pin, &user, &password).await {
                Ok(report) => {
                    print!("{report}");
                    Ok(())
                }
                Err(error) => bail!("{address}: {error}"),
            }
        }
        Command::Discover {
            targets,
            ports,
            rate,
            ping_timeout_ms,
            max_addresses,
            no_names,
            snmp_communities,
            snmp_v3,
            mndp_listen,
            mndp_refresh,
            no_mndp_refresh,
            no_mndp,
            json,
        } => {
            let args = outpost_agent::discovery::command::DiscoverArgs {
                targets,
                ports,
                rate,
                ping_timeout_ms,
                max_addresses,
                no_names,
                snmp_communities,
                snmp_v3,
                mndp_listen: (!no_mndp).then_some(mndp_listen),
                mndp_refresh: (!no_mndp_refresh).then_some(mndp_refresh),
                json,
            };
            outpost_agent::discovery::command::discover(&args).await
        }
        Command::ImportNmap { file, data_dir } => {
            let q = outpost_agent::discovery::import::import_nmap(&data_dir, &file)?;
            println!(
                "Queued {} of {} hosts (those up) from {}: the agent sends them to the collector within seconds, or when it next starts.",
                q.hosts_up,
                q.hosts,
                file.display()
            );
            Ok(())
        }
        Command::Synth { data_dir, count } => {
            let stored = outpost_agent::synthesize(&data_dir, count)?;
            println!("Appended {stored} synthetic metric samples to the outbox.");
            anyhow::ensure!(
                stored == count,
                "{} samples were refused: free disk space is below outbox_min_free_mb",
                count - stored
            );
            Ok(())
        }
    }
}

/// The RouterOS password: OUTPOST_ROS_PASSWORD, else a prompt (not echoed).
fn ros_password() -> anyhow::Result<String> {
    match std::env::var("OUTPOST_ROS_PASSWORD") {
        Ok(p) => Ok(p),
        Err(std::env::VarError::NotUnicode(_)) => bail!("OUTPOST_ROS_PASSWORD is not valid UTF-8"),
        Err(std::env::VarError::NotPresent) => {
            use std::io::IsTerminal as _;
            if !std::io::stdin().is_terminal() {
                bail!("no password: set OUTPOST_ROS_PASSWORD (standard input is not a terminal to prompt on)");
            }
            rpassword::prompt_password("RouterOS password: ").context("reading the password")
        }
    }
}

/// Read when neither `--token` nor `--token-file` is given. Not clap's `env`:
/// clap counts an environment value as `--token` given, so a token exported in
/// the shell would make an explicit `--token-file` a usage error.
const TOKEN_ENV: &str = "OUTPOST_ENROLL_TOKEN";

/// The enrollment token: an option given on the command line wins over the
/// environment (clap keeps the two options apart).
fn enrollment_token(
    token: Option<String>,
    token_file: Option<&Path>,
    from_env: Option<std::ffi::OsString>,
) -> anyhow::Result<String> {
    if let Some(token) = token {
        return Ok(token);
    }
    if let Some(path) = token_file {
        return read_token_file(path);
    }
    let Some(value) = from_env else {
        bail!("no enrollment token: give --token-file PATH or set {TOKEN_ENV}");
    };
    match value.to_str().map(str::trim) {
        Some(token) if !token.is_empty() => Ok(token.to_owned()),
        Some(_) => bail!("{TOKEN_ENV} is set but empty"),
        None => bail!("{TOKEN_ENV} is not valid UTF-8"),
    }
}

/// The token in `path`, without the newline an editor or `echo` leaves.
fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the enrollment token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the enrollment token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    // Ctrl-C, Ctrl-Break or the console window closing.
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close};
        match (ctrl_break(), ctrl_close()) {
            (Ok(mut brk), Ok(mut close)) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = brk.recv() => {}
                    _ = close.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(any(unix, windows)))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enroll_args(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut args = vec!["outpost-agent", "enroll", "--collector", "collector.example:7443"];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.txt");
        std::fs::write(&path, "  outpost1.abc\n").unwrap();
        assert_eq!(read_token_file(&path).unwrap(), "outpost1.abc");
    }

    #[test]
    fn empty_or_missing_token_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, " \n\t\n").unwrap();
        let missing = dir.path().join("missing.txt");
        for (path, says) in [(&empty, "is empty"), (&missing, "cannot read")] {
            let message = format!("{:#}", read_token_file(path).unwrap_err());
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(says), "{message}");
        }
    }

    #[test]
    fn token_and_token_file_are_mutually_exclusive() {
        let e = enroll_args(&["--token", "t", "--token-file", "f"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli = enroll_args(&["--token-file", "f"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Enroll {
                token: None,
                token_file: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn options_win_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.txt");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = || Some(std::ffi::OsString::from(" from-env\n"));

        let token = |t: Option<&str>, f: Option<&Path>, e| enrollment_token(t.map(str::to_owned), f, e);
        assert_eq!(token(Some("from-option"), None, env()).unwrap(), "from-option");
        assert_eq!(token(None, Some(&file), env()).unwrap(), "from-file");
        assert_eq!(token(None, None, env()).unwrap(), "from-env");
        let none = format!("{:#}", token(None, None, None).unwrap_err());
        assert!(none.contains("--token-file") && none.contains(TOKEN_ENV), "{none}");
        let blank = format!("{:#}", token(None, None, Some(" ".into())).unwrap_err());
        assert!(blank.contains("empty"), "{blank}");
    }
}
