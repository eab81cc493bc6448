//! The console behind a real reverse proxy (Debian's nginx): plain HTTP on
//! loopback with `--trusted-proxy`, clients reaching it only through nginx
//! from their own loopback addresses. Sign-in limiting counts each client by
//! the address nginx saw, not nginx's, a forged `X-Forwarded-For` changes
//! nothing, and the audit log names the client.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;

use outpost_tests::http::{Console, failed_login, login};
use outpost_tests::{Collector, Process, wait_for};

/// Failed sign-ins per client address before 429 (`console/src/rate_limit.rs`).
const MAX_FAILURES: usize = 5;

/// nginx in the foreground, one process, everything in `dir`, proxying
/// `listen` to `upstream` the way the README's reverse-proxy setup does.
fn nginx(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> Process {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 128; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         server {{\n    listen {listen};\n    location / {{\n      proxy_pass http://{upstream};\n\
         proxy_set_header Host $host;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p").arg(dir).arg("-c").arg(&path);
    let p = Process::spawn(cmd);
    wait_for("nginx to listen", || std::net::TcpStream::connect(listen).ok());
    p
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn client(proxy: SocketAddr, last_octet: u8) -> Console {
    Console::plain(proxy).from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
}

#[test]
fn sign_in_limits_and_the_audit_log_see_each_client_through_nginx() {
    let mut c = Collector::init();
    c.serve_args = vec![
        "--console-plain-http".into(),
        "--trusted-proxy".into(),
        "127.0.0.1".into(),
    ];
    c.start();
    let upstream = c.console_addr.expect("console");
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = free_port();
    let _nginx = nginx(dir.path(), listen, upstream);

    let a = client(listen, 5);
    for i in 0..MAX_FAILURES {
        assert_eq!(failed_login(&a, &format!("a{i}"), None), 401, "attempt {i}");
    }
    assert_eq!(failed_login(&a, "a-last", None), 429, "client .5 is out");
    // nginx appends the address it saw to whatever the client claimed, and
    // the collector reads right to left: a forged entry is never the client.
    assert_eq!(failed_login(&a, "a-forged", Some("127.0.0.99")), 429);
    assert_eq!(failed_login(&a, "a-forged-2", Some("127.0.0.6, 127.0.0.1")), 429);

    // Another client behind the same proxy has its own bucket.
    let b = client(listen, 6);
    assert_eq!(failed_login(&b, "b0", None), 401, "client .6 is not limited by .5");
    // And a third signs in; the audit log names it, not the proxy.
    let cookie = login(&client(listen, 7), "admin", &c.admin_password);
    assert!(cookie.starts_with("outpost_session="));

    let csv = c.audit_csv();
    let line = |source: &str, outcome: &str| {
        csv.lines()
            .any(|l| l.contains(&format!(",{source},console.login,")) && l.contains(&format!(",{outcome},")))
    };
    assert!(line("127.0.0.7", "success"), "{csv}");
    assert!(line("127.0.0.5", "failure"), "{csv}");
    assert!(line("127.0.0.6", "failure"), "{csv}");
    assert!(
        !csv.contains(",127.0.0.1,console.login,") && !csv.contains(",127.0.0.99,"),
        "neither the proxy's address nor a forged one is recorded: {csv}"
    );
    // nginx did relay every request (its log holds the clients' addresses).
    let access = std::fs::read_to_string(dir.path().join("access.log")).expect("nginx access log");
    assert!(access.lines().any(|l| l.starts_with("127.0.0.5 ")), "{access}");
    assert!(access.lines().any(|l| l.starts_with("127.0.0.7 ")), "{access}");
}
