//! Building, using and removing a test network.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command};

use crate::host::{Host, MacAddr};
use crate::ip::{ip, run};
use crate::listener::Listeners;
use crate::names::{self, host_ns, scan_ns};
use crate::spec::{HostKind, HostSpec};
use crate::{TestNetError, netns, snmpd};

/// The bridge on the scan side that every host is plugged into.
pub const BRIDGE: &str = "br0";

/// Most hosts one network can have (their last address octet is 11 + index).
pub const MAX_HOSTS: usize = 200;

/// Environment variable: set to `1` to make tests fail instead of skipping
/// when test networks cannot be built.
pub const REQUIRE_ENV: &str = "OUTPOST_REQUIRE_NETNS";

/// An IP network, such as `10.77.3.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Collects the hosts of a [`TestNet`].
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {
    hosts: Vec<HostSpec>,
}

impl Builder {
    /// Adds a host; hosts are numbered in the order they are added.
    pub fn host(mut self, spec: HostSpec) -> Self {
        self.hosts.push(spec);
        self
    }

    /// Adds `count` hosts like `spec`.
    pub fn hosts(mut self, count: usize, spec: HostSpec) -> Self {
        self.hosts.extend(std::iter::repeat_n(spec, count));
        self
    }

    /// Builds the network: removes stale networks first (see
    /// [`cleanup_stale`](crate::cleanup_stale)), then creates the
    /// namespaces, starts the services and waits until they answer.
    ///
    /// Fails with [`TestNetError::Unavailable`] when this machine or user
    /// cannot do it (not root, no `ip netns`, no `snmpd` when asked for).
    pub fn build(self) -> Result<TestNet, TestNetError> {
        if self.hosts.len() > MAX_HOSTS {
            return Err(TestNetError::Unavailable {
                needed: format!("at most {MAX_HOSTS} hosts per network ({} asked for)", self.hosts.len()),
            });
        }
        let snmpd = check_available(&self.hosts)?;
        let id = names::claim(std::process::id()).map_err(|e| match e {
            TestNetError::Command { stderr, .. } => TestNetError::Unavailable {
                needed: format!(
                    "creating a network namespace failed; it needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN \
                     and a writable /run/netns: {stderr}"
                ),
            },
            other => other,
        })?;
        let parsed = names::parse(&scan_ns(&id));
        // `claim` made the name with `net_id`, which `parse` accepts.
        let subnet = parsed.map(|p| p.subnet).expect("a name made by net_id parses");
        // Named after the network, so cleanup after a crash finds it.
        let dir = match tempfile::Builder::new().prefix(&names::temp_dir_prefix(&id)).tempdir() {
            Ok(dir) => dir,
            Err(e) => {
                let _ = names::remove_namespace(&scan_ns(&id));
                return Err(TestNetError::io("creating a temporary directory", e));
            }
        };
        let mut net = TestNet {
            scan_ns: scan_ns(&id),
            namespaces: vec![scan_ns(&id)],
            id,
            subnet,
            hosts: Vec::new(),
            listeners: Listeners::default(),
            children: Vec::new(),
            dir,
        };
        net.set_up_scan_side()?;
        for (index, spec) in self.hosts.iter().enumerate() {
            net.add_host(index, spec)?;
        }
        net.start_services(&self.hosts, snmpd)?;
        tracing::debug!(network = %net.id, hosts = net.hosts.len(), "test network built");
        Ok(net)
    }

    /// [`build`](Self::build), or `None` with a printed message when test
    /// networks are unavailable here and [`REQUIRE_ENV`] is not `1`.
    ///
    /// # Panics
    ///
    /// On any other failure, and on unavailability when required.
    pub fn build_or_skip(self) -> Option<TestNet> {
        match self.build() {
            Ok(net) => Some(net),
            Err(e @ TestNetError::Unavailable { .. }) if !required() => {
                eprintln!("skipping: {e} (set {REQUIRE_ENV}=1 to fail instead)");
                None
            }
            Err(e) => panic!("building the test network failed: {e}"),
        }
    }
}

/// Whether [`REQUIRE_ENV`] asks tests to fail rather than skip.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Root, `ip netns`, and `snmpd` if a host wants it (its path).
fn check_available(hosts: &[HostSpec]) -> Result<Option<PathBuf>, TestNetError> {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        return Err(TestNetError::Unavailable {
            needed: format!(
                "building network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); \
                 this process runs as uid {uid}: run the tests as root"
            ),
        });
    }
    if let Err(e) = ip(&["netns", "list"]) {
        return Err(TestNetError::Unavailable {
            needed: format!("iproute2's `ip netns` is needed (Debian package iproute2): {e}"),
        });
    }
    if hosts.iter().any(|h| h.drop_tcp) && find_program("nft").is_none() {
        return Err(TestNetError::Unavailable {
            needed: "nft is not installed: an ICMP-only host drops TCP with nftables; install Debian's `nftables` \
                     package (scripts/install-deps does)"
                .into(),
        });
    }
    if hosts.iter().any(|h| h.snmpd) {
        return snmpd::find_snmpd().map(Some);
    }
    Ok(None)
}

