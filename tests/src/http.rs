//! A minimal HTTP/1.1 client for console tests: one request per connection,
//! cookies handled by the caller, so every header the server sends is visible.
//! It speaks TLS (rustls, trusting only the collector CA) unless the console
//! serves plain HTTP.
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

/// Where a console is and how to reach it.
#[derive(Clone, Debug)]
pub struct Console {
    /// Its address.
    pub addr: SocketAddr,
    /// TLS settings; `None` for plain HTTP.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The local address connections come from (the OS picks when `None`).
    source: Option<IpAddr>,
}

impl Console {
    /// An HTTPS console whose certificate chains to the CA in `ca_pem`.
    pub fn https(addr: SocketAddr, ca_pem: &Path) -> Self {
        let pem = std::fs::read(ca_pem).unwrap_or_else(|e| panic!("read {}: {e}", ca_pem.display()));
        let ca = outpost_certs::pem::certificates("CA", &pem).expect("CA certificate");
        Self::https_trusting(addr, &ca, &[b"http/1.1"])
    }

    /// An HTTPS console trusting the certificates in `roots`, offering `alpn`.
    pub fn https_trusting(addr: SocketAddr, roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Self {
        Self {
            addr,
            tls: Some(Arc::new(client_config(roots, alpn))),
            source: None,
        }
    }

    /// A plain-HTTP console.
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            source: None,
        }
    }

    /// The same console, connecting from the local address `source` (on
    /// loopback, 127.0.0.2, 127.0.0.3, … are distinct clients to the server).
    pub fn from_source(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// The TLS client settings, if HTTPS.
    pub fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A connection: TLS over TCP, or TCP.
    pub fn connect(&self) -> Box<dyn ReadWrite> {
        let tcp = match self.source {
            None => TcpStream::connect(self.addr).expect("connect to console"),
            Some(source) => {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(self.addr),
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )
                .expect("socket");
                socket
                    .bind(&SocketAddr::new(source, 0).into())
                    .expect("bind the source address");
                socket.connect(&self.addr.into()).expect("connect to console");
                socket.into()
            }
        };
        tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let conn =
                    rustls::ClientConnection::new(config.clone(), server_name(self.addr.ip())).expect("TLS client");
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
        }
    }
}

/// A byte stream: a TCP or a TLS connection.
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A rustls client configuration trusting `roots`, offering `alpn`.
pub fn client_config(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("trust anchor");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(outpost_certs::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// The name a console at `ip` is checked against: the address itself.
pub fn server_name(ip: IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Response {
    /// First header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Value of cookie `name` from `Set-Cookie`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (n, v) = first.split_once('=')?;
            (n.trim() == name).then(|| v.trim().to_owned())
        })
    }
}

/// Percent-encodes a form value.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends one request and reads the whole response.
pub fn request(console: &Console, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let addr = console.addr;
    let mut s = console.connect();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without a TLS close_notify: what arrived is all there is.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => panic!("read response: {e}"),
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
    out
}

/// Logs in to the console as `user`; returns the session cookie header value.
pub fn login(console: &Console, user: &str, password: &str) -> String {
    let r = try_login(console, user, password);
    assert_eq!(r.status, 303, "login: {r:?}");
    let session = r.cookie("outpost_session").expect("session cookie");
    format!("outpost_session={session}")
}

/// Submits the console's login form as `user` (a fresh form and its CSRF
/// cookie first) and returns the answer, whatever it is.
pub fn try_login(console: &Console, user: &str, password: &str) -> Response {
    let page = request(console, "GET", "/login", &[], "");
    assert_eq!(page.status, 200, "login page: {page:?}");
    let csrf = page.cookie("outpost_login_csrf").expect("login CSRF cookie");
    let body = format!(
        "username={}&password={}&csrf={}",
        form_encode(user),
        form_encode(password),
        form_encode(&csrf)
    );
    let cookie = format!("outpost_login_csrf={csrf}");
    request(
        console,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        &body,
    )
}

/// The value of the first `name="csrf"` field of a console page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().expect("its value").to_owned()
}

/// A sign-in with a wrong password as `user` (a fresh form first), sending
/// `X-Forwarded-For: xff` when given; the answer's status.
pub fn failed_login(console: &Console, user: &str, xff: Option<&str>) -> u16 {
    let mut headers = vec![];
    if let Some(xff) = xff {
        headers.push(("X-Forwarded-For", xff));
    }
    let page = request(console, "GET", "/login", &headers, "");
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = page.cookie("outpost_login_csrf").expect("login CSRF cookie");
    let cookie = format!("outpost_login_csrf={csrf}");
    let body = format!(
        "username={}&password=wrong&csrf={}",
        form_encode(user),
        form_encode(&csrf)
    );
    headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    headers.push(("Cookie", &cookie));
    request(console, "POST", "/login", &headers, &body).status
}
