//! `outpost-collector quickstart`: a collector on SQLite and one local agent,
//! enrolled through the real token → CSR → mTLS path, in one process.
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use outpost_agent::config::AgentConfig;
use outpost_agent::credentials::Credentials;
use tokio_util::sync::CancellationToken;

use crate::cli::Location;
use crate::commands;
use crate::data_dir::DataDir;
use crate::serve::{ServeOptions, serve};

const TENANT: &str = "local";
const SITE: &str = "quickstart";

/// Runs until Ctrl-C. A second run reuses `root`.
pub async fn run(root: &Path, agent_addr: SocketAddr, console_addr: SocketAddr) -> Result<()> {
    let location = Location {
        data_dir: root.join("collector"),
        database_url: None,
    };
    let agent_dir = root.join("agent");
    let collector_dir = DataDir::new(&location.data_dir);
    let password = if collector_dir.is_initialised() {
        println!("Reusing the collector in {}.", location.data_dir.display());
        None
    } else {
        Some(commands::init(&location, &[]).await?)
    };

    let shutdown = CancellationToken::new();
    crate::logging::cancel_on_signal(shutdown.clone());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let opts = ServeOptions {
        data_dir: collector_dir,
        database_url: None,
        agent_addr,
        console_addr,
        agent_cert_lifetime: outpost_certs::ca::DEFAULT_AGENT_CERT_LIFETIME,
        secure_cookies: true,
    };
    let collector = tokio::spawn(serve(opts, shutdown.clone(), Some(ready_tx)));
    let bound = match ready_rx.await {
        Ok(b) => b,
        Err(_) => {
            // serve failed before binding; report its error.
            return collector
                .await
                .context("collector task")?
                .and(Err(anyhow::anyhow!("collector did not start")));
        }
    };
    let collector_addr: outpost_agent::dial::CollectorAddr = format!("127.0.0.1:{}", bound.agent.port())
        .parse()
        .map_err(anyhow::Error::msg)?;

    if Credentials::exist(&agent_dir) {
        let mut config = AgentConfig::load(&agent_dir)?;
        if config.collector != collector_addr.to_string() {
            config.collector = collector_addr.to_string();
            config.save(&agent_dir)?;
        }
        println!("Reusing the agent in {}.", agent_dir.display());
    } else {
        let token = commands::token_create(&location, TENANT, SITE, Duration::from_secs(600)).await?;
        let enrolled = outpost_agent::enroll::enroll(&collector_addr, &token, &agent_dir).await?;
        println!(
            "Enrolled local agent {} into tenant {TENANT:?}, site {SITE:?}.",
            enrolled.agent_id
        );
    }
    let agent = tokio::spawn({
        let (dir, shutdown) = (agent_dir.clone(), shutdown.clone());
        async move { outpost_agent::run(&dir, shutdown).await }
    });

    println!();
    println!("Outpost is running.");
    println!("  console:    http://{}/", bound.console);
    println!("  agent port: {}", bound.agent);
    match password {
        Some(p) => println!("  login:      admin / {p}"),
        None => println!(
            "  login:      admin / (printed on the first run; reset with `outpost-collector admin reset-password --data-dir {}`)",
            location.data_dir.display()
        ),
    }
    println!("Press Ctrl-C to stop.");

    let collector_result = collector.await.context("collector task")?;
    shutdown.cancel();
    let agent_result = agent.await.context("agent task")?;
    collector_result.and(agent_result)
}
