//! `outpost-sim`: runs a simulated RouterOS fleet until SIGINT or SIGTERM.
//! Usage is in the library docs and `--help`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use outpost_sim::{Fleet, FleetConfig, MAX_DEVICES, RosMix};

/// Simulated MikroTik RouterOS devices speaking the RouterOS API (8728),
/// API-SSL (8729) and SSH (`/export`), one per loopback address, and
/// optionally announcing themselves over MNDP (--mndp-to).
///
/// Prints `device <ip> api=<port> api-ssl=<port> ssh=<port> ros=<version> identity=<name>`
/// per device, then `ready <N> devices`, and serves until SIGINT/SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "outpost-sim", version)]
struct Args {
    /// Number of devices (1 to 10000).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=MAX_DEVICES as i64))]
    devices: u16,
    /// Address of the first device; the others count up, skipping .0 and .255.
    /// Must be in 127.0.0.0/8.
    #[arg(long, default_value = "127.0.1.1")]
    first_ip: Ipv4Addr,
    /// RouterOS line: 6, 7 or mixed.
    #[arg(long, value_enum, default_value = "mixed")]
    ros: RosMix,
    /// Seed for boards, versions, names, addresses and traffic rates.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// API user name.
    #[arg(long, default_value = "admin")]
    user: String,
    /// API password.
    #[arg(long, default_value = "admin")]
    password: String,
    /// API port on every device (0: a free port per device).
    #[arg(long, default_value_t = 8728)]
    api_port: u16,
    /// API-SSL port on every device (0: a free port per device).
    #[arg(long, default_value_t = 8729)]
    api_ssl_port: u16,
    /// SSH port on every device (0: a free port per device). Not 22 by
    /// default: that needs privileges and is usually the host's own sshd.
    #[arg(long, default_value_t = 2222)]
    ssh_port: u16,
    /// Serve a byte echo on this port of every device, standing in for
    /// WinBox (8291) behind a tunnel: what arrives is sent back, and a
    /// half-close is answered after the last byte (off by default).
    #[arg(long, value_name = "PORT")]
    winbox_echo: Option<u16>,
    /// Line-based control port for faults and changes (loopback only), e.g.
    /// 127.0.0.1:9999. Commands: slow, drop, fatal, trap, empty, unknown-word,
    /// password, legacy-login, no-api-policy, rotate-cert, rotate-host-key,
    /// down, up, config,
    /// counter, reboot, clear.
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Neighbour links per device (other simulated devices in /ip/neighbor).
    #[arg(long, default_value_t = 2)]
    neighbors_per_device: usize,
    /// Send every device's MNDP (MikroTik Neighbor Discovery) announcement to
    /// this loopback address, e.g. 127.0.0.1:5678: identity, ether1's MAC,
    /// version, board, uptime and the device's address, from the device's own
    /// address, at start and every --mndp-interval seconds. Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    mndp_to: Option<SocketAddr>,
    /// Seconds between MNDP announcements (with --mndp-to).
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    mndp_interval: u64,
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outpost-sim: error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Start-up errors are for people: one sentence, no backtrace.
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-sim: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.first_ip.octets()[0] != 127 {
        anyhow::bail!(
            "--first-ip {} is not a loopback address (127.0.0.0/8): the simulator only listens on loopback",
            args.first_ip
        );
    }
    if let Some(to) = args.mndp_to
        && !to.ip().is_loopback()
    {
        anyhow::bail!("--mndp-to {to} is not a loopback address: the simulator only sends to loopback");
    }
    let control = match args.control {
        Some(addr) => Some(
            outpost_sim::control::bind(addr)
                .await
                .with_context(|| format!("cannot open the control port on {addr}"))?,
        ),
        None => None,
    };
    let fleet = Fleet::start(FleetConfig {
        devices: usize::from(args.devices),
        first_ip: args.first_ip,
        ros: args.ros,
        seed: args.seed,
        user: args.user,
        password: args.password,
        api_port: args.api_port,
        api_ssl_port: args.api_ssl_port,
        ssh_port: args.ssh_port,
        winbox_echo_port: args.winbox_echo,
        neighbors_per_device: args.neighbors_per_device,
    })
    .await?;
    if let Some(to) = args.mndp_to {
        fleet.announce_mndp(to, Duration::from_secs(args.mndp_interval))?;
    }
    let fleet = Arc::new(fleet);
    {
        let mut out = std::io::stdout().lock();
        for d in fleet.devices() {
            writeln!(out, "{}", d.line())?;
        }
        if let Some(listener) = &control {
            writeln!(out, "control {}", listener.local_addr()?)?;
        }
        writeln!(out, "ready {} devices", fleet.devices().len())?;
        out.flush()?;
    }
    if let Some(listener) = control {
        tokio::spawn(outpost_sim::control::serve(listener, fleet.clone()));
    }
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
