//! One discovery scan: which hosts are up (ICMP echo, the neighbour table,
//! TCP probes where ICMP cannot tell), which of their TCP ports are open,
//! what those ports say, and the hosts' names. Every probe takes a slot from
//! one rate limiter, so the operator's packets-per-second bound holds for the
//! whole scan.
//!
//! Phases run in this order for each host, and hosts overlap: a host that
//! answers an echo has its ports scanned while the sweep still waits for
//! others (the console shows the phases as progress):
//! 1. `icmp`: an echo to every address; addresses outside this host's
//!    connected networks that stay silent, or every address when ICMP is not
//!    permitted, also get TCP connects to a few common ports (an answer,
//!    even a refusal, means the host is there).
//! 2. the neighbour table: on connected networks, a host that drops ICMP
//!    still answered the kernel's ARP or NDP question, so a confirmed entry
//!    for a target address counts as up; MAC addresses come from here too.
//!    In networks too large to sweep (`Targets::neighbours_only`, the
//!    default job's IPv6 prefixes) this and MNDP are the only ways in.
//! 3. `tcp`: a connect scan of the port list on every host that is up.
//! 4. `banners`: a light look at each open port.
//! 5. `snmp`: with credentials, each host that is up is asked for its
//!    system group, interfaces and LLDP neighbours; the first credential
//!    that works wins, and when none does the last error is kept.
//! 6. `names`: reverse DNS, then the SNMP sysName and MNDP identity.
//!
//! With MNDP on, a listener runs for the whole scan (after a refresh request,
//! MikroTik routers announce themselves at once): an announcement whose IPv4
//! address is a target makes that host up ("mndp") and gives its identity,
//! version and board. MAC vendors come from the IEEE registry.
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use ipnet::IpNet;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::banner::{self, Banner};
pub use crate::host::{Host, Service, SnmpSummary};
use crate::icmp::Pinger;
use crate::neighbours;
use crate::rate::RateLimiter;
use crate::targets::{self, Targets};
use crate::tcp::{self, ConnectLimits, PortState};

/// Ports a TCP host probe tries, in this order.
const HOST_PROBE_PORTS: &[u16] = &[80, 443, 22, 445, 3389];

/// Default probes per second.
pub const DEFAULT_RATE: u32 = 1000;

/// How a scan runs.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// What to scan.
    pub targets: Targets,
    /// TCP ports to scan on every host that is up.
    pub ports: Vec<u16>,
    /// Probes per second, ICMP and TCP together.
    pub rate_pps: u32,
    /// Wait for an echo reply.
    pub ping_timeout: Duration,
    /// Probes in flight at most (each TCP connect holds a file descriptor).
    pub max_in_flight: usize,
    /// Connects to one host at once at most.
    pub per_host: usize,
    /// Look at open ports.
    pub banners: bool,
    /// Longest wait for a banner exchange; a near host gets less (a few of
    /// its probe timeouts).
    pub banner_wait: Duration,
    /// Look up names.
    pub names: bool,
    /// SNMP credentials to try on every host, in order; none: no SNMP.
    pub snmp: Vec<crate::snmp::Credentials>,
    /// Wait for one SNMP request (with its retries).
    pub snmp_timeout: Duration,
    /// Listen for MNDP announcements during the scan.
    pub mndp: Option<MndpOptions>,
}

/// MNDP during a scan.
#[derive(Clone, Debug)]
pub struct MndpOptions {
    /// Where to listen (UDP 5678 on every address by default).
    pub listen: SocketAddr,
    /// Where to send a refresh request (the broadcast address by default;
    /// none: only listen).
    pub refresh_to: Option<SocketAddr>,
    /// Listen at least this long before the TCP scan starts, so routers
    /// have time to answer the refresh request.
    pub min_wait: Duration,
}

impl Default for MndpOptions {
    fn default() -> Self {
        Self {
            listen: crate::mndp::DEFAULT_BIND,
            refresh_to: Some(SocketAddr::from(([255, 255, 255, 255], crate::mndp::PORT))),
            min_wait: Duration::from_secs(2),
        }
    }
}

