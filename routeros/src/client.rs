//! A logged-in RouterOS API session that runs many commands at once over one
//! connection, told apart by `.tag`.
//!
//! One persistent session per router is the intended use: logging in on every
//! poll fills the router's log, and small boards cope badly with many
//! connections. The caller bounds how many commands it runs at once.
//!
//! A `!fatal`, an I/O error or broken framing ends the session: every command
//! in flight fails with that error, [`Client::is_closed`] turns true, and the
//! caller connects again. A `!trap` fails only its own command.

mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::connection::Connection;
use crate::error::Error;
use crate::login::{self, LoginKind};
use crate::sentence::{Attrs, Command};
use crate::tls::{self, Fingerprint};
use session::{Event, Io, Mode, Session};

/// Most rows [`Client::run`] collects: far above any sane print with
/// `.proplist`, low enough that a runaway reply cannot exhaust memory.
pub const MAX_ROWS_PER_RUN: usize = 200_000;

/// How to reach the router's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plain API, TCP 8728: credentials travel in clear; trusted networks only.
    Plain,
    /// API-SSL, TCP 8729, with trust-on-first-use pinning (see [`crate::tls`]).
    Tls {
        /// Accept only this certificate; `None` accepts any and reports its
        /// fingerprint in [`SessionInfo`].
        pin: Option<Fingerprint>,
    },
}

/// Where and how to log in.
#[derive(Clone)]
pub struct ClientConfig {
    /// IP address or DNS name.
    pub host: String,
    /// API port.
    pub port: u16,
    /// Plain or TLS.
    pub transport: Transport,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Limit for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Limit for login and for each [`Client::run`].
    pub command_timeout: Duration,
}

impl ClientConfig {
    /// Plain API on 8728 with 10 s connect and 30 s command timeouts.
    pub fn plain(host: impl Into<String>, user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: 8728,
            transport: Transport::Plain,
            user: user.into(),
            password: password.into(),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
        }
    }

    /// API-SSL on 8729, pinned to `pin` if given, same timeouts as [`Self::plain`].
    pub fn tls(
        host: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
        pin: Option<Fingerprint>,
    ) -> Self {
        Self {
            port: 8729,
            transport: Transport::Tls { pin },
            ..Self::plain(host, user, password)
        }
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("transport", &self.transport)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// What was learnt while connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// SHA-256 of the router's leaf certificate (API-SSL only): pin it.
    pub tls_fingerprint: Option<Fingerprint>,
    /// Which login the router accepted.
    pub login: LoginKind,
}

/// One logged-in session. Commands may run concurrently from several tasks
/// through `&Client`. Dropping it closes the connection.
#[derive(Debug)]
pub struct Client {
    session: Arc<Session>,
    command_timeout: Duration,
}

