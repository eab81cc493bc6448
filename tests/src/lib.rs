//! Harness for end-to-end tests: real `outpost-collector` and `outpost-agent`
//! processes on loopback, each with its own temporary data directory.
//!
//! The binaries are taken from the target directory this test binary was built
//! into (`cargo build --bins` first; the project's test command does).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod browser;
pub mod http;
pub mod raw;
pub mod sim;
pub mod sshd;
pub mod tmpfs;

/// Upper bound for anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Path of one of the workspace's binaries.
pub fn bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("OUTPOST_BIN_DIR") {
        return Path::new(&dir).join(name);
    }
    // target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// A command for one of our binaries, inside network namespace `netns` when
/// given (`ip netns exec` becomes the binary itself, so signals reach it).
pub fn in_netns(netns: Option<&str>, name: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns]).arg(bin(name));
            cmd
        }
        None => Command::new(bin(name)),
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `PATIENCE`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Output of a finished command, with helpers.
pub trait OutputExt {
    /// stdout as text.
    fn stdout_text(&self) -> String;
    /// stderr as text.
    fn stderr_text(&self) -> String;
    /// Panics with both streams unless the command succeeded.
    fn ok(self) -> Self;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }
}

/// A running process whose stderr is collected line by line.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `cmd`, collecting its stdout and stderr lines.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        let mut child = cmd.spawn().expect("spawn process");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect_lines(stdout, lines.clone());
        collect_lines(stderr, lines.clone());
        Self { child, lines }
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().expect("log lock").clone()
    }

    /// Waits until a logged line contains `needle`; returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        wait_for(&format!("log line containing {needle:?}"), || {
            self.log().into_iter().find(|l| l.contains(needle))
        })
    }

    /// Whether some logged line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log().iter().any(|l| l.contains(needle))
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.signal("-TERM")
    }

    /// SIGINT (Ctrl-C) and wait for exit; returns whether it exited successfully.
    pub fn interrupt(&mut self) -> bool {
        self.signal("-INT")
    }

    fn signal(&mut self, sig: &str) -> bool {
        let _ = Command::new("kill").arg(sig).arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        false
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait for process")
    }

    /// Waits (up to `PATIENCE`) for the process to exit on its own; returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for("the process to exit", || self.exited())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn collect_lines(stream: impl std::io::Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if std::env::var_os("OUTPOST_TEST_ECHO").is_some() {
                eprintln!("{line}");
            }
            sink.lock().expect("log lock").push(line);
        }
    });
}

/// A fresh PostgreSQL database on the test server, or `None` when no server is
/// configured (a failure instead when `OUTPOST_REQUIRE_POSTGRES=1`).
pub fn postgres_url() -> Option<String> {
    let Ok(url) = std::env::var("OUTPOST_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("OUTPOST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "OUTPOST_REQUIRE_POSTGRES=1 but OUTPOST_TEST_DATABASE_URL is not set"
        );
        eprintln!("OUTPOST_TEST_DATABASE_URL not set: skipping the PostgreSQL variant");
        return None;
    };
    let name = format!("outpost_e2e_{}_{}", std::process::id(), rand_suffix());
    let (admin_url, db) = (url.clone(), name.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&mut c)
                .await
                .expect("create database");
        });
    })
    .join()
    .expect("create database thread");
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .expect("database URL has a path");
    Some(format!("{base}/{name}"))
}

