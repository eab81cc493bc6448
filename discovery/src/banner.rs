//! A light look at an open port: what the service says first (SSH, FTP,
//! SMTP and others speak before the client), an HTTP `HEAD` for the `Server`
//! header on web ports, and a RouterOS API `/login` on 8728 and on any port
//! that stays silent (the API speaks only when spoken to; a well-formed reply
//! sentence means it is there).
//! Each look is bounded in time and bytes; nothing is logged in to.
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// What a port showed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Banner {
    /// Service name, as nmap names them ("ssh", "http", "routeros-api").
    pub service: String,
    /// Product, e.g. "OpenSSH", "nginx".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// Version, e.g. "9.2p1".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// First line the service sent, or the HTTP Server header.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub banner: String,
}

/// Bytes read from a service at most.
const MAX_READ: usize = 4096;

/// Ports spoken to as HTTP.
const HTTP_PORTS: &[u16] = &[80, 81, 3000, 5000, 8000, 8008, 8080, 8081, 8888, 9999, 10000];

/// The usual service on `port`, for ports that say nothing.
pub fn service_name(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 26 | 587 => "smtp",
        53 => "domain",
        80 | 81 | 8000 | 8008 | 8080 | 8081 | 8888 => "http",
        110 => "pop3",
        111 => "rpcbind",
        135 => "msrpc",
        139 => "netbios-ssn",
        143 => "imap",
        161 => "snmp",
        179 => "bgp",
        389 => "ldap",
        443 | 8443 => "https",
        445 => "microsoft-ds",
        465 => "smtps",
        514 => "shell",
        631 => "ipp",
        993 => "imaps",
        995 => "pop3s",
        1433 => "ms-sql-s",
        1723 => "pptp",
        1900 => "upnp",
        2049 => "nfs",
        3128 => "squid-http",
        3306 => "mysql",
        3389 => "ms-wbt-server",
        5060 => "sip",
        5432 => "postgresql",
        5900 => "vnc",
        8291 => "winbox",
        8728 => "routeros-api",
        8729 => "routeros-api-ssl",
        9100 => "jetdirect",
        _ => "unknown",
    }
}

/// Reads what the peer sends within `wait`, up to [`MAX_READ`] bytes or the
/// first line.
async fn read_some(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_READ];
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + wait;
    while got < buf.len() {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                got += n;
                if buf[..got].contains(&b'\n') {
                    break;
                }
            }
        }
    }
    buf.truncate(got);
    buf
}

fn first_line(bytes: &[u8]) -> String {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let text: String = String::from_utf8_lossy(line)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    text.trim().to_owned()
}

/// `SSH-2.0-OpenSSH_9.2p1 Debian-2` → ("OpenSSH", "9.2p1").
fn ssh_product(line: &str) -> (String, String) {
    let software = line.splitn(3, '-').nth(2).unwrap_or_default();
    let software = software.split(' ').next().unwrap_or_default();
    match software.split_once('_') {
        Some((product, version)) => (product.to_owned(), version.to_owned()),
        None => (software.to_owned(), String::new()),
    }
}

/// `nginx/1.22.1 (Debian)` → ("nginx", "1.22.1").
fn http_product(server: &str) -> (String, String) {
    let first = server.split(' ').next().unwrap_or_default();
    match first.split_once('/') {
        Some((p, v)) => (p.to_owned(), v.to_owned()),
        None => (first.to_owned(), String::new()),
    }
}

fn from_greeting(port: u16, line: String) -> Banner {
    if line.starts_with("SSH-") {
        let (product, version) = ssh_product(&line);
        return Banner {
            service: "ssh".into(),
            product,
            version,
            banner: line,
        };
    }
    Banner {
        service: service_name(port).into(),
        banner: line,
        ..Banner::default()
    }
}

async fn http(stream: &mut TcpStream, host: &SocketAddr, wait: Duration) -> Option<Banner> {
    let request = format!(
        "HEAD / HTTP/1.0\r\nHost: {}\r\nUser-Agent: outpost-discovery\r\n\r\n",
        host.ip()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut chunk = [0u8; 1024];
    while buf.len() < MAX_READ && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/") {
        return None;
    }
    let server = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("server"))
        })
        .map(|(_, v)| {
            v.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .unwrap_or_default();
    let (product, version) = http_product(&server);
    Some(Banner {
        service: "http".into(),
        product,
        version,
        banner: server,
    })
}

async fn routeros_api(stream: &mut TcpStream, wait: Duration) -> Option<Banner> {
    let login = outpost_routeros::frame::encode_sentence(&["/login", ".tag=0"]);
    stream.write_all(&login).await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match outpost_routeros::frame::decode_sentence(&buf) {
            Ok(Some((words, _))) => {
                let first = words.first().map(|w| String::from_utf8_lossy(w).into_owned())?;
                return first.starts_with('!').then(|| Banner {
                    service: "routeros-api".into(),
                    product: "MikroTik RouterOS API".into(),
                    banner: first,
                    ..Banner::default()
                });
            }
            Ok(None) if buf.len() < MAX_READ => {}
            _ => return None,
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// Looks at the open `addr`, within `wait` for each exchange.
pub async fn grab(addr: SocketAddr, wait: Duration) -> Banner {
    let guess = Banner {
        service: service_name(addr.port()).into(),
        ..Banner::default()
    };
    let Ok(Ok(mut stream)) = tokio::time::timeout(wait, TcpStream::connect(addr)).await else {
        return guess;
    };
    let port = addr.port();
    if port == 8728 {
        return routeros_api(&mut stream, wait).await.unwrap_or(guess);
    }
    if HTTP_PORTS.contains(&port) {
        return http(&mut stream, &addr, wait).await.unwrap_or(guess);
    }
    // Server-first protocols speak at once; give them the wait.
    let greeting = read_some(&mut stream, wait).await;
    if greeting.is_empty() {
        // A silent service may be a RouterOS API on a port of its own.
        return routeros_api(&mut stream, wait).await.unwrap_or(guess);
    }
    from_greeting(port, first_line(&greeting))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(reply: &'static [u8], wait_for_request: bool) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            if wait_for_request {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
            }
            let _ = s.write_all(reply).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        addr
    }

    #[tokio::test]
    async fn ssh_greetings_name_product_and_version() {
        let addr = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", false).await;
        let b = grab(addr, Duration::from_secs(2)).await;
        assert_eq!(
            (b.service.as_str(), b.product.as_str(), b.version.as_str()),
            ("ssh", "OpenSSH", "9.2p1")
        );
        assert_eq!(b.banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
        assert_eq!(ssh_product("SSH-2.0-ROSSSH"), ("ROSSSH".into(), String::new()));
    }

    #[tokio::test]
    async fn a_silent_port_keeps_the_guess_and_garbage_is_trimmed() {
        let addr = serve_once(b"", false).await;
        let b = grab(addr, Duration::from_millis(300)).await;
        assert_eq!(b.banner, "");
        let addr = serve_once(b"220 \x1b[31mftp\x07 ready\r\nmore", false).await;
        let b = grab(addr, Duration::from_secs(2)).await;
        assert_eq!(b.banner, "220 [31mftp ready");
    }

    #[test]
    fn http_server_headers_split_into_product_and_version() {
        assert_eq!(http_product("nginx/1.22.1 (Debian)"), ("nginx".into(), "1.22.1".into()));
        assert_eq!(http_product("mikrotik routeros"), ("mikrotik".into(), String::new()));
        assert_eq!(service_name(8291), "winbox");
    }
}
