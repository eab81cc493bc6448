//! The fleet: every device's listeners (API, API-SSL and SSH on the device's
//! own loopback address), and the handle through which tests and the control
//! port change devices and inject faults.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::api;
use crate::catalog::{RosMajor, RosVersion};
pub use crate::config::{FleetConfig, MAX_DEVICES, RosMix};
use crate::device::{ConnEvent, Device, MAX_CONFIG_LINES};
use crate::generate::{self, LayoutError};
use crate::host_key::{self, HostKeyError};
use crate::mndp::{self, AnnounceError};
use crate::ops::{CounterOp, Op};
use crate::ssh;
use crate::tls::{self, TlsError};

/// Time a client gets to finish the TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// File descriptors kept aside for connections and the runtime.
const SPARE_FDS: u64 = 1024;

/// Why a fleet did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Bad count or addresses.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Not enough file descriptors.
    #[error(
        "the open-file limit is {limit}, but {devices} devices need at least {needed} \
         (three listening sockets per device plus connections); raise it (ulimit -n, or the hard limit \
         in /etc/security/limits.conf or the service's LimitNOFILE) or run fewer devices"
    )]
    FileLimit {
        /// Limit after trying to raise it.
        limit: u64,
        /// Devices asked for.
        devices: usize,
        /// Descriptors needed.
        needed: u64,
    },
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        error: std::io::Error,
    },
    /// Certificate generation failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Host key generation failed.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The set-up task died.
    #[error("fleet set-up failed: {0}")]
    Internal(String),
}

/// Why a control operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpError {
    /// No device has this address.
    #[error("no device at {0}")]
    NoDevice(Ipv4Addr),
    /// The device has no such interface.
    #[error("{ip} has no interface {iface}")]
    NoInterface {
        /// Device.
        ip: Ipv4Addr,
        /// Interface asked for.
        iface: String,
    },
    /// Listening again failed.
    #[error("cannot listen again: {0}")]
    Bind(String),
    /// Certificate generation failed.
    #[error("cannot make a certificate: {0}")]
    Tls(String),
    /// Host key generation failed.
    #[error("cannot make a host key: {0}")]
    HostKey(String),
    /// The control line did not parse.
    #[error("{0}")]
    Parse(String),
}

/// What a device is, as printed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Loopback address.
    pub ip: Ipv4Addr,
    /// API address.
    pub api: SocketAddr,
    /// API-SSL address.
    pub api_ssl: SocketAddr,
    /// SSH address.
    pub ssh: SocketAddr,
    /// RouterOS release.
    pub version: RosVersion,
    /// `/system/identity` name.
    pub identity: String,
    /// `board-name`.
    pub board: &'static str,
}

impl DeviceInfo {
    /// `6` or `7`.
    pub fn ros_major(&self) -> u8 {
        match self.version.major {
            RosMajor::V6 => 6,
            RosMajor::V7 => 7,
        }
    }

    /// The line printed for this device at start.
    pub fn line(&self) -> String {
        format!(
            "device {} api={} api-ssl={} ssh={} ros={} identity={}",
            self.ip,
            self.api.port(),
            self.api_ssl.port(),
            self.ssh.port(),
            self.version.number,
            self.identity
        )
    }
}

struct Slot {
    dev: Arc<Device>,
    /// Present while the device listens; dropping it stops the listeners.
    stop: Mutex<Option<watch::Sender<()>>>,
}

/// A running fleet. Dropping it stops every listener and connection.
pub struct Fleet {
    slots: Vec<Slot>,
    by_ip: HashMap<Ipv4Addr, usize>,
    conn_seq: Arc<AtomicU64>,
    /// The MNDP announcer, while announcing.
    mndp: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("devices", &self.slots.len()).finish()
    }
}

/// Raises the open-file limit as far as allowed and checks it suffices.
pub fn ensure_file_limit(devices: usize) -> Result<u64, StartError> {
    let needed = devices as u64 * 3 + SPARE_FDS;
    // Raising may fail on exotic platforms; the check below still tells.
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(0);
    if limit < needed {
        return Err(StartError::FileLimit { limit, devices, needed });
    }
    Ok(limit)
}

