//! Dialling the collector: TCP, then TLS with the caller's own rustls
//! configuration (which decides what the collector must prove), then HTTP/2
//! for tonic. Shared by the agent and the `outpost` command line.
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long a TCP connect plus TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// `host:port` of the collector's agent port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorAddr {
    host: String,
    port: u16,
}

impl CollectorAddr {
    /// The TLS server name: the host as dialled.
    pub fn server_name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.host.clone()).map_err(|e| format!("{:?} is not a valid host name: {e}", self.host))
    }
}

impl fmt::Display for CollectorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for CollectorAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid collector address {s:?}: expected HOST:PORT, e.g. collector.example.com:7443");
        let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// Errors while dialling.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// Bad address or server name.
    #[error("{0}")]
    Address(String),
    /// TCP, TLS or HTTP/2 failed.
    #[error("cannot connect to the collector at {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

/// An HTTP/2 channel over a fresh TLS connection.
pub async fn channel(addr: &CollectorAddr, tls: Arc<rustls::ClientConfig>) -> Result<Channel, DialError> {
    let server_name = addr.server_name().map_err(DialError::Address)?;
    let target = format!("{}:{}", addr.host, addr.port);
    let connector = tower::service_fn(move |_: Uri| {
        let (tls, server_name, target) = (tls.clone(), server_name.clone(), target.clone());
        async move {
            let tcp = TcpStream::connect(&target).await?;
            tcp.set_nodelay(true)?;
            let tcp = tokio::io::BufReader::with_capacity(crate::SOCKET_READ_BYTES, tcp);
            let stream = TlsConnector::from(tls).connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    // The URI only names the HTTP/2 authority; TLS is done by the connector above.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| DialError::Address(format!("invalid collector address {addr}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        // Tunnels stream bulk bytes to the agent and to the command line.
        .initial_stream_window_size(crate::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(crate::CONNECTION_WINDOW_BYTES)
        .max_frame_size(crate::MAX_FRAME_BYTES);
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|source| DialError::Connect {
            addr: addr.to_string(),
            source,
        })
}

/// The full cause chain of an error on one line, for messages to operators.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let a: CollectorAddr = "collector.example.com:7443".parse().expect("valid");
        assert_eq!(a.to_string(), "collector.example.com:7443");
        let b: CollectorAddr = "[::1]:7443".parse().expect("valid v6");
        assert_eq!(b.to_string(), "[::1]:7443");
        assert!(b.server_name().is_ok());
        for bad in ["", "host", "host:", ":7443", "host:0", "host:99999", "host:x"] {
            assert!(bad.parse::<CollectorAddr>().is_err(), "{bad}");
        }
    }
}
