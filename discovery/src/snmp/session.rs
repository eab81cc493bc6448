//! Requests to one agent with a time limit, bounded retries, and failures
//! turned into [`SnmpError`]s that name the cause.
//!
//! snmp2's sessions neither time out nor retry, and a late answer to an
//! abandoned request stays queued on the socket where the next request
//! would read it (and fail with a request-id mismatch). So every attempt
//! runs under `tokio::time::timeout`, and after a timeout the next attempt
//! opens a fresh socket (for SNMPv3 also a fresh engine discovery): a late
//! answer then goes to a closed port.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use snmp2::AsyncSession;
use snmp2::v3::AuthErrorKind;
use tokio::time::Instant;

use super::credentials::{Credentials, SecurityLevel, V3Security};
use super::error::SnmpError;
use super::usm_probe::{self, UserCheck};
use super::value::{ObjectId, Value, VarBind};

/// How often in a row an agent may move our idea of its engine time
/// (snmp2's `AuthUpdated`) before we give up.
const MAX_RESYNCS: u32 = 3;

/// RFC 3416 error statuses that mean "not allowed", not "broken".
const NO_ACCESS: u32 = 6;
const AUTHORIZATION_ERROR: u32 = 16;

/// sysUpTime.0, for the authentication-only check.
const SYS_UPTIME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];

/// One agent, one set of credentials.
pub(crate) struct Session {
    target: SocketAddr,
    credentials: Credentials,
    per_attempt: Duration,
    attempts: u32,
    /// Boxed: snmp2's session is large, and is moved around in futures.
    inner: Option<Box<AsyncSession>>,
    next_request_id: i32,
    /// An SNMPv3 engine discovery has been answered.
    discovered: bool,
}

/// What went wrong in one attempt, before it is explained.
enum Failure {
    Open(std::io::Error),
    Snmp(snmp2::Error),
    Status { status: u32, index: u32 },
    Malformed(String),
}

impl Session {
    /// `timeout` bounds each request including its retries: each of the
    /// `retries + 1` attempts gets an equal share.
    pub(crate) fn new(target: SocketAddr, credentials: &Credentials, timeout: Duration, retries: u32) -> Self {
        let attempts = retries.saturating_add(1);
        Self {
            target,
            credentials: credentials.clone(),
            per_attempt: (timeout / attempts).max(Duration::from_millis(1)),
            attempts,
            inner: None,
            // Different per session, so ids from a previous query's socket
            // are unlikely to match; the value itself does not matter.
            next_request_id: i32::try_from(
                std::time::SystemTime::UNIX_EPOCH
                    .elapsed()
                    .map_or(1, |d| d.subsec_nanos() >> 2),
            )
            .unwrap_or(1),
            discovered: false,
        }
    }

    /// GetRequest for `oids`.
    pub(crate) async fn get(&mut self, oids: &[ObjectId]) -> Result<Vec<VarBind>, SnmpError> {
        match self.request(oids, None).await {
            Ok(varbinds) => Ok(varbinds),
            Err(failure) => Err(self.explain(failure).await),
        }
    }

    /// GetBulkRequest for `oids`, no non-repeaters.
    pub(crate) async fn get_bulk(
        &mut self,
        oids: &[ObjectId],
        max_repetitions: u32,
    ) -> Result<Vec<VarBind>, SnmpError> {
        match self.request(oids, Some(max_repetitions)).await {
            Ok(varbinds) => Ok(varbinds),
            Err(failure) => Err(self.explain(failure).await),
        }
    }

