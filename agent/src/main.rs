use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use outpost_agent::dial::CollectorAddr;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

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
        /// The token printed by `outpost-collector token create`.
        #[arg(long, env = "OUTPOST_ENROLL_TOKEN")]
        token: String,
        /// Data directory for the key, certificate, configuration and outbox.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value = "/var/lib/outpost-agent")]
        data_dir: PathBuf,
    },
    /// Run the agent.
    Run {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value = "/var/lib/outpost-agent")]
        data_dir: PathBuf,
    },
    /// Check agent.toml and the credentials, then exit.
    CheckConfig {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value = "/var/lib/outpost-agent")]
        data_dir: PathBuf,
    },
    /// Append synthetic metric samples to the outbox (load tests, benchmarks).
    Synth {
        /// Data directory.
        #[arg(long, env = "OUTPOST_AGENT_DATA_DIR", default_value = "/var/lib/outpost-agent")]
        data_dir: PathBuf,
        /// How many samples.
        #[arg(long)]
        count: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            data_dir,
        } => {
            let e = outpost_agent::enroll::enroll(&collector, &token, &data_dir).await?;
            println!(
                "Enrolled as agent {} (tenant {:?}, site {:?}).",
                e.agent_id, e.tenant, e.site
            );
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
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
