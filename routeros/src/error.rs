//! Why talking to a router failed, split by cause so the caller can tell an
//! unreachable router from bad credentials, a changed certificate or a command
//! the router refused.
//!
//! [`Error`] is `Clone` because one broken connection fails every command
//! waiting on it with the same error.

use std::sync::Arc;

use crate::connection::ConnectionError;
use crate::fingerprint::Fingerprint;

/// What the operator sees when the router's API-SSL service has no certificate.
///
/// The same alert also comes from a router that has a certificate but offers
/// only finite-field DHE suites (reported on RouterOS 6), which rustls does
/// not implement either; the two cannot be told apart on the wire.
pub const ANONYMOUS_TLS_HELP: &str = "the router's api-ssl service has no certificate (anonymous DH, not supported): \
     create a certificate on the router and set it on /ip service api-ssl, \
     or use the plain API on 8728 over a trusted network \
     (if a certificate is set, the router offers only DHE cipher suites: upgrade RouterOS)";

/// A failure to connect, log in or run a command.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing listens on the API port (TCP reset).
    #[error("connection to {addr} refused: is the api/api-ssl service enabled on the router?")]
    Refused {
        /// `host:port` as configured.
        addr: String,
    },
    /// A step did not finish in time.
    #[error("timed out: {what}")]
    Timeout {
        /// Which step: `connect to host:port`, `login`, or `command /path`.
        what: String,
    },
    /// The address could not be resolved or reached.
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        /// `host:port` as configured.
        addr: String,
        /// The socket error.
        source: Arc<std::io::Error>,
    },
    /// The router refused the user name or password.
    #[error("login refused: {0}")]
    LoginFailed(String),
    /// The credentials are right but the user's group lacks the `api` policy.
    #[error("login refused: the user's group lacks the 'api' policy (not allowed)")]
    NoApiPolicy,
    /// The router's certificate is not the pinned one.
    #[error("TLS certificate fingerprint {presented} does not match the pinned {expected}")]
    PinMismatch {
        /// The pinned fingerprint.
        expected: Fingerprint,
        /// What the router presented.
        presented: Fingerprint,
    },
    /// The router offers only anonymous Diffie-Hellman.
    #[error("{ANONYMOUS_TLS_HELP}")]
    AnonymousTlsUnsupported,
    /// Any other TLS failure.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The router answered a command with `!trap`.
    #[error("{command} failed: {message}")]
    Trap {
        /// The command's path, e.g. `/system/routerboard/print`.
        command: String,
        /// The trap's `=message=`.
        message: String,
        /// The trap's `=category=`, when given (0 missing item, 1 argument
        /// value failure, 2 interrupted, 3 script failure, 4 general failure,
        /// 5 API failure, 6 TTY failure, 7 `:return` value).
        category: Option<u32>,
    },
    /// The router sent `!fatal` and closed the session.
    #[error("router ended the session: {0}")]
    Fatal(String),
    /// The byte stream broke or carried something that is not the API.
    #[error("RouterOS API connection failed: {0}")]
    Protocol(Arc<ConnectionError>),
    /// A stream's consumer fell behind and rows were about to pile up.
    #[error("{command}: reader fell behind, stream cancelled")]
    Overrun {
        /// The streaming command's path.
        command: String,
    },
    /// A command returned more rows than [`crate::client::MAX_ROWS_PER_RUN`];
    /// it was cancelled (narrow it with queries, or stream it).
    #[error("{command} returned more than {limit} rows; cancelled")]
    TooManyRows {
        /// The command's path.
        command: String,
        /// The limit.
        limit: usize,
    },
    /// The session is closed (by [`crate::Client::close`] or by the router).
    #[error("RouterOS API session is closed")]
    Closed,
}

/// Coarse classes of [`Error`], for a device status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Refused, unreachable or timed out before logging in: the router is down
    /// or the service is off.
    Unreachable,
    /// Wrong user name or password.
    AuthFailed,
    /// The user lacks the `api` policy.
    NoApiPolicy,
    /// The certificate changed since it was pinned.
    TlsPinMismatch,
    /// TLS cannot work with this router as configured (anonymous DH, other
    /// handshake failures).
    TlsFailed,
    /// A command timed out on a logged-in session.
    Timeout,
    /// The router refused one command; the session is fine.
    CommandFailed,
    /// The session broke (I/O, framing, `!fatal`, closed); reconnect.
    SessionLost,
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Refused { .. } | Error::Unreachable { .. } => ErrorKind::Unreachable,
            Error::Timeout { what } if what.starts_with("command") => ErrorKind::Timeout,
            Error::Timeout { .. } => ErrorKind::Unreachable,
            Error::LoginFailed(_) => ErrorKind::AuthFailed,
            Error::NoApiPolicy => ErrorKind::NoApiPolicy,
            Error::PinMismatch { .. } => ErrorKind::TlsPinMismatch,
            Error::AnonymousTlsUnsupported | Error::Tls(_) => ErrorKind::TlsFailed,
            Error::Trap { .. } | Error::Overrun { .. } | Error::TooManyRows { .. } => ErrorKind::CommandFailed,
            Error::Fatal(_) | Error::Protocol(_) | Error::Closed => ErrorKind::SessionLost,
        }
    }

    /// Whether the router refused the command because it does not exist on
    /// this router (e.g. `/system/routerboard` on CHR).
    pub fn is_no_such_command(&self) -> bool {
        matches!(self, Error::Trap { message, .. } if message.contains("no such command"))
    }

    pub(crate) fn protocol(e: ConnectionError) -> Self {
        Error::Protocol(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_device_status() {
        let timeout = |what: &str| Error::Timeout { what: what.into() }.kind();
        assert_eq!(timeout("connect to 192.0.2.1:8728"), ErrorKind::Unreachable);
        assert_eq!(timeout("login"), ErrorKind::Unreachable);
        assert_eq!(timeout("command /interface/print"), ErrorKind::Timeout);
        assert_eq!(Error::NoApiPolicy.kind(), ErrorKind::NoApiPolicy);
        assert_eq!(Error::Closed.kind(), ErrorKind::SessionLost);
        assert!(
            Error::AnonymousTlsUnsupported
                .to_string()
                .contains("/ip service api-ssl")
        );
    }
}