    /// Attempts until an answer, a failure that retrying cannot fix, or the
    /// attempts run out (`Ok(Err(waited))`).
    async fn request(
        &mut self,
        oids: &[ObjectId],
        bulk: Option<u32>,
    ) -> Result<Vec<VarBind>, Result<Failure, Duration>> {
        let started = Instant::now();
        let mut tries = 0;
        let mut resyncs = 0;
        // Every turn either returns or counts a try or a resync, both bounded.
        while tries < self.attempts {
            match tokio::time::timeout(self.per_attempt, self.attempt(oids, bulk)).await {
                Ok(Ok(varbinds)) => return Ok(varbinds),
                Err(_elapsed) => {
                    tries += 1;
                    self.inner = None;
                }
                Ok(Err(Failure::Snmp(snmp2::Error::RequestIdMismatch))) => {
                    tries += 1;
                    self.inner = None;
                }
                // The agent's engine boots or time moved (first contact, or
                // a reboot); snmp2 has taken the new values: repeat at once.
                Ok(Err(Failure::Snmp(
                    snmp2::Error::AuthUpdated | snmp2::Error::AuthFailure(AuthErrorKind::ReplyNotEncrypted),
                ))) if resyncs < MAX_RESYNCS => resyncs += 1,
                Ok(Err(failure)) => return Err(Ok(failure)),
            }
        }
        Err(Err(started.elapsed()))
    }

    async fn attempt(&mut self, oids: &[ObjectId], bulk: Option<u32>) -> Result<Vec<VarBind>, Failure> {
        if self.inner.is_none() {
            let id = self.next_request_id;
            self.next_request_id = self.next_request_id.wrapping_add(1000);
            let mut session = match &self.credentials {
                Credentials::V2c { community } => AsyncSession::new_v2c(self.target, community.as_bytes(), id).await,
                Credentials::V3 { user, security } => {
                    AsyncSession::new_v3(self.target, id, security.to_snmp2(user)).await
                }
            }
            .map_err(Failure::Open)?;
            // Engine discovery for SNMPv3, nothing for v2c.
            session.init().await.map_err(Failure::Snmp)?;
            self.discovered |= matches!(self.credentials, Credentials::V3 { .. });
            self.inner = Some(Box::new(session));
        }
        let Some(session) = self.inner.as_mut() else {
            return Err(Failure::Malformed("no session".into()));
        };
        let oids: Vec<snmp2::Oid<'static>> = oids
            .iter()
            .map(|oid| {
                oid.to_snmp()
                    .ok_or_else(|| Failure::Malformed(format!("cannot encode OID {oid}")))
            })
            .collect::<Result<_, _>>()?;
        let refs: Vec<&snmp2::Oid<'_>> = oids.iter().collect();
        let pdu = match bulk {
            None => session.get_many(&refs).await,
            Some(max_repetitions) => session.getbulk(&refs, 0, max_repetitions).await,
        }
        .map_err(Failure::Snmp)?;
        if pdu.error_status != 0 {
            return Err(Failure::Status {
                status: pdu.error_status,
                index: pdu.error_index,
            });
        }
        pdu.varbinds
            .map(|(oid, value)| {
                let oid = ObjectId::from_snmp(&oid)
                    .ok_or_else(|| Failure::Malformed(format!("OID {oid} has an arc above 2^64")))?;
                Ok(VarBind {
                    oid,
                    value: Value::from_snmp(&value),
                })
            })
            .collect()
    }