/// The nftables ruleset of an ICMP-only host: TCP in, dropped.
const DROP_TCP_RULES: &str = "table inet outpost_testnet {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto tcp drop
  }
}
";

/// `program` on PATH or in the sbin folders, where root's tools live.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A network of namespaces: a scan side with a bridge, and hosts plugged
/// into it. Dropping it kills its processes and removes its namespaces.
pub struct TestNet {
    id: String,
    subnet: u8,
    scan_ns: String,
    /// Every namespace created so far, scan side first.
    namespaces: Vec<String>,
    hosts: Vec<Host>,
    listeners: Listeners,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl fmt::Debug for TestNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestNet")
            .field("id", &self.id)
            .field("scan_ns", &self.scan_ns)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl TestNet {
    /// Starts describing a network.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// This network's id, the prefix of its namespaces' names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scan-side namespace: run a scanner there with
    /// `ip netns exec NAME …` ([`scan_command`](Self::scan_command)) or
    /// [`run_in_scan`](Self::run_in_scan).
    pub fn scan_namespace(&self) -> &str {
        &self.scan_ns
    }

    /// The bridge's name in the scan namespace.
    pub fn bridge(&self) -> &str {
        BRIDGE
    }

    /// The IPv4 subnet, 10.77.n.0/24.
    pub fn ipv4_subnet(&self) -> Subnet {
        Subnet {
            addr: IpAddr::V4(Ipv4Addr::new(10, 77, self.subnet, 0)),
            prefix_len: 24,
        }
    }

    /// The IPv6 subnet, fd77:n::/64 (n in hex).
    pub fn ipv6_subnet(&self) -> Subnet {
        Subnet {
            addr: IpAddr::V6(self.v6(0)),
            prefix_len: 64,
        }
    }

    /// The scan side's IPv4 address on the bridge, 10.77.n.1.
    pub fn scan_ipv4(&self) -> Ipv4Addr {
        self.v4(1)
    }

    /// The scan side's IPv6 address on the bridge, fd77:n::1.
    pub fn scan_ipv6(&self) -> Ipv6Addr {
        self.v6(1)
    }

    /// The hosts, in the builder's order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `index`.
    ///
    /// # Panics
    ///
    /// If there is no such host.
    pub fn host(&self, index: usize) -> &Host {
        &self.hosts[index]
    }

    /// `ip netns exec SCAN program`, ready for arguments.
    pub fn scan_command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.scan_ns, program]);
        command
    }

    /// Runs `f` on a new thread inside the scan namespace; sockets it (and
    /// threads it starts) opens are on the scan side. A panic in `f` is
    /// resumed here.
    pub fn run_in_scan<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, TestNetError> {
        netns::run_in(&self.scan_ns, f)
    }

    /// Runs `future` to completion on a current-thread tokio runtime inside
    /// the scan namespace.
    pub fn block_on_in_scan<F>(&self, future: F) -> Result<F::Output, TestNetError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.run_in_scan(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| TestNetError::io("building a tokio runtime", e))?;
            Ok(runtime.block_on(future))
        })?
    }

    /// Runs `f` on a thread inside host `index`'s namespace.
    ///
    /// # Panics
    ///
    /// If the host is silent (it has no namespace).
    pub fn run_in_host<T: Send>(&self, index: usize, f: impl FnOnce() -> T + Send) -> Result<T, TestNetError> {
        let ns = self.hosts[index]
            .namespace()
            .expect("a silent host has no namespace to run in");
        netns::run_in(ns, f)
    }

    /// Empties the scan side's neighbour cache, so the next scan resolves
    /// every address again (a warm cache skips ARP and skews timings). The
    /// silent hosts' permanent entries are put back.
    pub fn flush_neighbours(&self) -> Result<(), TestNetError> {
        ip(&["-n", &self.scan_ns, "neigh", "flush", "dev", BRIDGE, "nud", "all"])?;
        for host in self.hosts.iter().filter(|h| h.kind == HostKind::Silent) {
            self.add_silent_neighbour(host)?;
        }
        Ok(())
    }

    /// The log file of host `index`'s snmpd, if it runs one.
    pub fn snmpd_log(&self, index: usize) -> Option<PathBuf> {
        self.hosts
            .get(index)
            .filter(|h| h.snmpd)
            .map(|h| self.host_dir(h.index).join("snmpd.log"))
    }

    fn v4(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, last)
    }

    fn v6(&self, last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd77, u16::from(self.subnet), 0, 0, 0, 0, 0, last)
    }

    fn host_dir(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("h{index}"))
    }

    fn set_up_scan_side(&self) -> Result<(), TestNetError> {
        let s = self.scan_ns.as_str();
        let bridge_mac = MacAddr([0x02, 0x77, self.subnet, 0, 0, 1]).to_string();
        ip(&["-n", s, "link", "set", "lo", "up"])?;
        ip(&["-n", s, "link", "add", BRIDGE, "address", &bridge_mac, "type", "bridge"])?;
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{}/24", self.scan_ipv4()),
            "dev",
            BRIDGE,
        ])?;
        // No duplicate address detection: the address is usable at once
        // instead of after a second or two of tentative state.
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{}/64", self.scan_ipv6()),
            "dev",
            BRIDGE,
            "nodad",
        ])?;
        ip(&["-n", s, "link", "set", BRIDGE, "up"])?;
        Ok(())
    }

    fn add_host(&mut self, index: usize, spec: &HostSpec) -> Result<(), TestNetError> {
        // MAX_HOSTS keeps the index within one byte.
        let octet = u8::try_from(index).expect("at most MAX_HOSTS hosts");
        let mut host = Host {
            index,
            kind: spec.kind,
            namespace: None,
            ipv4: spec.has_ipv4().then(|| self.v4(11 + octet)),
            ipv6: spec.has_ipv6().then(|| self.v6(11 + u16::from(octet))),
            mac: MacAddr([0x02, 0x77, self.subnet, 0, 1, octet]),
            tcp_ports: spec.tcp.iter().map(|(port, _)| *port).collect(),
            snmpd: spec.snmpd,
            drops_tcp: spec.drop_tcp,
        };
        match spec.kind {
            HostKind::Silent => self.add_silent_neighbour(&host)?,
            HostKind::Live => {
                let ns = host_ns(&self.id, index);
                ip(&["netns", "add", &ns])?;
                self.namespaces.push(ns.clone());
                let s = self.scan_ns.as_str();
                let port = format!("v{index}");
                ip(&[
                    "link", "add", &port, "netns", s, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ])?;
                ip(&["-n", &ns, "link", "set", "eth0", "address", &host.mac.to_string()])?;
                ip(&["-n", s, "link", "set", &port, "master", BRIDGE, "up"])?;
                ip(&["-n", &ns, "link", "set", "lo", "up"])?;
                if let Some(v4) = host.ipv4 {
                    ip(&["-n", &ns, "addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
                }
                if let Some(v6) = host.ipv6 {
                    ip(&["-n", &ns, "addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])?;
                }
                ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
                if spec.drop_tcp {
                    self.drop_tcp(index, &ns)?;
                }
                host.namespace = Some(ns);
            }
        }
        self.hosts.push(host);
        Ok(())
    }

    /// Makes host `index`'s kernel drop every TCP segment it receives, so a
    /// connect to it times out instead of being refused.
    fn drop_tcp(&self, index: usize, ns: &str) -> Result<(), TestNetError> {
        let rules = self.host_dir(index).join("drop-tcp.nft");
        std::fs::create_dir_all(self.host_dir(index))
            .and_then(|()| std::fs::write(&rules, DROP_TCP_RULES))
            .map_err(|e| TestNetError::io(format!("writing {}", rules.display()), e))?;
        let nft = find_program("nft").ok_or_else(|| TestNetError::Unavailable {
            needed: "nft is not installed (Debian package nftables)".into(),
        })?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                &nft.to_string_lossy(),
                "-f",
                &rules.to_string_lossy(),
            ],
        )?;
        Ok(())
    }

    fn add_silent_neighbour(&self, host: &Host) -> Result<(), TestNetError> {
        let mac = host.mac.to_string();
        for addr in host.addrs() {
            let addr = addr.to_string();
            ip(&[
                "-n",
                &self.scan_ns,
                "neigh",
                "replace",
                &addr,
                "lladdr",
                &mac,
                "dev",
                BRIDGE,
                "nud",
                "permanent",
            ])?;
        }
        Ok(())
    }

    fn start_services(&mut self, specs: &[HostSpec], snmpd: Option<PathBuf>) -> Result<(), TestNetError> {
        let mut started = Vec::new();
        for (host, spec) in self.hosts.clone().iter().zip(specs) {
            let Some(ns) = host.namespace() else { continue };
            for (port, banner) in &spec.tcp {
                self.listeners.start(ns, *port, banner.clone())?;
            }
            if let (true, Some(snmpd)) = (spec.snmpd, &snmpd) {
                let dir = self.host_dir(host.index);
                self.children.push(snmpd::start(snmpd, &dir, host)?);
                started.push((self.children.len() - 1, host.addr(), dir.join("snmpd.log")));
            }
        }
        // All started first, then waited for, so they start up in parallel.
        for (child, addr, log) in started {
            let scan = self.scan_ns.clone();
            snmpd::wait_ready(&mut self.children[child], &scan, addr, &log)?;
        }
        Ok(())
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.listeners.stop();
        for child in &mut self.children {
            // Already exited is fine; remove_namespace kills what is left.
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = names::remove_namespace(ns) {
                eprintln!("test network {}: removing namespace {ns} failed: {e}", self.id);
            }
        }
    }
}