impl ScanOptions {
    /// Defaults for `targets`: the default port list, [`DEFAULT_RATE`].
    pub fn new(targets: Targets) -> Self {
        Self {
            targets,
            ports: crate::ports::default_ports(),
            rate_pps: DEFAULT_RATE,
            // nmap -T4's initial round-trip timeout.
            ping_timeout: Duration::from_millis(500),
            max_in_flight: 512,
            per_host: 64,
            banners: true,
            banner_wait: Duration::from_millis(1500),
            names: true,
            snmp: Vec::new(),
            snmp_timeout: Duration::from_secs(2),
            mndp: None,
        }
    }
}

/// Counts of one scan.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScanStats {
    /// Addresses in the targets.
    pub addresses: usize,
    /// Hosts found up.
    pub hosts_up: usize,
    /// Open ports over all hosts.
    pub open_ports: usize,
    /// ICMP echoes and TCP connects sent.
    pub probes_sent: u64,
    /// "raw", "dgram" or "none".
    pub icmp: &'static str,
    /// Probes per second allowed.
    pub rate_pps: u32,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// What did not work as it should (ICMP not permitted, …).
    pub warnings: Vec<String>,
}

/// A scan's findings.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScanOutcome {
    /// Hosts up, by address.
    pub hosts: Vec<Host>,
    /// Counts.
    pub stats: ScanStats,
}

/// How far a scan is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// "icmp", "tcp", "banners", "names", "done".
    pub phase: &'static str,
    /// Items of the phase done.
    pub done: usize,
    /// Items of the phase.
    pub total: usize,
    /// Hosts up so far.
    pub hosts_found: usize,
}

