//! One simulated device: a fixed, seeded profile (board, version, interfaces,
//! neighbours, leases, radio clients) and mutable state behind a mutex
//! (counters, uptime, log, config, faults).
//!
//! Counters and uptime are not ticked by a timer: they are computed from the
//! time elapsed since the last reset, so ten thousand idle devices cost no CPU.
//! The mutex is a `std` one and is never held across an `.await`.

use std::collections::{BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use crate::catalog::{Board, RosVersion};

/// Lines kept in the memory log, as RouterOS's default `memory-lines`.
pub(crate) const LOG_LINES: usize = 1000;
/// Most config lines kept, so `config` cannot grow memory without bound.
pub(crate) const MAX_CONFIG_LINES: usize = 10_000;

/// An interface as configured.
#[derive(Debug, Clone)]
pub(crate) struct Iface {
    pub(crate) name: String,
    /// `ether`, `bridge`, `wlan`, `wifi`
    pub(crate) kind: &'static str,
    pub(crate) mac: [u8; 6],
    pub(crate) mtu: u32,
    /// Bytes per second each way, seeded.
    pub(crate) rx_rate: u64,
    pub(crate) tx_rate: u64,
    /// Mean packet size, to derive packet counters from byte counters.
    pub(crate) packet_size: u64,
    pub(crate) running: bool,
    pub(crate) disabled: bool,
    pub(crate) comment: Option<String>,
}

/// A link to another simulated device, as this device's neighbour table sees it.
#[derive(Debug, Clone)]
pub(crate) struct Neighbor {
    pub(crate) local_iface: String,
    pub(crate) remote_iface: String,
    pub(crate) address: Ipv4Addr,
    pub(crate) mac: [u8; 6],
    pub(crate) identity: String,
    pub(crate) version: RosVersion,
    pub(crate) board: &'static str,
    pub(crate) software_id: String,
    pub(crate) uptime_at_start: u64,
}

/// A DHCP lease handed out on the bridge.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) address: Ipv4Addr,
    pub(crate) mac: [u8; 6],
    pub(crate) host_name: String,
    pub(crate) bound: bool,
    pub(crate) lease_secs: u64,
}

/// A wireless client.
#[derive(Debug, Clone)]
pub(crate) struct Station {
    pub(crate) iface: String,
    pub(crate) mac: [u8; 6],
    pub(crate) signal: i32,
    pub(crate) band5: bool,
    pub(crate) tx_rate: &'static str,
    pub(crate) rx_rate: &'static str,
    pub(crate) ccq: u32,
    pub(crate) rate: u64,
    pub(crate) connected_secs: u64,
    pub(crate) last_ip: Ipv4Addr,
}

/// The fixed part of a device.
#[derive(Debug)]
pub(crate) struct Profile {
    pub(crate) ip: Ipv4Addr,
    pub(crate) identity: String,
    pub(crate) version: RosVersion,
    pub(crate) board: &'static Board,
    pub(crate) serial: String,
    /// `# software id = …` in exports.
    pub(crate) software_id: String,
    pub(crate) ifaces: Vec<Iface>,
    pub(crate) neighbors: Vec<Neighbor>,
    pub(crate) leases: Vec<Lease>,
    pub(crate) stations: Vec<Station>,
    /// Per-device seed for wandering values (cpu-load, free memory).
    pub(crate) seed: u64,
    pub(crate) cpu_base: u32,
    pub(crate) temperature: u32,
    pub(crate) voltage_dv: u32,
    pub(crate) used_hdd: u64,
    pub(crate) used_memory: u64,
    /// Seconds between periodic log lines.
    pub(crate) log_every: u64,
}

/// One counter pair (rx, tx) of an interface, as an offset plus growth since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counter {
    pub(crate) rx_offset: u64,
    pub(crate) tx_offset: u64,
    pub(crate) since: Instant,
}

/// One log line.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub(crate) id: u64,
    pub(crate) at: SystemTime,
    pub(crate) topics: &'static str,
    pub(crate) message: String,
}

/// Faults and policies switched on through the control port.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    pub(crate) slow: Duration,
    pub(crate) traps: BTreeSet<String>,
    pub(crate) empties: BTreeSet<String>,
    pub(crate) unknown_word: Option<String>,
    pub(crate) legacy_login: bool,
    pub(crate) no_api_policy: bool,
}

/// The mutable part of a device.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) faults: Faults,
    /// When the uptime was last `uptime_offset`.
    pub(crate) booted: Instant,
    pub(crate) uptime_offset: u64,
    pub(crate) counters: Vec<Counter>,
    pub(crate) link_downs: Vec<u64>,
    pub(crate) last_link_down: Vec<Option<SystemTime>>,
    /// Bumped whenever interface state changes, for `/interface/listen`.
    pub(crate) iface_generation: u64,
    pub(crate) config_lines: Vec<String>,
    pub(crate) last_config_change: SystemTime,
    pub(crate) log: VecDeque<LogEntry>,
    pub(crate) next_log_id: u64,
    /// Periodic log lines written so far, counted from `log_epoch`.
    pub(crate) periodic_written: u64,
    pub(crate) log_epoch: Instant,
}

impl State {
    pub(crate) fn uptime(&self, now: Instant) -> u64 {
        self.uptime_offset + now.saturating_duration_since(self.booted).as_secs()
    }

