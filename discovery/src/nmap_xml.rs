//! Import of `nmap -oX` output (`nmap.dtd`, root `<nmaprun>`,
//! xmloutputversion 1.05).
//!
//! What is read, by element path:
//!
//! ```text
//! nmaprun@args,@start
//!   host
//!     status@state
//!     address@addr,@addrtype(ipv4|ipv6|mac),@vendor
//!     hostnames/hostname@name,@type(user|PTR)
//!     ports/port@protocol,@portid
//!       state@state,@reason
//!       service@name,@product,@version,@extrainfo
//!     os/osmatch@name,@accuracy
//!   runstats/finished@exit
//! ```
//!
//! Everything else (`hosthint`, `times`, `trace`, scripts, …) is skipped,
//! however deeply nested. Elements may be self-closing or not.
//!
//! A scan nmap did not finish — stopped by SIGINT, killed, or a file still
//! being written — ends without `runstats` and `</nmaprun>`, possibly in the
//! middle of a tag. It is refused like any malformed document
//! ([`NmapXmlError::Truncated`], with the position where it ends): an import
//! is all of a file or nothing, so the inventory never takes a cut-short
//! scan for the whole picture.
//!
//! Limits: input of at most [`MAX_INPUT_BYTES`] (64 MiB, a /16 with a few
//! open ports per host fits several times over) and at most [`MAX_HOSTS`]
//! hosts (a /16); elements nested at most 256 deep.

mod error;
mod reader;

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

pub use error::{NmapXmlError, Position};

/// Largest input accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 << 20;
/// Most hosts accepted in one scan.
pub const MAX_HOSTS: usize = 65_536;

/// One nmap run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapScan {
    /// Hosts in document order.
    pub hosts: Vec<NmapHost>,
    /// The command line nmap ran with.
    pub args: Option<String>,
    /// When the scan started, UNIX seconds.
    pub started: Option<i64>,
    /// nmap wrote its final `runstats/finished` and did not report an error.
    pub finished: bool,
}

/// One scanned host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapHost {
    /// Whether nmap found it up; [`HostState::Unknown`] also when the host
    /// has no `status`.
    pub state: HostState,
    /// IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
    /// MAC address, known when nmap scanned the host's own link.
    pub mac: Option<[u8; 6]>,
    /// nmap's vendor name for the MAC.
    pub mac_vendor: Option<String>,
    /// Names from the command line (`user`) and reverse DNS (`PTR`).
    pub hostnames: Vec<Hostname>,
    /// Ports nmap reported on (with default settings, closed and filtered
    /// ports beyond a few are summarised by nmap and not listed).
    pub ports: Vec<NmapPort>,
    /// OS detection guesses, best first.
    pub os_matches: Vec<OsMatch>,
}

/// `status@state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HostState {
    /// Responded.
    Up,
    /// Did not respond.
    Down,
    /// nmap could not tell, or the host has no status.
    #[default]
    Unknown,
    /// Not scanned (e.g. excluded or out of time).
    Skipped,
}

/// A host name and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hostname {
    /// The name.
    pub name: String,
    /// Where nmap got it; the DTD leaves it optional.
    pub kind: Option<HostnameKind>,
}

/// `hostname@type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostnameKind {
    /// Given on the command line.
    User,
    /// From reverse DNS.
    Ptr,
}

/// One port of a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NmapPort {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port number (protocol number for an IP protocol scan).
    pub port: u16,
    /// What nmap concluded.
    pub state: PortState,
    /// Why, e.g. `syn-ack`, `conn-refused`.
    pub reason: Option<String>,
    /// Service name, e.g. `ssh` (from nmap's port table unless `-sV` probed it).
    pub service: Option<String>,
    /// Product, e.g. `OpenSSH` (`-sV`).
    pub product: Option<String>,
    /// Product version (`-sV`).
    pub version: Option<String>,
    /// Extra detail, e.g. `protocol 2.0` (`-sV`).
    pub extrainfo: Option<String>,
}

/// `port@protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IP protocol scan (`-sO`).
    Ip,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// `state@state`: the port states nmap prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PortState {
    /// Something accepts connections.
    Open,
    /// Reachable, nothing listening.
    Closed,
    /// No answer or a filtering answer.
    Filtered,
    /// Reachable, open or closed unknown (ACK scan).
    Unfiltered,
    /// `open|filtered`.
    OpenFiltered,
    /// `closed|filtered`.
    ClosedFiltered,
    /// `unknown`, or no `state` element.
    #[default]
    Unknown,
}

/// One OS detection guess.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OsMatch {
    /// e.g. `Linux 4.15 - 5.8`.
    pub name: String,
    /// Confidence, 0 to 100.
    pub accuracy: u8,
}

/// Parses nmap XML output held in memory.
pub fn parse(xml: &[u8]) -> Result<NmapScan, NmapXmlError> {
    if xml.len() > MAX_INPUT_BYTES {
        return Err(NmapXmlError::TooLarge { max: MAX_INPUT_BYTES });
    }
    reader::parse(xml)
}

/// Reads and parses an nmap XML file. Blocking: call it from a blocking
/// thread in async code.
pub fn read_file(path: &Path) -> Result<NmapScan, NmapXmlError> {
    let read_error = |source| NmapXmlError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut xml = Vec::new();
    // One byte over the limit is enough to know the file is too large.
    file.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(read_error)?;
    parse(&xml)
}

#[cfg(test)]
mod tests;