impl Fleet {
    /// Lays out the fleet, makes certificates and starts listening on every
    /// device's addresses.
    pub async fn start(cfg: FleetConfig) -> Result<Fleet, StartError> {
        ensure_file_limit(cfg.devices)?;
        let cfg2 = cfg.clone();
        // Key generation for thousands of devices is CPU work: off the runtime.
        let devices = tokio::task::spawn_blocking(move || -> Result<Vec<Device>, StartError> {
            let layout = generate::fleet(&cfg2)?;
            layout
                .into_iter()
                .map(|(profile, state)| {
                    let cert = tls::device_cert(&profile.identity, profile.ip)?;
                    let key = host_key::host_key()?;
                    Ok(Device::new(profile, state, cert, key))
                })
                .collect()
        })
        .await
        .map_err(|e| StartError::Internal(e.to_string()))??;

        let mut fleet = Fleet {
            slots: Vec::with_capacity(devices.len()),
            by_ip: HashMap::with_capacity(devices.len()),
            conn_seq: Arc::new(AtomicU64::new(0)),
            mndp: Mutex::new(None),
        };
        for (n, dev) in devices.into_iter().enumerate() {
            let dev = Arc::new(dev);
            dev.api_port.store(cfg.api_port, Ordering::Relaxed);
            dev.api_ssl_port.store(cfg.api_ssl_port, Ordering::Relaxed);
            dev.ssh_port.store(cfg.ssh_port, Ordering::Relaxed);
            dev.winbox_port
                .store(cfg.winbox_echo_port.unwrap_or(0), Ordering::Relaxed);
            fleet.by_ip.insert(dev.profile.ip, n);
            let stop = listen(&dev, &fleet.conn_seq).await?;
            fleet.slots.push(Slot {
                dev,
                stop: Mutex::new(Some(stop)),
            });
        }
        Ok(fleet)
    }