    pub(crate) fn push_log(&mut self, at: SystemTime, topics: &'static str, message: String) {
        let id = self.next_log_id;
        self.next_log_id += 1;
        self.log.push_back(LogEntry {
            id,
            at,
            topics,
            message,
        });
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    /// Resets every interface counter, as a reboot does.
    pub(crate) fn reset_counters(&mut self, now: Instant) {
        for c in &mut self.counters {
            *c = Counter {
                rx_offset: 0,
                tx_offset: 0,
                since: now,
            };
        }
        self.iface_generation += 1;
    }
}

/// What a fault asks open connections to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnEvent {
    /// Close the socket without a word.
    Drop,
    /// Send `!fatal` and close.
    Fatal,
}

/// A simulated device.
#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) profile: Profile,
    state: Mutex<State>,
    pub(crate) events: broadcast::Sender<ConnEvent>,
    pub(crate) tls: RwLock<Arc<rustls::ServerConfig>>,
    /// DER of the current API-SSL certificate, for tests that pin it.
    pub(crate) cert_der: RwLock<Vec<u8>>,
    pub(crate) api_port: std::sync::atomic::AtomicU16,
    pub(crate) api_ssl_port: std::sync::atomic::AtomicU16,
    /// SSH server settings with the current host key.
    pub(crate) ssh: RwLock<Arc<crate::host_key::HostKey>>,
    pub(crate) ssh_port: std::sync::atomic::AtomicU16,
    /// The WinBox port's echo service; 0 when off.
    pub(crate) winbox_port: std::sync::atomic::AtomicU16,
    /// Whether the device is up (listening); a device taken down stops
    /// announcing itself over MNDP too.
    pub(crate) up: std::sync::atomic::AtomicBool,
}

impl Device {
    pub(crate) fn new(
        profile: Profile,
        state: State,
        tls: crate::tls::DeviceCert,
        ssh: crate::host_key::HostKey,
    ) -> Self {
        let (events, _) = broadcast::channel(16);
        Self {
            profile,
            state: Mutex::new(state),
            events,
            tls: RwLock::new(tls.config),
            cert_der: RwLock::new(tls.der),
            api_port: Default::default(),
            api_ssl_port: Default::default(),
            ssh: RwLock::new(Arc::new(ssh)),
            ssh_port: Default::default(),
            winbox_port: Default::default(),
            up: Default::default(),
        }
    }

    /// The state, even if a task panicked while holding it: the data stays
    /// usable for a simulator.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_cert(&self, cert: crate::tls::DeviceCert) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = cert.config;
        *self.cert_der.write().unwrap_or_else(|p| p.into_inner()) = cert.der;
    }

    pub(crate) fn ssh_config(&self) -> Arc<russh::server::Config> {
        self.ssh.read().unwrap_or_else(|p| p.into_inner()).config.clone()
    }

    pub(crate) fn ssh_host_key_sha256(&self) -> [u8; 32] {
        self.ssh.read().unwrap_or_else(|p| p.into_inner()).sha256
    }

    pub(crate) fn set_host_key(&self, key: crate::host_key::HostKey) {
        *self.ssh.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
    }

    pub(crate) fn ssh_addr(&self) -> SocketAddr {
        SocketAddr::from((
            self.profile.ip,
            self.ssh_port.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    pub(crate) fn api_addr(&self) -> SocketAddr {
        SocketAddr::from((
            self.profile.ip,
            self.api_port.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    pub(crate) fn api_ssl_addr(&self) -> SocketAddr {
        SocketAddr::from((
            self.profile.ip,
            self.api_ssl_port.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    /// Brings the periodic log up to date; called before reading the log so
    /// an idle device costs nothing.
    pub(crate) fn catch_up_log(&self, st: &mut State, now: Instant, wall: SystemTime) {
        let due = now.saturating_duration_since(st.log_epoch).as_secs() / self.profile.log_every.max(1);
        // Never write more than a full log's worth at once.
        let from = st.periodic_written.max(due.saturating_sub(LOG_LINES as u64));
        for n in from..due {
            let elapsed = now.saturating_duration_since(st.log_epoch).as_secs();
            let ago = elapsed.saturating_sub((n + 1) * self.profile.log_every);
            let at = wall - Duration::from_secs(ago);
            let (topics, message) = periodic_message(&self.profile, n);
            st.push_log(at, topics, message);
        }
        st.periodic_written = due;
    }
}

fn periodic_message(p: &Profile, n: u64) -> (&'static str, String) {
    let lease = p.leases.get((n as usize) % p.leases.len().max(1));
    match (n % 4, lease) {
        (0, Some(l)) => (
            "dhcp,info",
            format!("defconf assigned {} to {}", l.address, crate::format::mac(l.mac)),
        ),
        (1, _) => (
            "system,info,account",
            "user admin logged in from 192.168.88.10 via winbox".to_owned(),
        ),
        (2, _) => (
            "system,info,account",
            "user admin logged out from 192.168.88.10 via winbox".to_owned(),
        ),
        _ => (
            "interface,info",
            format!(
                "{} link up (speed 1G, full duplex)",
                p.ifaces.get(1).map_or("ether2", |i| i.name.as_str())
            ),
        ),
    }
}
