//! `outpost-agent discover CIDR... [--ports top100|LIST] [--rate PPS] [--json]`:
//! one scan on the spot, printed as a table or as one JSON object (see
//! README, "Discovery output").
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use outpost_discovery::icmp::Pinger;
use outpost_discovery::scan::{self, ScanOptions, ScanOutcome};
use outpost_discovery::{ports, targets};

/// What the command was asked.
#[derive(Debug, Clone)]
pub struct DiscoverArgs {
    /// CIDRs or addresses; empty: this host's connected networks.
    pub targets: Vec<String>,
    /// `top100` or a list such as `22,80,8000-8010`.
    pub ports: String,
    /// Probes per second.
    pub rate: u32,
    /// Echo reply wait, milliseconds.
    pub ping_timeout_ms: u64,
    /// Addresses at most.
    pub max_addresses: usize,
    /// Skip reverse DNS.
    pub no_names: bool,
    /// Listen for MNDP here; none: no MNDP.
    pub mndp_listen: Option<std::net::SocketAddr>,
    /// Send the MNDP refresh request here; none: only listen.
    pub mndp_refresh: Option<std::net::SocketAddr>,
    /// SNMP v2c communities to try.
    pub snmp_communities: Vec<String>,
    /// SNMP v3 users to try, `user:auth-proto:auth-pass:priv-proto:priv-pass`.
    pub snmp_v3: Vec<String>,
    /// Print JSON.
    pub json: bool,
}

/// Runs the scan and prints it; an error for bad arguments or no targets.
pub async fn discover(args: &DiscoverArgs) -> Result<()> {
    let (targets, mut warnings) = if args.targets.is_empty() {
        let connected = outpost_discovery::neighbours::connected_networks()
            .await
            .context("finding this host's networks (give targets instead)")?;
        targets::expand_connected(&connected, args.max_addresses)?
    } else {
        (targets::expand(&args.targets, args.max_addresses)?, Vec::new())
    };
    let ports = ports::parse_ports(&args.ports)?;
    if args.rate == 0 {
        bail!("--rate must be at least 1 probe per second");
    }
    let mut opts = ScanOptions::new(targets);
    opts.ports = ports;
    opts.rate_pps = args.rate;
    opts.ping_timeout = Duration::from_millis(args.ping_timeout_ms.max(1));
    opts.names = !args.no_names;
    opts.mndp = args.mndp_listen.map(|listen| outpost_discovery::scan::MndpOptions {
        listen,
        refresh_to: args.mndp_refresh,
        ..Default::default()
    });
    opts.snmp = args
        .snmp_communities
        .iter()
        .map(outpost_discovery::snmp::Credentials::v2c)
        .collect();
    for user in &args.snmp_v3 {
        opts.snmp.push(parse_v3(user)?);
    }
    let pinger = Pinger::open();
    let quiet = args.json;
    let mut outcome = scan::run(&opts, &pinger, &|p| {
        if !quiet && p.phase != "done" && p.done == p.total {
            eprintln!("{}: {} of {} ({} hosts up)", p.phase, p.done, p.total, p.hosts_found);
        }
    })
    .await;
    warnings.append(&mut outcome.stats.warnings);
    outcome.stats.warnings = warnings;
    if args.json {
        println!("{}", serde_json::to_string(&super::records::json(&outcome))?);
    } else {
        print!("{}", table(&outcome));
    }
    Ok(())
}

/// `user:sha:authpass:aes:privpass` (authPriv), `user:sha:authpass`
/// (authNoPriv) or `user` (noAuthNoPriv).
fn parse_v3(spec: &str) -> Result<outpost_discovery::snmp::Credentials> {
    use outpost_discovery::snmp::Credentials;
    let parts: Vec<&str> = spec.split(':').collect();
    let creds = match parts.as_slice() {
        [user] => Credentials::v3_no_auth(*user),
        [user, auth, auth_pass] => Credentials::v3_auth_no_priv(*user, auth.parse()?, *auth_pass),
        [user, auth, auth_pass, privacy, priv_pass] => {
            Credentials::v3_auth_priv(*user, auth.parse()?, *auth_pass, privacy.parse()?, *priv_pass)
        }
        _ => bail!("--snmp-v3 wants USER[:AUTH:AUTHPASS[:PRIV:PRIVPASS]], e.g. outpost:sha:authpass1:aes:privpass1"),
    };
    creds.validate()?;
    Ok(creds)
}

fn table(outcome: &ScanOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<40} {:<17} {:<24} OPEN PORTS", "ADDRESS", "MAC", "NAME");
    let mut snmp_notes = Vec::new();
    for h in &outcome.hosts {
        let ports = h
            .services
            .iter()
            .map(|s| {
                if s.banner.product.is_empty() {
                    format!("{}/{}", s.port, s.banner.service)
                } else {
                    format!(
                        "{}/{} ({} {})",
                        s.port, s.banner.service, s.banner.product, s.banner.version
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "{:<40} {:<17} {:<24} {}",
            h.address,
            h.mac.as_deref().unwrap_or("-"),
            h.names.first().map_or("-", String::as_str),
            if ports.is_empty() { "-" } else { &ports }
        );
        if let Some(s) = &h.snmp {
            snmp_notes.push(format!(
                "{}: SNMP {} ({}), {} interfaces",
                h.address,
                s.name,
                s.descr,
                s.interfaces.len()
            ));
        } else if let Some(e) = &h.snmp_error {
            snmp_notes.push(format!("{}: SNMP: {e}", h.address));
        }
    }
    for n in snmp_notes {
        let _ = writeln!(out, "{n}");
    }
    let s = &outcome.stats;
    let _ = writeln!(
        out,
        "{} of {} addresses up, {} open ports, {} probes at up to {}/s, ICMP {}, {} ms",
        s.hosts_up, s.addresses, s.open_ports, s.probes_sent, s.rate_pps, s.icmp, s.duration_ms
    );
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