    /// Turns a failure into the error the operator can act on.
    async fn explain(&self, failure: Result<Failure, Duration>) -> SnmpError {
        let target = self.target;
        let failure = match failure {
            Ok(failure) => failure,
            Err(waited) => {
                return SnmpError::Timeout {
                    target,
                    waited,
                    attempts: self.attempts,
                    hint: self.timeout_hint(),
                };
            }
        };
        match failure {
            // A UDP connect fails at once when there is no route.
            Failure::Open(e) if matches!(e.kind(), ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable) => {
                SnmpError::Unreachable { target }
            }
            Failure::Open(e) => SnmpError::Io {
                target,
                source: Arc::new(e),
            },
            Failure::Status {
                status: status @ (NO_ACCESS | AUTHORIZATION_ERROR),
                ..
            } => SnmpError::AccessDenied { target, status },
            Failure::Status { status, index } => SnmpError::ErrorStatus { target, status, index },
            Failure::Malformed(detail) => SnmpError::Malformed { target, detail },
            Failure::Snmp(e) => match e {
                // On a connected UDP socket these are ICMP errors reported
                // by the kernel (snmp2 drops the io::Error).
                snmp2::Error::Send | snmp2::Error::Receive => SnmpError::Unreachable { target },
                snmp2::Error::AuthFailure(AuthErrorKind::NotAuthenticated) => self.explain_rejection().await,
                snmp2::Error::AuthFailure(
                    kind @ (AuthErrorKind::PrivLengthMismatch
                    | AuthErrorKind::PayloadLengthMismatch
                    | AuthErrorKind::KeyLengthMismatch),
                ) => SnmpError::Decryption {
                    target,
                    detail: format!("the agent's answer did not decrypt ({kind})"),
                },
                snmp2::Error::Crypto(detail) => SnmpError::Decryption { target, detail },
                snmp2::Error::AuthFailure(AuthErrorKind::ReplyNotEncrypted) => SnmpError::Security {
                    target,
                    detail: "the agent keeps answering encrypted requests without encryption \
                             (authenticated reports, e.g. usmStatsNotInTimeWindows)"
                        .into(),
                },
                snmp2::Error::AuthFailure(kind) => SnmpError::Security {
                    target,
                    detail: kind.to_string(),
                },
                snmp2::Error::AuthUpdated => SnmpError::Security {
                    target,
                    detail: format!("the agent changed its engine boots or time {MAX_RESYNCS} times in a row"),
                },
                other => SnmpError::Malformed {
                    target,
                    detail: other.to_string(),
                },
            },
        }
    }

    fn timeout_hint(&self) -> &'static str {
        match (self.credentials.level(), self.discovered) {
            (None, _) => "host down, SNMP off, or wrong community",
            (Some(_), false) => "host down or SNMP off (not even SNMPv3 engine discovery was answered)",
            (Some(SecurityLevel::AuthPriv), true) => {
                "the agent answered SNMPv3 engine discovery but not the encrypted request: wrong privacy password or \
                 protocol (agents drop what they cannot decrypt)"
            }
            (Some(_), true) => "the agent answered SNMPv3 engine discovery but not the request",
        }
    }

    /// The agent rejected an SNMPv3 request with an unauthenticated report,
    /// which snmp2 does not show us. An unauthenticated request tells an
    /// unknown user from a known one (see [`usm_probe`]); for authPriv, an
    /// authNoPriv request then tells a wrong authentication password from
    /// a wrong privacy password.
    async fn explain_rejection(&self) -> SnmpError {
        let target = self.target;
        let Credentials::V3 { user, security } = &self.credentials else {
            return SnmpError::Security {
                target,
                detail: "an SNMPv3 rejection of a v2c request".into(),
            };
        };
        let rejected = SnmpError::AuthenticationFailed {
            target,
            user: user.clone(),
        };
        match usm_probe::check_user(target, user, self.per_attempt).await {
            Ok(UserCheck::Unknown) => {
                return SnmpError::UnknownUser {
                    target,
                    user: user.clone(),
                };
            }
            Ok(UserCheck::Report(oid)) => {
                return SnmpError::Security {
                    target,
                    detail: format!("the agent rejects even unauthenticated requests of user {user:?} (report {oid})"),
                };
            }
            Ok(UserCheck::Known) => {}
            Err(e) => {
                tracing::debug!(%target, error = ?e, "could not tell an unknown SNMPv3 user from a wrong password");
                return rejected;
            }
        }
        let V3Security::AuthPriv {
            auth, auth_password, ..
        } = security
        else {
            return rejected;
        };
        let auth_only = Credentials::v3_auth_no_priv(user.clone(), *auth, auth_password.clone());
        let mut check = Session::new(target, &auth_only, self.per_attempt, 0);
        match check.request(&[ObjectId::new(&SYS_UPTIME)], None).await {
            // Any authenticated answer, even "access denied", proves the
            // authentication password right.
            Ok(_) | Err(Ok(Failure::Status { .. })) => SnmpError::Decryption {
                target,
                detail: "the agent rejected the encrypted request but accepts the user's authentication".into(),
            },
            Err(_) => rejected,
        }
    }
}
