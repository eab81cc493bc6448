//! TCP services of test hosts: a thread per port inside the host's
//! namespace, accepting connections and answering with a [`Banner`].
//!
//! Threads rather than processes, so a test needs no helper binary; they
//! poll a stop flag, so dropping the network joins them all and no socket
//! keeps a deleted namespace alive.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::spec::{Banner, HTTP_SERVER, SSH_BANNER};
use crate::{TestNetError, netns};

/// How often blocked accepts and reads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// How long one connection is served at most.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(5);
/// Largest HTTP request head read.
const MAX_REQUEST: usize = 8 * 1024;

/// The listener threads of one network.
#[derive(Default)]
pub(crate) struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Starts listening on `port` in namespace `ns`; returns once the port
    /// is bound, so connections made afterwards succeed.
    pub(crate) fn start(&mut self, ns: &str, port: u16, banner: Banner) -> Result<(), TestNetError> {
        let (bound_tx, bound_rx) = mpsc::channel();
        let stop = self.stop.clone();
        let ns_owned = ns.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("{ns}:{port}"))
            .spawn(move || {
                let listener = netns::enter(&ns_owned).and_then(|()| bind(port));
                match listener {
                    Ok(listener) => {
                        let _ = bound_tx.send(Ok(()));
                        accept_loop(&listener, &banner, &stop);
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| TestNetError::io("starting a listener thread", e))?;
        self.threads.push(thread);
        match bound_rx.recv() {
            Ok(result) => result,
            Err(_) => Err(TestNetError::io(
                format!("listening on {ns} port {port}"),
                std::io::Error::other("the listener thread ended early"),
            )),
        }
    }

    /// Stops every listener and waits for its threads.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            // A panicking listener already printed its message.
            let _ = thread.join();
        }
    }
}

/// Binds `[::]:port`, which takes IPv4 connections too (IPV6_V6ONLY is off
/// by default in a new namespace); falls back to `0.0.0.0` if the kernel
/// has no IPv6.
fn bind(port: u16) -> Result<TcpListener, TestNetError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))))
        .map_err(|e| TestNetError::io(format!("binding TCP port {port}"), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| TestNetError::io("making a listener non-blocking", e))?;
    Ok(listener)
}

fn accept_loop(listener: &TcpListener, banner: &Banner, stop: &Arc<AtomicBool>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                connections.retain(|c| !c.is_finished());
                let banner = banner.clone();
                let stop = stop.clone();
                if let Ok(thread) = std::thread::Builder::new().spawn(move || serve(stream, &banner, &stop)) {
                    connections.push(thread);
                }
            }
            // WouldBlock, or an aborted connection: nothing to serve now.
            Err(_) => std::thread::sleep(POLL),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve(mut stream: TcpStream, banner: &Banner, stop: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let deadline = Instant::now() + CONNECTION_LIFETIME;
    match banner {
        Banner::None => {
            read_until(&mut stream, stop, deadline, |_| false);
        }
        Banner::Ssh => {
            if stream.write_all(format!("{SSH_BANNER}\r\n").as_bytes()).is_ok() {
                read_until(&mut stream, stop, deadline, |_| false);
            }
        }
        Banner::Text(text) => {
            let _ = stream.write_all(text.as_bytes());
        }
        Banner::Http => {
            if read_until(&mut stream, stop, deadline, |head| {
                head.windows(4).any(|w| w == b"\r\n\r\n")
            }) {
                let body = "<html><body>test host</body></html>\n";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nServer: {HTTP_SERVER}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        }
    }
}

/// Reads until `done(read so far)`, the peer's half-close (both `true`),
/// or the stop flag, the deadline, an error or [`MAX_REQUEST`] bytes
/// (`false`).
fn read_until(stream: &mut TcpStream, stop: &AtomicBool, deadline: Instant, done: impl Fn(&[u8]) -> bool) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && seen.len() < MAX_REQUEST {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if done(&seen) {
                    return true;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    false
}
