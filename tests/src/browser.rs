//! A Node script driving headless Chromium (playwright-core from
//! `console/node_modules`, Debian's `/usr/bin/chromium`), talking to the test
//! one line at a time over its stdin and stdout.
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The browser the scripts launch.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound on each step of a browser script as seen from the test.
const STEP: Duration = Duration::from_secs(120);

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// What Chromium pins to trust a console certificate that chains to the
/// collector's own CA: the base64 SHA-256 of the certificate's
/// SubjectPublicKeyInfo (`--ignore-certificate-errors-spki-list`), read from
/// the leaf of the PEM chain in `chain_pem` (`server.pem` in a data directory).
pub fn spki_pin(chain_pem: &Path) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    use x509_parser::prelude::FromDer as _;
    let pem = std::fs::read(chain_pem).unwrap_or_else(|e| panic!("read {}: {e}", chain_pem.display()));
    let chain = outpost_certs::pem::certificates("console certificate", &pem).expect("certificate chain");
    let leaf = chain.first().expect("a certificate");
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf).expect("parse certificate");
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(cert.public_key().raw))
}

/// What is missing to run a browser test, if anything.
pub fn missing_prerequisites(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (Debian package chromium; scripts/install-deps)"));
    }
    let node_ok = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        missing.push("node (Node.js 20 or later)".into());
    }
    if !root.join("console/node_modules/playwright-core/package.json").exists() {
        missing.push("console/node_modules/playwright-core (run `npm ci --prefix console`)".into());
    }
    missing
}

/// Whether a browser test can run: false (after saying why) when something is
/// missing, a failure instead when `OUTPOST_REQUIRE_BROWSER=1`.
pub fn available(root: &Path) -> bool {
    let missing = missing_prerequisites(root);
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("OUTPOST_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "OUTPOST_REQUIRE_BROWSER=1 but the browser test cannot run; missing: {}",
        missing.join(", ")
    );
    eprintln!("skipping the browser test; missing: {}", missing.join(", "));
    false
}

/// The Node script, with a writable stdin and its output collected line by line.
pub struct BrowserScript {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<String>>>,
    /// stdout and stderr interleaved, for failure messages.
    all: Arc<Mutex<Vec<String>>>,
    screenshot: PathBuf,
}

impl BrowserScript {
    /// Starts `console/tests/<script>` with `envs`; on failure it saves a
    /// screenshot to `screenshot`.
    pub fn spawn(root: &Path, script: &str, envs: &[(&str, &str)], screenshot: PathBuf) -> Self {
        let mut cmd = Command::new("node");
        cmd.arg(root.join("console/tests").join(script))
            .current_dir(root)
            .envs(envs.iter().copied())
            .env("CHROMIUM", CHROMIUM)
            .env("SCREENSHOT", &screenshot)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start node console/tests/{script}: {e}"));
        let stdin = child.stdin.take();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let all = Arc::new(Mutex::new(Vec::new()));
        collect(
            child.stdout.take().expect("piped stdout"),
            Some(stdout.clone()),
            all.clone(),
        );
        collect(child.stderr.take().expect("piped stderr"), None, all.clone());
        Self {
            name: script.to_owned(),
            child,
            stdin,
            stdout,
            all,
            screenshot,
        }
    }

    /// Everything the script printed so far.
    pub fn output(&self) -> String {
        self.all.lock().expect("output lock").join("\n")
    }

    /// Kills the script (and with it the browser) and panics with its output.
    pub fn fail(&mut self, why: &str) -> ! {
        self.stop();
        // Let the reader threads drain what the script printed last.
        std::thread::sleep(Duration::from_millis(200));
        let shot = if self.screenshot.exists() {
            format!("\nscreenshot: {}", self.screenshot.display())
        } else {
            String::new()
        };
        panic!(
            "browser test: {why}\n--- {} output ---\n{}{shot}",
            self.name,
            self.output()
        );
    }

    /// SIGTERM first: playwright then closes the browser it launched.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The first stdout line starting with `prefix`.
    fn find_line(&self, prefix: &str) -> Option<String> {
        self.stdout
            .lock()
            .expect("stdout lock")
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
    }

    /// Waits for the stdout line `line`, failing if the script exits first.
    pub fn expect_line(&mut self, line: &str) {
        let found = self.expect_prefix(line);
        if found != line {
            self.fail(&format!("expected {line}, got {found}"));
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns it, failing
    /// if the script exits first.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(line) = self.find_line(prefix) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // It may have printed the line just before exiting.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(line) = self.find_line(prefix) {
                    return line;
                }
                self.fail(&format!("exited ({status}) before printing {prefix}"));
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no {prefix} within {} s", STEP.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes one line to the script's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        if let Err(e) = stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
        {
            self.fail(&format!("cannot write to its stdin: {e}"));
        }
    }

    /// Closes its stdin and waits for it to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.stdin.take();
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("did not exit within {} s", STEP.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for BrowserScript {
    fn drop(&mut self) {
        self.stdin.take();
        self.stop();
    }
}

fn collect(
    stream: impl std::io::Read + Send + 'static,
    own: Option<Arc<Mutex<Vec<String>>>>,
    all: Arc<Mutex<Vec<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if std::env::var_os("OUTPOST_TEST_ECHO").is_some() {
                eprintln!("{line}");
            }
            if let Some(own) = &own {
                own.lock().expect("line lock").push(line.clone());
            }
            all.lock().expect("line lock").push(line);
        }
    });
}
