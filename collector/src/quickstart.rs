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

/// The demo site: simulated RouterOS devices on these loopback addresses.
const DEMO_FIRST_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 100, 1);
/// The simulated devices' API password. They listen on loopback only; the
/// password is sealed in the vault like any other device's.
const DEMO_PASSWORD: &str = "outpost-demo";
/// Simulated routers beyond the managed ones: discovery finds them and the
/// console offers to adopt them with the site's credential profile.
const DEMO_UNMANAGED: usize = 2;
/// Ports the demo site's discovery job probes.
const DEMO_PORTS: &str = "22,80,443,2222,8291,8728,8729";

/// Runs until Ctrl-C. A second run reuses `root`. With `demo_devices` > 0, a
/// simulated RouterOS site of that many devices runs too, added as managed
/// devices of the quickstart site.
pub async fn run(root: &Path, agent_addr: SocketAddr, console_addr: SocketAddr, demo_devices: usize) -> Result<()> {
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
        metrics_retention: Default::default(),
        data_dir: collector_dir,
        database_url: None,
        agent_addr,
        console_addr,
        agent_cert_lifetime: outpost_certs::ca::DEFAULT_AGENT_CERT_LIFETIME,
        secure_cookies: true,
        console_transport: Default::default(),
        trusted_proxies: Vec::new(),
        metrics_token: None,
        tunnel_policy: Default::default(),
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

    // An agent directory left from an earlier collector (its data directory was
    // removed and re-initialised) trusts another CA: move it aside and enroll anew.
    let ca_fingerprint = DataDir::new(&location.data_dir).load_ca()?.fingerprint();
    if Credentials::exist(&agent_dir) {
        let trusted = Credentials::load(&agent_dir)
            .ok()
            .map(|c| outpost_certs::Fingerprint::of_der(&c.ca));
        if trusted != Some(ca_fingerprint) {
            let aside = root.join(format!("agent.old-{}", outpost_store::now_ms()));
            std::fs::rename(&agent_dir, &aside)
                .with_context(|| format!("moving the stale agent directory to {}", aside.display()))?;
            println!(
                "The agent in {} belonged to another collector; moved it to {}.",
                agent_dir.display(),
                aside.display()
            );
        }
    }
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
    {
        // The local agent discovers what the collector assigns (the demo
        // site on loopback) without MNDP broadcasts on this machine's
        // networks, and soon after a job arrives, for a quick first look.
        let mut config = AgentConfig::load(&agent_dir)?;
        if config.discovery_mndp || config.discovery_first_run_secs != 5 {
            config.discovery_mndp = false;
            config.discovery_first_run_secs = 5;
            config.save(&agent_dir)?;
        }
    }
    let demo = if demo_devices > 0 {
        Some(start_demo(&location, demo_devices).await?)
    } else {
        None
    };
    let agent = tokio::spawn({
        let (dir, shutdown) = (agent_dir.clone(), shutdown.clone());
        async move { outpost_agent::run(&dir, shutdown).await }
    });

    println!();
    println!("Outpost is running.");
    println!("  console:    https://{}/", bound.console);
    println!(
        "              (its certificate is issued by the collector CA {}: browsers warn until it is trusted)",
        location.data_dir.join("ca.crt").display()
    );
    println!("  agent port: {}", bound.agent);
    match password {
        Some(p) => println!("  login:      admin / {p}"),
        None => println!(
            "  login:      admin / (printed on the first run; reset with `outpost-collector admin reset-password --data-dir {}`)",
            location.data_dir.display()
        ),
    }
    if let Some(fleet) = &demo {
        println!(
            "  demo site:  {} simulated RouterOS devices from {DEMO_FIRST_IP} (API 8728, API-SSL 8729, SSH 2222); \
             see them under Devices, and {DEMO_UNMANAGED} more for discovery to find under Inventory (leave them out with --no-demo)",
            fleet.devices().len() - DEMO_UNMANAGED
        );
    }
    println!(
        "  command line: OUTPOST_PASSWORD=… outpost login {} --ca-fingerprint sha256:{ca_fingerprint} --user admin, \
         then `outpost devices list` (the gRPC API outpost.api.v1 answers on the console's port)",
        bound.console
    );
    println!("Press Ctrl-C to stop.");

    // Whichever stops first (Ctrl-C stops both) takes the other down with it,
    // so a failing agent is reported at once rather than at Ctrl-C.
    let mut collector = collector;
    let mut agent = agent;
    let (collector_result, agent_result) = tokio::select! {
        r = &mut collector => {
            shutdown.cancel();
            (r.context("collector task")?, agent.await.context("agent task")?)
        }
        r = &mut agent => {
            shutdown.cancel();
            (collector.await.context("collector task")?, r.context("agent task")?)
        }
    };
    collector_result.and(agent_result.context("local agent"))
}