    /// Makes every device that is up announce itself over MNDP to `to`,
    /// now and then every `every` (see the `mndp` module). Replaces an
    /// earlier call's destination and interval. `to` must be on loopback.
    pub fn announce_mndp(&self, to: SocketAddr, every: Duration) -> Result<(), AnnounceError> {
        if !to.ip().is_loopback() {
            return Err(AnnounceError::NotLoopback(to));
        }
        if every.is_zero() {
            return Err(AnnounceError::ZeroInterval);
        }
        let devices = self.slots.iter().map(|s| s.dev.clone()).collect();
        let task = tokio::spawn(mndp::announce(devices, to, every));
        let old = self
            .mndp
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task.abort_handle());
        if let Some(old) = old {
            old.abort();
        }
        Ok(())
    }

    /// Every device, in address order.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.slots.iter().map(|s| info(&s.dev)).collect()
    }

    /// One device.
    pub fn device(&self, ip: Ipv4Addr) -> Option<DeviceInfo> {
        self.slot(ip).ok().map(|s| info(&s.dev))
    }

    fn slot(&self, ip: Ipv4Addr) -> Result<&Slot, OpError> {
        self.by_ip
            .get(&ip)
            .and_then(|&n| self.slots.get(n))
            .ok_or(OpError::NoDevice(ip))
    }

    /// The device's configuration, one command per line (what `/export
    /// terse` would show below its timestamp comment).
    pub fn config_lines(&self, ip: Ipv4Addr) -> Result<Vec<String>, OpError> {
        Ok(self.slot(ip)?.dev.state().config_lines.clone())
    }

    /// When the configuration last changed.
    pub fn last_config_change(&self, ip: Ipv4Addr) -> Result<SystemTime, OpError> {
        Ok(self.slot(ip)?.dev.state().last_config_change)
    }

    /// DER of the device's current API-SSL certificate.
    pub fn certificate_der(&self, ip: Ipv4Addr) -> Result<Vec<u8>, OpError> {
        let dev = &self.slot(ip)?.dev;
        let der = dev.cert_der.read().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(der)
    }

    /// SHA-256 of the wire encoding of the device's current SSH host key
    /// (what a client pins).
    pub fn ssh_host_key_sha256(&self, ip: Ipv4Addr) -> Result<[u8; 32], OpError> {
        Ok(self.slot(ip)?.dev.ssh_host_key_sha256())
    }

    /// Runs one control-port line (`slow 127.0.1.1 500`, …).
    pub async fn control(&self, line: &str) -> Result<(), OpError> {
        let op: Op = line.parse().map_err(OpError::Parse)?;
        self.apply(op).await
    }

    /// Applies one change or fault.
    pub async fn apply(&self, op: Op) -> Result<(), OpError> {
        let slot = self.slot(op.ip())?;
        let dev = &slot.dev;
        let now = Instant::now();
        let wall = SystemTime::now();
        match op {
            Op::Slow(_, d) => dev.state().faults.slow = d,
            Op::Drop(_) => {
                let _ = dev.events.send(ConnEvent::Drop);
            }
            Op::Fatal(_) => {
                let _ = dev.events.send(ConnEvent::Fatal);
            }
            Op::Trap(_, path) => {
                dev.state().faults.traps.insert(path);
            }
            Op::Empty(_, path) => {
                dev.state().faults.empties.insert(path);
            }
            Op::UnknownWord(_, word) => dev.state().faults.unknown_word = Some(word),
            Op::Password(_, p) => dev.state().password = p,
            Op::LegacyLogin(_, on) => dev.state().faults.legacy_login = on,
            Op::NoApiPolicy(_, on) => dev.state().faults.no_api_policy = on,
            Op::RotateCert(_) => {
                let p = &dev.profile;
                let (identity, ip) = (p.identity.clone(), p.ip);
                let cert = tokio::task::spawn_blocking(move || tls::device_cert(&identity, ip))
                    .await
                    .map_err(|e| OpError::Tls(e.to_string()))?
                    .map_err(|e| OpError::Tls(e.to_string()))?;
                dev.set_cert(cert);
            }
            Op::RotateHostKey(_) => {
                let key = host_key::host_key().map_err(|e| OpError::HostKey(e.to_string()))?;
                dev.set_host_key(key);
            }
            Op::Down(_) => {
                dev.up.store(false, Ordering::Relaxed);
                let stop = slot.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
                drop(stop);
                let _ = dev.events.send(ConnEvent::Drop);
            }
            Op::Up(_) => {
                let running = slot.stop.lock().unwrap_or_else(|p| p.into_inner()).is_some();
                if !running {
                    let stop = listen(dev, &self.conn_seq)
                        .await
                        .map_err(|e| OpError::Bind(e.to_string()))?;
                    *slot.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
                }
            }
            Op::Config(_, line) => {
                let mut st = dev.state();
                if st.config_lines.len() >= MAX_CONFIG_LINES {
                    st.config_lines.remove(0);
                }
                st.config_lines.push(line);
                st.last_config_change = wall;
                let user = st.user.clone();
                st.push_log(wall, "system,info", format!("config changed by {user}"));
            }
            Op::Counter(ip, iface, what) => {
                let i = dev
                    .profile
                    .ifaces
                    .iter()
                    .position(|i| i.name == iface)
                    .ok_or(OpError::NoInterface { ip, iface })?;
                let p = &dev.profile.ifaces[i];
                let mut st = dev.state();
                let c = &mut st.counters[i];
                c.since = now;
                match what {
                    // A few seconds below the top, so the next reads roll over.
                    CounterOp::Wrap => {
                        c.rx_offset = u64::MAX - p.rx_rate.saturating_mul(3);
                        c.tx_offset = u64::MAX - p.tx_rate.saturating_mul(3);
                    }
                    CounterOp::Reset => {
                        c.rx_offset = 0;
                        c.tx_offset = 0;
                    }
                }
                st.iface_generation += 1;
            }
            Op::Reboot(_) => {
                {
                    let mut st = dev.state();
                    st.booted = now;
                    st.uptime_offset = 0;
                    st.reset_counters(now);
                    st.push_log(wall, "system,info", "router rebooted".to_owned());
                }
                let _ = dev.events.send(ConnEvent::Drop);
            }
            Op::Clear(_) => dev.state().faults = Default::default(),
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(task) = self.mndp.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        // Listeners stop with their senders; open connections need telling.
        for s in &self.slots {
            let _ = s.dev.events.send(ConnEvent::Drop);
        }
    }
}