fn rand_suffix() -> String {
    use std::time::SystemTime;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{nanos}_{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn addr_after(line: &str, marker: &str) -> SocketAddr {
    let rest = &line[line.find(marker).expect("marker present") + marker.len()..];
    let text: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
    text.parse()
        .unwrap_or_else(|e| panic!("cannot parse address {text:?} in {line:?}: {e}"))
}

/// A collector data directory and, when started, its `serve` process.
pub struct Collector {
    dir: tempfile::TempDir,
    /// PostgreSQL URL, or SQLite in the data directory.
    pub database_url: Option<String>,
    /// The console administrator's password, from `init`.
    pub admin_password: String,
    /// The running server.
    pub process: Option<Process>,
    /// Agent port of the running server.
    pub agent_addr: Option<SocketAddr>,
    /// Console address of the running server.
    pub console_addr: Option<SocketAddr>,
    /// Whether the running server's console speaks HTTPS (it says so when it starts).
    pub console_https: bool,
    /// Extra arguments for `serve`.
    pub serve_args: Vec<String>,
    /// Network namespace `serve` runs in (`ip netns exec`), e.g. a test
    /// network's scan side, so an agent there can reach it on loopback.
    pub netns: Option<String>,
}

impl Collector {
    /// `init` in a fresh directory, on SQLite.
    pub fn init() -> Self {
        Self::init_with(None)
    }

    /// `init` in a fresh directory, on `database_url` if given.
    pub fn init_with(database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Self {
            dir,
            database_url,
            admin_password: String::new(),
            process: None,
            agent_addr: None,
            console_addr: None,
            console_https: true,
            serve_args: Vec::new(),
            netns: None,
        };
        let out = c.cli(&["init"]).ok();
        c.admin_password = out
            .stdout_text()
            .lines()
            .find_map(|l| l.trim().strip_prefix("password: ").map(str::to_owned))
            .expect("init prints the admin password");
        c
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every audit record, as `outpost-collector audit export` writes them (CSV).
    pub fn audit_csv(&self) -> String {
        self.cli(&[
            "audit",
            "export",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
        ])
        .ok()
        .stdout_text()
    }

    /// Runs `f` on a connection of its own to the collector's SQLite file,
    /// behind the collector's back (`mode` is `ro` or `rw`).
    pub fn on_sqlite<T: Send + 'static>(
        &self,
        mode: &str,
        f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T + Send + 'static,
    ) -> T {
        let url = format!("sqlite://{}?mode={mode}", self.data_dir().join("outpost.db").display());
        on_own_runtime(move || async move {
            use sqlx::Connection as _;
            let mut db = sqlx::SqliteConnection::connect(&url).await.expect("open sqlite");
            f(&mut db).await
        })
    }

    /// Runs `outpost-collector <args> --data-dir DIR [--database-url URL]`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// [`Collector::cli`] with these environment variables set.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin("outpost-collector"));
        cmd.envs(env.iter().copied());
        cmd.args(args).arg("--data-dir").arg(self.dir.path());
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run outpost-collector")
    }

    /// Starts `serve` on loopback ports chosen by the OS (or the ones used before,
    /// so agents can reconnect after a restart) and waits until it listens.
    pub fn start(&mut self) {
        let mut cmd = in_netns(self.netns.as_deref(), "outpost-collector");
        let agent = self
            .agent_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let console = self
            .console_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        cmd.args(["serve", "--agent-addr", &agent, "--console-addr", &console])
            .arg("--data-dir")
            .arg(self.dir.path());
        cmd.args(&self.serve_args);
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        let p = Process::spawn(cmd);
        let agent_line = p.wait_log("agent port listening on ");
        let console_line = p.wait_log("console listening on ");
        self.agent_addr = Some(addr_after(&agent_line, "agent port listening on "));
        self.console_https = console_line.contains("console listening on https://");
        let marker = if self.console_https {
            "console listening on https://"
        } else {
            "console listening on http://"
        };
        self.console_addr = Some(addr_after(&console_line, marker));
        self.process = Some(p);
    }

    /// The collector CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The running server's console, reached over HTTPS trusting the collector
    /// CA (or plain HTTP when it serves that).
    pub fn console(&self) -> http::Console {
        let addr = self.console_addr.expect("collector started");
        if self.console_https {
            http::Console::https(addr, &self.ca_file())
        } else {
            http::Console::plain(addr)
        }
    }

    /// The running server.
    pub fn server(&self) -> &Process {
        self.process.as_ref().expect("collector started")
    }

    /// SIGKILL the server.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// `host:port` for agents.
    pub fn agent_endpoint(&self) -> String {
        self.agent_addr.expect("collector started").to_string()
    }

    /// `token create`; returns the token.
    pub fn token(&self, tenant: &str, site: &str) -> String {
        self.token_with(tenant, site, "24h")
    }

    /// `token create` with a TTL.
    pub fn token_with(&self, tenant: &str, site: &str, ttl: &str) -> String {
        let out = self
            .cli(&["token", "create", "--tenant", tenant, "--site", site, "--ttl", ttl])
            .ok();
        out.stdout_text().lines().last().expect("token line").trim().to_owned()
    }

    /// `agent list --json`.
    pub fn agents(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["agent", "list", "--json"]).ok();
        serde_json::from_str(&out.stdout_text()).expect("agent list JSON")
    }

    /// `device list --json`.
    pub fn devices(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["device", "list", "--json"]).ok();
        serde_json::from_str(&out.stdout_text()).expect("device list JSON")
    }

    /// The device with this id in `device list --json`.
    pub fn device(&self, id: &str) -> serde_json::Value {
        self.devices()
            .into_iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("device {id} not listed"))
    }

    /// Adds a simulated device (user `admin`, polled every 10 s) and returns
    /// its id.
    pub fn add_sim_device(
        &self,
        tenant: &str,
        site: &str,
        device: &sim::SimDevice,
        password: &str,
        tls: bool,
    ) -> String {
        let port = if tls { device.api_ssl_port } else { device.api_port };
        let mut cmd = Command::new(bin("outpost-collector"));
        cmd.args([
            "device", "add", "--tenant", tenant, "--site", site, &device.ip, "--user", "admin",
        ])
        .args(["--port", &port.to_string(), "--interval", "10"])
        .arg("--data-dir")
        .arg(self.dir.path());
        if let Some(p) = device.ssh_port {
            cmd.args(["--ssh-port", &p.to_string()]);
        }
        if tls {
            cmd.arg("--tls");
        }
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        let out = cmd
            .env("OUTPOST_ROS_PASSWORD", password)
            .stdin(Stdio::null())
            .output()
            .expect("run device add")
            .ok();
        let text = out.stdout_text();
        text.split_whitespace()
            .nth(2)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no device id in {text:?}"))
    }

    /// One SQL count against the collector's database.
    pub fn count(&self, sql: &str) -> i64 {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=ro", self.dir.path().join("outpost.db").display()));
        let sql = sql.to_owned();
        on_own_runtime(move || async move {
            use sqlx::Connection as _;
            if url.starts_with("postgres") {
                let mut c = sqlx::PgConnection::connect(&url).await.expect("connect postgres");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            } else {
                let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open sqlite");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        })
    }
}

/// Runs `f` to completion on a private runtime on its own thread: callers
/// may be sync or async.
fn on_own_runtime<T, F>(make: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(make())
    })
    .join()
    .expect("database thread")
}