/// Reports progress; called often, must be cheap.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// Runs one scan with `pinger`'s ICMP sockets (opened once per process).
pub async fn run(opts: &ScanOptions, pinger: &Pinger, progress: ProgressFn<'_>) -> ScanOutcome {
    let started = Instant::now();
    let rate = Arc::new(RateLimiter::new(opts.rate_pps));
    let limits = ConnectLimits {
        rate: rate.clone(),
        in_flight: Arc::new(Semaphore::new(opts.max_in_flight.max(1))),
    };
    let mut warnings = pinger.warnings.clone();
    let connected: Vec<IpNet> = match neighbours::connected_networks().await {
        Ok(c) => c.into_iter().map(|c| c.net).collect(),
        Err(e) => {
            warnings.push(format!(
                "this host's networks are unknown ({e}): every target gets TCP host probes"
            ));
            Vec::new()
        }
    };
    let mut hosts: BTreeMap<IpAddr, Host> = BTreeMap::new();
    let mndp = match &opts.mndp {
        Some(m) => match MndpWatch::start(m).await {
            Ok(w) => Some(w),
            Err(e) => {
                warnings.push(format!("MNDP: {e}"));
                None
            }
        },
        None => None,
    };

    // 1. Echo sweep, with TCP host probes where ICMP cannot tell.
    let addrs = &opts.targets.addresses;
    let total = addrs.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let found = std::sync::atomic::AtomicUsize::new(0);
    let scanned = std::sync::atomic::AtomicUsize::new(0);
    let sweep: Vec<(IpAddr, Option<Duration>, bool, Option<Probed>)> = futures::stream::iter(addrs.iter().copied())
        .map(|addr| {
            let limits = &limits;
            let connected = &connected;
            let done = &done;
            let found = &found;
            let scanned = &scanned;
            async move {
                let mut rtt = None;
                if pinger.can_ping(&addr) {
                    let _permit = limits.in_flight.acquire().await;
                    limits.rate.acquire().await;
                    rtt = pinger.echo(addr, opts.ping_timeout).await;
                }
                let on_link = targets::covers(connected, &addr);
                let mut by_tcp = false;
                if rtt.is_none() && (!pinger.can_ping(&addr) || !on_link) {
                    by_tcp = tcp_ping(addr, limits).await;
                }
                let up = rtt.is_some() || by_tcp;
                if up {
                    found.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if d.is_multiple_of(32) || d == total {
                    progress(Progress {
                        phase: "icmp",
                        done: d,
                        total,
                        hosts_found: found.load(std::sync::atomic::Ordering::Relaxed),
                    });
                }
                // Up: its ports now, while the sweep waits for the others.
                let probed = if up {
                    let p = probe_host(addr, opts, limits).await;
                    let n = scanned.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let hosts_found = found.load(std::sync::atomic::Ordering::Relaxed);
                    progress(Progress {
                        phase: "tcp",
                        done: n,
                        total: hosts_found,
                        hosts_found,
                    });
                    Some(p)
                } else {
                    None
                };
                (addr, rtt, by_tcp, probed)
            }
        })
        .buffer_unordered(opts.max_in_flight.max(1))
        .collect()
        .await;
    let mut probed: BTreeMap<IpAddr, Probed> = BTreeMap::new();
    for (addr, rtt, by_tcp, p) in sweep {
        if rtt.is_none() && !by_tcp {
            continue;
        }
        if let Some(p) = p {
            probed.insert(addr, p);
        }
        let host = hosts.entry(addr).or_insert_with(|| Host::new(addr));
        if let Some(rtt) = rtt {
            host.seen_by.push("icmp");
            host.rtt_us = Some(u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX));
        }
        if by_tcp {
            host.seen_by.push("tcp");
        }
    }

    // 2. The neighbour table: MACs, and on-link hosts that drop ICMP.
    let swept: BTreeSet<IpAddr> = addrs.iter().copied().collect();
    let wanted = |a: &IpAddr| swept.contains(a) || targets::covers(&opts.targets.neighbours_only, a);
    match neighbours::read().await {
        Ok(entries) => {
            for n in entries {
                if !wanted(&n.address) {
                    continue;
                }
                let known = hosts.contains_key(&n.address);
                if !known && !n.confirmed {
                    // Remembered from earlier, not an answer to this scan.
                    continue;
                }
                let host = hosts.entry(n.address).or_insert_with(|| Host::new(n.address));
                host.mac = Some(neighbours::format_mac(&n.mac));
                if !known {
                    host.seen_by.push("arp");
                }
            }
        }
        Err(e) => warnings.push(format!("no MAC addresses: {e}")),
    }

    // MikroTik routers that announced themselves during the sweep.
    if let Some(watch) = mndp {
        for (from, a) in watch.stop().await {
            let Some(addr) = a
                .ipv4
                .map(IpAddr::V4)
                .filter(|a| wanted(a))
                .or_else(|| a.ipv6.map(IpAddr::V6).filter(|a| wanted(a)))
                .or_else(|| wanted(&from.ip()).then_some(from.ip()))
            else {
                continue;
            };
            let known = hosts.contains_key(&addr);
            let host = hosts.entry(addr).or_insert_with(|| Host::new(addr));
            if !known {
                host.seen_by.push("mndp");
            }
            if host.mac.is_none() {
                host.mac = a.mac.as_ref().map(neighbours::format_mac);
            }
            host.mndp = Some(crate::host::MndpSummary::from(&a));
        }
    }

    // 3 and 4. Ports and banners of the hosts found without an echo (ARP,
    // MNDP); the others were probed during the sweep.
    let hosts_found = hosts.len();
    let rest: Vec<IpAddr> = hosts.keys().filter(|a| !probed.contains_key(a)).copied().collect();
    let total = hosts_found;
    let done = std::sync::atomic::AtomicUsize::new(scanned.load(std::sync::atomic::Ordering::Relaxed));
    let parallel_hosts = (opts.max_in_flight / opts.per_host.max(1)).max(1);
    let late: Vec<(IpAddr, Probed)> = futures::stream::iter(rest)
        .map(|addr| {
            let limits = &limits;
            let done = &done;
            async move {
                let p = probe_host(addr, opts, limits).await;
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(Progress {
                    phase: "tcp",
                    done: d,
                    total,
                    hosts_found,
                });
                (addr, p)
            }
        })
        .buffer_unordered(parallel_hosts)
        .collect()
        .await;
    probed.extend(late);
    for (addr, p) in probed {
        if let Some(host) = hosts.get_mut(&addr) {
            host.open_ports = p.open;
            host.services = p.services;
        }
    }
    let up: Vec<IpAddr> = hosts.keys().copied().collect();

    // 5. SNMP.
    if !opts.snmp.is_empty() && !up.is_empty() {
        let total = up.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let answers: Vec<(IpAddr, Result<SnmpSummary, Option<String>>)> = futures::stream::iter(up.iter().copied())
            .map(|addr| {
                let done = &done;
                async move {
                    let r = snmp(addr, opts).await;
                    let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(Progress {
                        phase: "snmp",
                        done: d,
                        total,
                        hosts_found,
                    });
                    (addr, r)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for (addr, answer) in answers {
            if let Some(host) = hosts.get_mut(&addr) {
                match answer {
                    Ok(s) => {
                        host.seen_by.push("snmp");
                        host.snmp = Some(s);
                    }
                    Err(e) => host.snmp_error = e,
                }
            }
        }
    }

    // 6. Names.
    if opts.names && !hosts.is_empty() {
        progress(Progress {
            phase: "names",
            done: 0,
            total: hosts.len(),
            hosts_found,
        });
        for (addr, name) in crate::rdns::names(&up, Duration::from_secs(2)).await {
            if let Some(host) = hosts.get_mut(&addr)
                && !host.names.contains(&name)
            {
                host.names.push(name);
            }
        }
    }

    let mut hosts: Vec<Host> = hosts.into_values().collect();
    for h in &mut hosts {
        h.services.sort_by_key(|s| s.port);
        let more = [
            h.snmp.as_ref().map(|s| s.name.clone()),
            h.mndp.as_ref().map(|m| m.identity.clone()),
        ];
        for name in more.into_iter().flatten() {
            if !name.is_empty() && !h.names.contains(&name) {
                h.names.push(name);
            }
        }
        h.vendor = h
            .mac
            .as_deref()
            .and_then(parse_mac)
            .and_then(crate::oui::vendor)
            .map(str::to_owned);
    }
    let stats = ScanStats {
        addresses: opts.targets.addresses.len(),
        hosts_up: hosts.len(),
        open_ports: hosts.iter().map(|h| h.open_ports.len()).sum(),
        probes_sent: rate.sent(),
        icmp: pinger.mode().as_str(),
        rate_pps: opts.rate_pps,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        warnings,
    };
    progress(Progress {
        phase: "done",
        done: stats.hosts_up,
        total: stats.hosts_up,
        hosts_found: stats.hosts_up,
    });
    ScanOutcome { hosts, stats }
}

/// `aa:bb:cc:dd:ee:ff` → bytes.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// MNDP announcements collected while a scan runs.
struct MndpWatch {
    task: tokio::task::JoinHandle<()>,
    until: Instant,
    seen: Arc<std::sync::Mutex<Vec<(SocketAddr, crate::mndp::Announcement)>>>,
}

impl MndpWatch {
    async fn start(opts: &MndpOptions) -> Result<Self, String> {
        let listener = crate::mndp::MndpListener::bind(opts.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
        if let Some(to) = opts.refresh_to
            && let Err(e) = listener.send_refresh(to).await
        {
            tracing::debug!(%to, error = %e, "MNDP refresh request not sent");
        }
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            // Bounded: a flood of announcements cannot grow this without end.
            while let Ok(got) = listener.recv().await {
                let mut seen = sink.lock().unwrap_or_else(|p| p.into_inner());
                if seen.len() < 65_536 {
                    seen.push(got);
                }
            }
        });
        Ok(Self {
            task,
            until: Instant::now() + opts.min_wait,
            seen,
        })
    }

    /// Stops listening (not before the minimum wait); the announcements,
    /// newest last.
    async fn stop(self) -> Vec<(SocketAddr, crate::mndp::Announcement)> {
        tokio::time::sleep_until(self.until).await;
        self.task.abort();
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The first SNMP credential that works on `addr`, or the last error; no
/// error when the host has no SNMP agent at all (port unreachable).
async fn snmp(addr: IpAddr, opts: &ScanOptions) -> Result<SnmpSummary, Option<String>> {
    let mut last = None;
    for creds in &opts.snmp {
        match crate::snmp::query_host(addr, 161, creds, opts.snmp_timeout).await {
            Ok(info) => return Ok(SnmpSummary::from(&info)),
            Err(crate::snmp::SnmpError::Unreachable { .. }) => return Err(None),
            Err(e) => last = Some(e.to_string()),
        }
    }
    Err(last)
}

/// What the connect scan and the banners found on one host.
struct Probed {
    open: Vec<u16>,
    services: Vec<Service>,
}

/// Scans the ports of `addr`, then looks at each open one.
async fn probe_host(addr: IpAddr, opts: &ScanOptions, limits: &ConnectLimits) -> Probed {
    let ports = tcp::scan_host(addr, &opts.ports, limits, opts.per_host.max(1)).await;
    // A few probe timeouts of this host: near hosts answer greetings fast.
    let floor = Duration::from_millis(200);
    let wait = (ports.timeout * 2).clamp(floor, opts.banner_wait.max(floor));
    let services = if opts.banners {
        futures::stream::iter(ports.open.iter().copied())
            .map(|port| async move {
                let _permit = limits.in_flight.acquire().await;
                limits.rate.acquire().await;
                Service {
                    port,
                    banner: banner::grab(SocketAddr::new(addr, port), wait).await,
                }
            })
            .buffer_unordered(opts.per_host.max(1))
            .collect::<Vec<_>>()
            .await
    } else {
        ports
            .open
            .iter()
            .map(|&port| Service {
                port,
                banner: Banner {
                    service: banner::service_name(port).into(),
                    ..Banner::default()
                },
            })
            .collect()
    };
    Probed {
        open: ports.open,
        services,
    }
}

/// Whether `addr` answers a TCP connect (or refusal) on a common port.
async fn tcp_ping(addr: IpAddr, limits: &ConnectLimits) -> bool {
    for &port in HOST_PROBE_PORTS {
        let _permit = limits.in_flight.acquire().await;
        limits.rate.acquire().await;
        let (state, _, _) = tcp::probe(SocketAddr::new(addr, port), crate::timing::INITIAL).await;
        match state {
            PortState::Open | PortState::Closed => return true,
            // No route or no ARP answer: nothing there, stop asking.
            PortState::Unreachable => return false,
            PortState::Filtered => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loopback_scan_finds_the_open_ports_and_what_they_say() {
        let l = tokio::net::TcpListener::bind("127.0.0.7:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                use tokio::io::AsyncWriteExt as _;
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
            }
        });
        let targets = targets::expand(&["127.0.0.7"], 10).unwrap();
        let mut opts = ScanOptions::new(targets);
        opts.ports = vec![port, 1];
        opts.names = false;
        let pinger = Pinger::open();
        let calls = std::sync::Mutex::new(Vec::new());
        let out = run(&opts, &pinger, &|p| calls.lock().unwrap().push(p.phase)).await;
        assert_eq!(out.hosts.len(), 1, "{out:?}");
        let h = &out.hosts[0];
        assert_eq!(h.open_ports, vec![port]);
        assert_eq!(h.services[0].banner.product, "OpenSSH");
        assert!(!h.seen_by.is_empty());
        assert_eq!(out.stats.addresses, 1);
        assert!(out.stats.probes_sent >= 3, "{:?}", out.stats);
        let calls = calls.into_inner().unwrap();
        assert_eq!(calls.last(), Some(&"done"));
        assert!(calls.contains(&"tcp"));
    }
}