fn info(dev: &Device) -> DeviceInfo {
    DeviceInfo {
        ip: dev.profile.ip,
        api: dev.api_addr(),
        api_ssl: dev.api_ssl_addr(),
        ssh: dev.ssh_addr(),
        version: dev.profile.version,
        identity: dev.profile.identity.clone(),
        board: dev.profile.board.name,
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| StartError::Bind { addr, error })
}

/// Binds the device's three listeners (remembering the ports picked for port
/// 0, so `up` comes back on the same ones) and serves them until the
/// returned sender is dropped.
async fn listen(dev: &Arc<Device>, seq: &Arc<AtomicU64>) -> Result<watch::Sender<()>, StartError> {
    let api = bind(dev.api_addr()).await?;
    let ssl = bind(dev.api_ssl_addr()).await?;
    let ssh = bind(dev.ssh_addr()).await?;
    if let Ok(a) = api.local_addr() {
        dev.api_port.store(a.port(), Ordering::Relaxed);
    }
    if let Ok(a) = ssl.local_addr() {
        dev.api_ssl_port.store(a.port(), Ordering::Relaxed);
    }
    if let Ok(a) = ssh.local_addr() {
        dev.ssh_port.store(a.port(), Ordering::Relaxed);
    }
    dev.up.store(true, Ordering::Relaxed);
    let (stop, stopped) = watch::channel(());
    tokio::spawn(accept_loop(
        api,
        dev.clone(),
        Service::Api,
        stopped.clone(),
        seq.clone(),
    ));
    tokio::spawn(accept_loop(
        ssl,
        dev.clone(),
        Service::ApiSsl,
        stopped.clone(),
        seq.clone(),
    ));
    let winbox = dev.winbox_port.load(Ordering::Relaxed);
    if winbox != 0 {
        let echo = bind(SocketAddr::from((dev.profile.ip, winbox))).await?;
        tokio::spawn(accept_loop(
            echo,
            dev.clone(),
            Service::WinboxEcho,
            stopped.clone(),
            seq.clone(),
        ));
    }
    tokio::spawn(accept_loop(ssh, dev.clone(), Service::Ssh, stopped, seq.clone()));
    Ok(stop)
}

/// What a listener serves.
#[derive(Debug, Clone, Copy)]
enum Service {
    Api,
    ApiSsl,
    Ssh,
    WinboxEcho,
}

async fn accept_loop(
    listener: TcpListener,
    dev: Arc<Device>,
    service: Service,
    mut stopped: watch::Receiver<()>,
    seq: Arc<AtomicU64>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((sock, peer)) => {
                let _ = sock.set_nodelay(true);
                let n = seq.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(sock, peer.ip(), dev.clone(), service, n));
            }
            // Out of descriptors or a reset before accept: back off briefly
            // instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn connection(sock: TcpStream, peer: IpAddr, dev: Arc<Device>, service: Service, n: u64) {
    match service {
        Service::Api => api::serve(sock, dev, peer, n).await,
        Service::ApiSsl => {
            let acceptor = tokio_rustls::TlsAcceptor::from(dev.tls_config());
            if let Ok(Ok(stream)) = tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(sock)).await {
                api::serve(stream, dev, peer, n).await;
            }
        }
        Service::Ssh => ssh::serve(sock, dev).await,
        Service::WinboxEcho => echo(sock).await,
    }
}

/// Sends back what arrives; after the peer's half-close, the rest, then its
/// own FIN (so a tunnel's half-close can be seen to work).
async fn echo(sock: TcpStream) {
    let (mut rd, mut wr) = sock.into_split();
    if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
    }
}
