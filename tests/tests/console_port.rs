//! The console port: HTTPS checked by the real `curl` (HTTP/1.1 and HTTP/2),
//! an operator's certificate replaced on disk while serving, plain HTTP only
//! on loopback, and `X-Forwarded-For` believed only from trusted proxies.
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use outpost_certs::ca::CertificateAuthority;
use outpost_tests::http::{Console, failed_login};
use outpost_tests::{Collector, OutputExt, bin, wait_for};

/// `curl` against `url`, trusting `ca`, with `args`; prints the HTTP version
/// and status code it got.
fn curl(ca: &Path, url: &str, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--output", "/dev/null"])
        .args(["--write-out", "%{http_version} %{response_code}"])
        .arg("--cacert")
        .arg(ca)
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (Debian package curl)")
}

#[test]
fn curl_speaks_https_with_http1_and_http2() {
    let mut c = Collector::init();
    c.start();
    assert!(c.console_https);
    let url = format!("{}/login", c.console().url());
    let ca = c.ca_file();

    let h1 = curl(&ca, &url, &["--http1.1"]).ok().stdout_text();
    assert_eq!(h1, "1.1 200");
    let h2 = curl(&ca, &url, &["--http2"]).ok().stdout_text();
    assert_eq!(h2, "2 200", "ALPN h2 is offered and served");
    // HTTP/2 without ALPN would not do: what curl negotiated must be h2.
    let verbose = curl(&ca, &url, &["--http2", "--verbose"]);
    assert!(
        verbose.stderr_text().contains("ALPN: server accepted h2"),
        "{}",
        verbose.stderr_text()
    );
    // Names the certificate was issued for at `init` verify too.
    let port = c.console_addr.expect("console").port();
    let by_name = curl(
        &ca,
        &format!("https://localhost:{port}/login"),
        &["--resolve", &format!("localhost:{port}:127.0.0.1")],
    )
    .ok()
    .stdout_text();
    // (curl asks for h2 over HTTPS unless told otherwise.)
    assert_eq!(by_name, "2 200");

    // `cert renew` with a new name: the running console serves the renewed
    // certificate (shared with the agent port), which the old one did not cover.
    let renewed = format!("https://renewed.example:{port}/login");
    let resolve = format!("renewed.example:{port}:127.0.0.1");
    assert_eq!(curl(&ca, &renewed, &["--resolve", &resolve]).status.code(), Some(60));
    c.cli(&["cert", "renew", "--san", "renewed.example"]).ok();
    wait_for("the renewed certificate on the console", || {
        curl(&ca, &renewed, &["--resolve", &resolve])
            .status
            .success()
            .then_some(())
    });

    // Without the collector CA, curl refuses the certificate.
    let untrusted = Command::new("curl")
        .args(["--silent", "--max-time", "20", "--output", "/dev/null", &url])
        .stdin(Stdio::null())
        .status()
        .expect("curl");
    assert_eq!(
        untrusted.code(),
        Some(60),
        "curl's 'peer certificate cannot be authenticated'"
    );
    // Plain HTTP to the HTTPS port gets no page.
    let plain = Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "20",
            "--output",
            "/dev/null",
            "--write-out",
            "%{response_code}",
        ])
        .arg(format!("http://{}/login", c.console_addr.expect("console")))
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert_ne!(plain.stdout_text(), "200");
}

