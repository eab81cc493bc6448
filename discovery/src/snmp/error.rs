//! Why an SNMP query failed, split by what the operator has to fix.
//!
//! What an agent does with bad credentials decides what can be told apart:
//! - a wrong v2c community is dropped without an answer, indistinguishable
//!   from a host that is down or has SNMP off: [`SnmpError::Timeout`];
//! - an unknown SNMPv3 user and a wrong authentication password both come
//!   back as unauthenticated Report PDUs (usmStatsUnknownUserNames,
//!   usmStatsWrongDigests), which snmp2 reports alike as "not
//!   authenticated"; a second, unauthenticated request tells them apart
//!   ([`SnmpError::UnknownUser`], [`SnmpError::AuthenticationFailed`]);
//! - a wrong privacy password leaves net-snmp unable to decrypt and it
//!   answers nothing, so it shows as a timeout after a successful engine
//!   discovery, and the timeout says so.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::credentials::CredentialsError;

/// A failed SNMP query.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SnmpError {
    /// Nothing answered, after every retry.
    #[error("no answer from {target} within {waited:?} ({attempts} attempts): {hint}")]
    Timeout {
        /// The agent's address.
        target: SocketAddr,
        /// Total time waited.
        waited: Duration,
        /// Requests sent.
        attempts: u32,
        /// What the silence probably means, for the operator.
        hint: &'static str,
    },
    /// The host or a router sent an ICMP error, most often "port
    /// unreachable": the host is up and nothing listens on the SNMP port.
    #[error("{target} refused SNMP: an ICMP error came back (nothing listens on the port, or no route to the host)")]
    Unreachable {
        /// The agent's address.
        target: SocketAddr,
    },
    /// The agent does not know the SNMPv3 user (usmStatsUnknownUserNames).
    #[error("the agent at {target} does not know SNMPv3 user {user:?} (usmStatsUnknownUserNames)")]
    UnknownUser {
        /// The agent's address.
        target: SocketAddr,
        /// The user name we sent.
        user: String,
    },
    /// The agent knows the user but rejected our authentication: a wrong
    /// authentication password or protocol (usmStatsWrongDigests), or a
    /// security level the user is not configured for.
    #[error(
        "SNMPv3 authentication of user {user:?} failed at {target}: wrong authentication password or protocol \
         (or the user is not set up for this security level)"
    )]
    AuthenticationFailed {
        /// The agent's address.
        target: SocketAddr,
        /// The user name we sent.
        user: String,
    },
    /// An encrypted exchange failed: the agent's answer could not be
    /// decrypted, or came back unencrypted (as a usmStatsDecryptionErrors
    /// report does).
    #[error("SNMPv3 decryption with {target} failed: {detail} (wrong privacy password or protocol?)")]
    Decryption {
        /// The agent's address.
        target: SocketAddr,
        /// What went wrong.
        detail: String,
    },
    /// Another SNMPv3 security failure: engine id, time window, signature
    /// of the answer.
    #[error("SNMPv3 security check with {target} failed: {detail}")]
    Security {
        /// The agent's address.
        target: SocketAddr,
        /// What went wrong.
        detail: String,
    },
    /// The agent refused to show the objects (authorizationError or
    /// noAccess): the credentials are right but their access rules, e.g. an
    /// SNMPv3 user allowed only with privacy, do not allow reading.
    #[error(
        "the agent at {target} denied access (error status {status}): the credentials' access rules do not allow reading"
    )]
    AccessDenied {
        /// The agent's address.
        target: SocketAddr,
        /// The error status.
        status: u32,
    },
    /// The agent answered with another error status.
    #[error("the agent at {target} answered with error status {status} at varbind {index}")]
    ErrorStatus {
        /// The agent's address.
        target: SocketAddr,
        /// The error status (RFC 3416).
        status: u32,
        /// Which varbind, from 1; 0 for the whole request.
        index: u32,
    },
    /// The answer could not be parsed or does not belong to our request.
    #[error("malformed SNMP answer from {target}: {detail}")]
    Malformed {
        /// The agent's address.
        target: SocketAddr,
        /// What was wrong.
        detail: String,
    },
    /// Opening the socket failed.
    #[error("cannot open an SNMP socket to {target}: {source}")]
    Io {
        /// The agent's address.
        target: SocketAddr,
        /// The socket error.
        source: Arc<std::io::Error>,
    },
    /// The credentials cannot work with any agent.
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
}

impl SnmpError {
    /// Whether the agent gave no sign of life at all; worth trying other
    /// credentials or nothing, depending on the caller.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}