/// An agent data directory and, when started, its `run` process.
pub struct Agent {
    dir: tempfile::TempDir,
    /// The running agent.
    pub process: Option<Process>,
    /// Network namespace the agent runs in (`ip netns exec`).
    pub netns: Option<String>,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent {
    /// A fresh, unenrolled data directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            process: None,
            netns: None,
        }
    }

    /// A fresh, unenrolled data directory inside `parent` (e.g. a small tmpfs).
    pub fn new_in(parent: &Path) -> Self {
        Self {
            dir: tempfile::tempdir_in(parent).expect("tempdir"),
            process: None,
            netns: None,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `outpost-agent <args> --data-dir DIR`.
    pub fn cli(&self, args: &[&str]) -> Output {
        in_netns(self.netns.as_deref(), "outpost-agent")
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run outpost-agent")
    }

    /// `enroll`; returns the raw output (callers check success or the error).
    pub fn enroll(&self, collector: &str, token: &str) -> Output {
        self.cli(&["enroll", "--collector", collector, "--token", token])
    }

    /// The enrolled agent id, read from its certificate.
    pub fn id(&self) -> String {
        outpost_agent::credentials::Credentials::load(self.dir.path())
            .expect("credentials")
            .identity
            .agent
            .to_string()
    }

    /// Rewrites one setting of `agent.toml` (`key = value`, value in TOML syntax).
    pub fn set_config(&self, key: &str, value: &str) {
        let path = self.dir.path().join("agent.toml");
        let text = std::fs::read_to_string(&path).expect("agent.toml");
        let prefix = format!("{key} ");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with(&prefix))
            .map(str::to_owned)
            .collect();
        lines.push(format!("{key} = {value}"));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write agent.toml");
    }

    /// Starts `run`.
    pub fn start(&mut self) {
        // Tests send traffic only to loopback and to namespaces they create:
        // no scan of this machine's networks, no MNDP broadcast, unless a
        // test asks for them.
        let config = std::fs::read_to_string(self.dir.path().join("agent.toml")).unwrap_or_default();
        for key in ["discovery_default_job", "discovery_mndp"] {
            if !config.is_empty() && !config.contains(key) {
                self.set_config(key, "false");
            }
        }
        let mut cmd = in_netns(self.netns.as_deref(), "outpost-agent");
        cmd.arg("run").arg("--data-dir").arg(self.dir.path());
        self.process = Some(Process::spawn(cmd));
    }

    /// SIGKILL the agent.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// The running agent.
    pub fn running(&self) -> &Process {
        self.process.as_ref().expect("agent started")
    }
}

/// A collector (SQLite) with one enrolled agent (not yet running) of `tenant`/`site`.
pub fn collector_with_agent(tenant: &str, site: &str) -> (Collector, Agent) {
    collector_with_agent_on(None, tenant, site)
}

/// Like [`collector_with_agent`], on `database_url` when given.
pub fn collector_with_agent_on(database_url: Option<String>, tenant: &str, site: &str) -> (Collector, Agent) {
    let mut c = Collector::init_with(database_url);
    c.start();
    let a = Agent::new();
    a.enroll(&c.agent_endpoint(), &c.token(tenant, site)).ok();
    (c, a)
}

/// Like [`collector_with_agent`], with the agent's data directory inside `parent`.
pub fn collector_with_agent_in(parent: &Path, tenant: &str, site: &str) -> (Collector, Agent) {
    let mut c = Collector::init();
    c.start();
    let a = Agent::new_in(parent);
    a.enroll(&c.agent_endpoint(), &c.token(tenant, site)).ok();
    (c, a)
}
