//! SNMP discovery: what a host's agent says about itself, its interfaces
//! and its LLDP neighbours, over SNMPv2c or SNMPv3 (USM).
//!
//! [`query_host`] reads the system group with one GET, then ifTable,
//! ifXTable and lldpRemTable column by column with GETBULK. The protocol
//! work is the `snmp2` crate's; this module adds what it lacks for
//! scanning networks full of hosts that do not answer:
//! - every request has a time limit and a bounded number of retries, each
//!   on a fresh socket (see `session`), so a silent agent costs at most
//!   the timeout and never hangs a scan;
//! - walks are bounded in rows and stop on an agent that goes backwards;
//! - failures are named by cause ([`SnmpError`]): no answer (host down,
//!   SNMP off or — for v2c, which agents drop silently — a wrong
//!   community), ICMP unreachable, unknown SNMPv3 user, wrong
//!   authentication, decryption, access denied, malformed answers;
//! - nothing read from the network panics; a malformed row or value is
//!   left out rather than failing the query.
//!
//! ```no_run
//! use std::time::Duration;
//! use outpost_discovery::snmp::{AuthProtocol, Credentials, PrivProtocol, query_host};
//!
//! # async fn scan() -> Result<(), outpost_discovery::snmp::SnmpError> {
//! let creds = Credentials::v3_auth_priv("monitor", AuthProtocol::Sha1, "authpass1", PrivProtocol::Aes128, "privpass1");
//! let info = query_host("192.0.2.1".parse().unwrap(), 161, &creds, Duration::from_secs(2)).await?;
//! if info.is_mikrotik() {
//!     println!("{:?} has {} interfaces", info.sys_name, info.interfaces.len());
//! }
//! # Ok(())
//! # }
//! ```

mod credentials;
mod error;
mod info;
mod query;
mod session;
mod system;
mod tables;
mod usm_probe;
mod value;
mod walk;

pub use credentials::{
    AuthProtocol, Credentials, CredentialsError, MIN_PASSWORD_LEN, PrivProtocol, SecurityLevel, V3Security,
};
pub use error::SnmpError;
pub use info::{Incomplete, Interface, LldpNeighbour, MIKROTIK_ENTERPRISE, OperStatus, SnmpInfo};
pub use query::{QueryOptions, query_host, query_host_with};
