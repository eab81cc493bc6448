//! The console in a real browser: headless Chromium signs in through the login
//! form and sees a second agent appear on the overview, live over Server-Sent
//! Events, without reloading the page.
//!
//! The browser side is `console/tests/live_update.mjs` (Node, playwright-core
//! from `console/node_modules`, Debian's `/usr/bin/chromium`). Without those the
//! test is skipped, or fails when `OUTPOST_REQUIRE_BROWSER=1` (as in
//! `scripts/test`).
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_tests::{Agent, Collector, OutputExt, wait_for};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound on each step of the browser script as seen from here.
const STEP: Duration = Duration::from_secs(120);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// What is missing to run the browser test, if anything.
fn missing_prerequisites(root: &Path) -> Vec<String> {
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

/// The Node script, with a writable stdin and its output collected line by line.
struct BrowserScript {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<String>>>,
    /// stdout and stderr interleaved, for failure messages.
    all: Arc<Mutex<Vec<String>>>,
    screenshot: PathBuf,
}

impl BrowserScript {
    fn spawn(root: &Path, envs: &[(&str, &str)], screenshot: PathBuf) -> Self {
        let mut cmd = Command::new("node");
        cmd.arg(root.join("console/tests/live_update.mjs"))
            .current_dir(root)
            .envs(envs.iter().copied())
            .env("CHROMIUM", CHROMIUM)
            .env("SCREENSHOT", &screenshot)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start node console/tests/live_update.mjs");
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
            child,
            stdin,
            stdout,
            all,
            screenshot,
        }
    }

    fn output(&self) -> String {
        self.all.lock().expect("output lock").join("\n")
    }

    /// Kills the script (and with it the browser) and panics with its output.
    fn fail(&mut self, why: &str) -> ! {
        self.stop();
        // Let the reader threads drain what the script printed last.
        std::thread::sleep(Duration::from_millis(200));
        let shot = if self.screenshot.exists() {
            format!("\nscreenshot: {}", self.screenshot.display())
        } else {
            String::new()
        };
        panic!(
            "browser test: {why}\n--- live_update.mjs output ---\n{}{shot}",
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

    /// Waits for the stdout line `line`, failing if the script exits first.
    fn expect_line(&mut self, line: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            if self.stdout.lock().expect("stdout lock").iter().any(|l| l == line) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // It may have printed the line just before exiting.
                std::thread::sleep(Duration::from_millis(200));
                if self.stdout.lock().expect("stdout lock").iter().any(|l| l == line) {
                    return;
                }
                self.fail(&format!("exited ({status}) before printing {line}"));
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no {line} within {} s", STEP.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        if let Err(e) = stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
        {
            self.fail(&format!("cannot write to its stdin: {e}"));
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
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

fn wait_online(c: &Collector, id: &str) {
    wait_for(&format!("agent {id} to be online"), || {
        c.agents().into_iter().find(|r| r["id"] == id && r["online"] == true)
    });
}

#[test]
fn console_overview_updates_live_in_a_browser() {
    let root = workspace_root();
    let missing = missing_prerequisites(&root);
    if !missing.is_empty() {
        assert!(
            std::env::var("OUTPOST_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "OUTPOST_REQUIRE_BROWSER=1 but the browser test cannot run; missing: {}",
            missing.join(", ")
        );
        eprintln!("skipping the browser test; missing: {}", missing.join(", "));
        return;
    }

    let mut c = Collector::init();
    c.start();
    let endpoint = c.agent_endpoint();
    let mut first = Agent::new();
    first.enroll(&endpoint, &c.token("acme", "hq")).ok();
    first.start();
    let first_id = first.id();
    wait_online(&c, &first_id);

    let url = format!("http://{}", c.console_addr.expect("console address"));
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console_browser_failure.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut script = BrowserScript::spawn(
        &root,
        &[
            ("CONSOLE_URL", &url),
            ("CONSOLE_USER", "admin"),
            ("CONSOLE_PASSWORD", &c.admin_password),
            ("FIRST_AGENT", &first_id),
        ],
        screenshot,
    );
    script.expect_line("READY");

    // A second agent, at another site, while the page is open.
    let mut second = Agent::new();
    second.enroll(&endpoint, &c.token("acme", "branch")).ok();
    second.start();
    let second_id = second.id();
    script.send_line(&second_id);
    script.expect_line("UPDATED");
    let status = script.wait_exit();
    if !status.success() {
        script.fail(&format!("exited with {status} after UPDATED"));
    }
    // The collector agrees with what the page showed.
    wait_online(&c, &second_id);
}
