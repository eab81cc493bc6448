//! Throwaway test networks made of Linux network namespaces.
//!
//! A [`TestNet`] is one scan-side namespace holding a bridge with an address
//! (where the scanner under test runs) and one namespace per host, each
//! plugged into the bridge with a veth pair, so every host has its own MAC
//! and its own kernel answering ARP, ICMP and TCP:
//!
//! ```text
//!  scan ns: br0 10.77.n.1/24, fd77:n::1/64
//!            ├─ v0 ══ eth0  host 0 ns: 10.77.n.11  (ICMP, TCP ports, snmpd)
//!            ├─ v1 ══ eth0  host 1 ns: 10.77.n.12
//!            └─ (no port)   silent host: permanent neighbour entry only
//! ```
//!
//! Host kinds ([`HostSpec`]): live hosts answer ICMP and refuse closed TCP
//! ports; they may listen on TCP ports with a banner ([`Banner`]), run
//! Debian's `snmpd`, and have IPv4, IPv6 or both. An ICMP-only host answers
//! ICMP and ARP/NDP but drops every TCP segment (an nftables rule in its
//! namespace), so a TCP probe learns nothing from it. A silent host has no
//! namespace at all, only a permanent neighbour entry on the scan side, so
//! packets to it go out and nothing ever answers.
//!
//! Code under test reaches the network from the scan side: a process with
//! `ip netns exec` ([`TestNet::scan_command`]), or code in this process with
//! [`TestNet::run_in_scan`] / [`TestNet::block_on_in_scan`], which run it on
//! a thread that entered the scan namespace with setns(2); the rest of the
//! process stays where it is.
//!
//! Several networks can exist at once, in one process or many: each has its
//! own subnet and names (see [`names`](mod@names)). Dropping a network kills
//! its processes and deletes its namespaces; networks leaked by a crashed
//! process are removed by the next [`Builder::build`] ([`cleanup_stale`]).
//!
//! Building needs root and iproute2 (and `snmpd` for SNMP hosts, `nft` for
//! ICMP-only ones); otherwise
//! [`Builder::build`] fails with [`TestNetError::Unavailable`] saying what is
//! missing, and [`Builder::build_or_skip`] skips the test unless
//! `OUTPOST_REQUIRE_NETNS=1`.
//!
//! ```no_run
//! use outpost_testnet::{HostSpec, TestNet};
//!
//! let Some(net) = TestNet::builder()
//!     .host(HostSpec::new().tcp_ports(&[22, 80]))
//!     .host(HostSpec::icmp_only())
//!     .host(HostSpec::silent())
//!     .build_or_skip()
//! else {
//!     return;
//! };
//! let status = net.scan_command("ping").args(["-c1", "-W1", &net.host(0).addr().to_string()]).status();
//! # let _ = status;
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

mod error;
mod host;
mod ip;
mod listener;
pub mod names;
mod net;
mod netns;
mod snmpd;
mod spec;

pub use error::TestNetError;
pub use host::{Host, MacAddr};
pub use names::cleanup_stale;
pub use net::{BRIDGE, Builder, MAX_HOSTS, REQUIRE_ENV, Subnet, TestNet, required};
pub use snmpd::{
    SNMP_COMMUNITY, SNMP_SYS_CONTACT, SNMP_SYS_LOCATION, SNMP_V3_USER, SNMP_V3_USERS, SnmpV3User, snmp_sys_name,
};
pub use spec::{Banner, HTTP_SERVER, HostKind, HostSpec, SSH_BANNER};