/// Starts the simulated site and adds its devices (once) to the quickstart
/// site: RouterOS 6 over the plain API, RouterOS 7 over API-SSL.
async fn start_demo(location: &Location, devices: usize) -> Result<outpost_sim::Fleet> {
    let fleet = outpost_sim::Fleet::start(outpost_sim::FleetConfig {
        devices: devices + DEMO_UNMANAGED,
        first_ip: DEMO_FIRST_IP,
        ros: outpost_sim::RosMix::Mixed,
        seed: 1,
        user: "admin".into(),
        password: DEMO_PASSWORD.into(),
        api_port: 8728,
        api_ssl_port: 8729,
        ssh_port: 2222,
        winbox_echo_port: None,
        neighbors_per_device: 2,
    })
    .await
    .context("starting the simulated RouterOS site (leave it out with --no-demo)")?;
    let (store, admin) = outpost_store::Store::open_as_operator(&location.data_dir, None).await?;
    let dir = DataDir::new(&location.data_dir);
    let mut added = 0;
    for d in fleet.devices().iter().take(devices) {
        let v7 = d.version.major == outpost_sim::catalog::RosMajor::V7;
        let spec = crate::device_commands::DeviceSpec {
            tenant: TENANT.into(),
            site: SITE.into(),
            address: d.ip.to_string(),
            user: "admin".into(),
            tls: v7,
            port: Some(if v7 { d.api_ssl.port() } else { d.api.port() }),
            ssh_port: d.ssh.port(),
            interval: 30,
        };
        match crate::device_commands::add(&store, &admin, &dir, &spec, DEMO_PASSWORD).await {
            Ok(_) => added += 1,
            // Added on an earlier run.
            Err(e) if e.to_string().contains("already has device") => {}
            Err(e) => return Err(e.context(format!("adding simulated device {}", d.ip))),
        }
    }
    let first_run = added > 0;
    if first_run {
        // Discovery of the whole simulated site, managed or not: the
        // inventory shows the routers, and the unmanaged ones can be adopted
        // with the site's credential profile.
        let targets: Vec<String> = fleet.devices().iter().map(|d| d.ip.to_string()).collect();
        let job = crate::discovery_commands::JobSpec {
            tenant: TENANT.into(),
            site: SITE.into(),
            targets: targets.join(","),
            ports: Some(DEMO_PORTS.into()),
            rate: 1000,
            interval: 600,
            community: None,
            v3: None,
        };
        crate::discovery_commands::add_job(&store, &admin, &dir, &job)
            .await
            .context("adding the demo site's discovery job")?;
    }
    store.close().await;
    if first_run {
        crate::discovery_commands::profile_set(location, TENANT, SITE, "admin", DEMO_PASSWORD)
            .await
            .context("setting the demo site's credential profile")?;
        println!("Added {added} simulated RouterOS devices to site {SITE:?}, and a discovery job over its routers.");
    }
    Ok(fleet)
}