/// A CA and a certificate it issued for 127.0.0.1, written as PEM files in
/// `dir`: `ca.crt`, and the chain and key at `cert`, `key`.
fn operator_certificate(dir: &Path, cert: &Path, key: &Path) -> PathBuf {
    let ca = CertificateAuthority::generate("Operator test CA").expect("CA");
    let server = ca.issue_server(&["127.0.0.1".to_owned()]).expect("server certificate");
    let ca_file = dir.join(format!("ca-{}.crt", unique_suffix()));
    std::fs::write(&ca_file, ca.cert_pem()).expect("write CA");
    replace(key, &server.key_pem);
    replace(cert, &server.chain_pem);
    ca_file
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Replaces `path` atomically, as a certificate manager would.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn an_operator_certificate_is_reloaded_when_its_files_change() {
    let files = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (files.path().join("console.crt"), files.path().join("console.key"));
    let first_ca = operator_certificate(files.path(), &cert, &key);
    let mut c = Collector::init();
    c.serve_args = vec![
        "--console-cert".into(),
        cert.display().to_string(),
        "--console-key".into(),
        key.display().to_string(),
    ];
    c.start();
    let url = format!("{}/login", c.console().url());
    assert_eq!(curl(&first_ca, &url, &[]).ok().stdout_text(), "2 200");
    // Not the collector CA's certificate.
    assert_eq!(curl(&c.ca_file(), &url, &[]).status.code(), Some(60));

    // A broken replacement is refused and the previous certificate kept.
    replace(
        &cert,
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    );
    c.server().wait_log("the changed console certificate is not usable");
    assert_eq!(curl(&first_ca, &url, &[]).ok().stdout_text(), "2 200");

    // A good one from another CA: new connections see it.
    let second_ca = operator_certificate(files.path(), &cert, &key);
    wait_for("the new console certificate served", || {
        curl(&second_ca, &url, &[]).status.success().then_some(())
    });
    assert!(c.server().logged("console certificate reloaded"));
    assert_eq!(curl(&first_ca, &url, &[]).status.code(), Some(60));
}

#[test]
fn plain_http_is_refused_on_a_non_loopback_address() {
    let c = Collector::init();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = Command::new(bin("outpost-collector"))
            .args(["serve", "--console-plain-http", "--console-addr", addr])
            .args(["--agent-addr", "127.0.0.1:0", "--data-dir"])
            .arg(c.data_dir())
            .stdin(Stdio::null())
            .output()
            .expect("run outpost-collector");
        assert_eq!(out.status.code(), Some(2), "a usage error: {out:?}");
        let err = out.stderr_text();
        assert!(
            err.contains("--console-plain-http") && err.contains("loopback"),
            "{err}"
        );
        assert!(!err.contains("listening"), "{err}");
    }
    // A certificate and plain HTTP contradict each other.
    let out = c.cli(&[
        "serve",
        "--console-plain-http",
        "--console-cert",
        "c",
        "--console-key",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Attempts per client address before sign-in is refused
/// (`console/src/rate_limit.rs`).
const MAX_FAILURES: usize = 5;

#[test]
fn forwarded_for_counts_only_from_trusted_proxies() {
    let mut c = Collector::init();
    c.serve_args = vec![
        "--console-plain-http".into(),
        "--trusted-proxy".into(),
        "127.0.0.1".into(),
    ];
    c.start();
    assert!(!c.console_https, "plain HTTP as asked");
    let addr = c.console_addr.expect("console");
    assert!(
        c.server().logged(&format!("console listening on http://{addr}/")),
        "{:?}",
        c.server().log()
    );
    // The trusted proxy (127.0.0.1) relays two clients: each has its own bucket.
    let proxy = Console::plain(addr);
    for i in 0..MAX_FAILURES {
        assert_eq!(
            failed_login(&proxy, &format!("a{i}"), Some("198.51.100.1, 203.0.113.1")),
            401
        );
    }
    assert_eq!(
        failed_login(&proxy, "a-last", Some("203.0.113.1")),
        429,
        "client one is out"
    );
    assert_eq!(
        failed_login(&proxy, "b0", Some("203.0.113.1, 203.0.113.2")),
        401,
        "client two has its own bucket"
    );
    // Client one cannot escape by forging an entry left of the proxy's.
    assert_eq!(failed_login(&proxy, "a-forged", Some("192.0.2.99, 203.0.113.1")), 429);

    // 127.0.0.2 is not a trusted proxy: its header is ignored, so every
    // attempt lands in its own address's bucket whatever it claims.
    let untrusted = Console::plain(addr).from_source(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    for i in 0..MAX_FAILURES {
        let claimed = format!("203.0.113.{}", 100 + i);
        assert_eq!(failed_login(&untrusted, &format!("u{i}"), Some(&claimed)), 401);
    }
    assert_eq!(failed_login(&untrusted, "u-last", Some("203.0.113.200")), 429);
    // The trusted proxy's other clients are unaffected.
    assert_eq!(failed_login(&proxy, "c0", Some("203.0.113.3")), 401);
}