impl Client {
    /// Connects, runs the TLS handshake if configured, and logs in.
    pub async fn connect(cfg: ClientConfig) -> Result<(Client, SessionInfo), Error> {
        let addr = cfg.addr();
        let connecting = async {
            let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port))
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => Error::Refused { addr: addr.clone() },
                    _ => Error::Unreachable {
                        addr: addr.clone(),
                        source: Arc::new(e),
                    },
                })?;
            // Sentences are small and latency matters more than packet count.
            let _ = tcp.set_nodelay(true);
            match &cfg.transport {
                Transport::Plain => Ok::<_, Error>((Box::new(tcp) as Box<dyn Io>, None)),
                Transport::Tls { pin } => {
                    let (stream, fingerprint) = tls::handshake(tcp, &cfg.host, *pin).await?;
                    Ok((Box::new(stream) as Box<dyn Io>, Some(fingerprint)))
                }
            }
        };
        let (stream, tls_fingerprint) =
            tokio::time::timeout(cfg.connect_timeout, connecting)
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("connect to {addr}"),
                })??;
        let (client, login) = Self::over_stream(stream, &cfg).await?;
        Ok((client, SessionInfo { tls_fingerprint, login }))
    }

    /// Logs in over an already connected byte stream (e.g. an in-memory pipe
    /// to a simulator) and starts the session; `host`, `port`, `transport`
    /// and `connect_timeout` of `cfg` are not used.
    pub async fn over_stream<S>(stream: S, cfg: &ClientConfig) -> Result<(Client, LoginKind), Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut conn = Connection::new(Box::new(stream) as Box<dyn Io>);
        let login = tokio::time::timeout(cfg.command_timeout, login::login(&mut conn, &cfg.user, &cfg.password))
            .await
            .map_err(|_| Error::Timeout { what: "login".into() })??;
        let client = Client {
            session: Session::start(conn),
            command_timeout: cfg.command_timeout,
        };
        Ok((client, login))
    }

    /// Runs a command to completion: its `!re` rows, in order.
    ///
    /// `!trap` gives [`Error::Trap`] (after the `!done` that follows);
    /// `!empty` (7.18+) gives no rows. After the command timeout the command
    /// is cancelled on the router (`/cancel`) and [`Error::Timeout`] returned.
    pub async fn run(&self, command: &Command) -> Result<Vec<Attrs>, Error> {
        let (tag, mut rx) = self.session.send(command, Mode::Collect)?;
        let guard = CancelOnDrop {
            session: &self.session,
            tag,
        };
        let collect = async {
            let mut rows = Vec::new();
            let mut trap = None;
            loop {
                match rx.recv().await {
                    Some(Event::Row(_)) if rows.len() == MAX_ROWS_PER_RUN => {
                        return Err(Error::TooManyRows {
                            command: command.path().to_owned(),
                            limit: MAX_ROWS_PER_RUN,
                        });
                    }
                    Some(Event::Row(row)) => rows.push(row),
                    Some(Event::Trap { message, category }) => trap = Some((message, category)),
                    Some(Event::Done) => {
                        return match trap {
                            None => Ok(rows),
                            Some((message, category)) => Err(Error::Trap {
                                command: command.path().to_owned(),
                                message,
                                category,
                            }),
                        };
                    }
                    None => return Err(self.session.death()),
                }
            }
        };
        let result = tokio::time::timeout(self.command_timeout, collect)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    what: format!("command {}", command.path()),
                })
            });
        drop(guard);
        result
    }

    /// Starts a command that streams rows until cancelled
    /// (`/interface/monitor-traffic`, `…/listen`, `=follow=`). No timeout
    /// applies: a stream may be quiet for a long time.
    pub async fn stream(&self, command: &Command) -> Result<ReplyStream, Error> {
        let (tag, rx) = self.session.send(command, Mode::Stream)?;
        Ok(ReplyStream {
            session: Arc::clone(&self.session),
            tag,
            rx,
            command: command.path().to_owned(),
            finished: false,
        })
    }

    /// Whether the session has ended; if so, connect again.
    pub fn is_closed(&self) -> bool {
        self.session.is_dead()
    }

    /// Ends the session: commands in flight fail with [`Error::Closed`].
    pub fn close(self) {
        self.session.shutdown();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.session.shutdown();
    }
}

/// Cancels a command whose caller stopped waiting (timeout or dropped future).
struct CancelOnDrop<'a> {
    session: &'a Session,
    tag: u64,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        // A no-op when the command finished: `!done` removed its entry.
        self.session.cancel(self.tag);
    }
}

/// Rows of a streaming command as they arrive. Dropping it cancels the
/// command on the router.
#[derive(Debug)]
pub struct ReplyStream {
    session: Arc<Session>,
    tag: u64,
    rx: mpsc::Receiver<Event>,
    command: String,
    finished: bool,
}

impl ReplyStream {
    /// The next row; `None` once the router ends the command (`!done`).
    /// A `!trap` is returned as [`Error::Trap`], then the stream ends.
    /// Cancel-safe, so it can be used in `tokio::select!`.
    pub async fn next(&mut self) -> Option<Result<Attrs, Error>> {
        if self.finished {
            return None;
        }
        match self.rx.recv().await {
            Some(Event::Row(row)) => Some(Ok(row)),
            Some(Event::Trap { message, category }) => {
                // The router ends a trapped command itself (`!done` follows):
                // stop routing it without sending a `/cancel`.
                self.finished = true;
                self.session.forget(self.tag);
                Some(Err(Error::Trap {
                    command: self.command.clone(),
                    message,
                    category,
                }))
            }
            Some(Event::Done) => {
                self.finished = true;
                None
            }
            None => {
                self.finished = true;
                Some(Err(if self.session.is_dead() {
                    self.session.death()
                } else {
                    Error::Overrun {
                        command: self.command.clone(),
                    }
                }))
            }
        }
    }

    /// Stops the command on the router; its closing `!trap` ("interrupted")
    /// and `!done` are dropped.
    pub fn cancel(mut self) {
        self.finished = true;
        self.session.cancel(self.tag);
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        self.session.cancel(self.tag);
    }
}
