//! The packages, checked with the real tools: `packaging/build` packages
//! the debug binaries `scripts/test` has built (no release build here), then
//! * lintian passes the two `.deb`s with no error or warning, their units
//!   carry the hardening and `systemd-analyze security --offline` rates them;
//! * as root: `dpkg -i` → the service users exist and run the binaries →
//!   the collector is initialised and served from its `/etc/default` file,
//!   an agent enrolls as its service user → `systemd-analyze verify` on the
//!   installed units → upgrade to a second version keeps the data and the
//!   modified conffile → `dpkg -r` keeps the data → `dpkg -P` removes data,
//!   users and conffiles. A guard purges both packages whatever happens;
//! * the `.msi`: `msiinfo` shows its File, ServiceInstall, Property and
//!   CustomAction rows; under Wine, `msiexec /i … COLLECTOR=… ENROLL_TOKEN=…
//!   /qn` installs the program, registers the service, enrolls against a real
//!   collector on loopback and starts the service, which connects; `/x`
//!   removes program and service.
//!
//! What a machine lacks (not root, no lintian, no Wine, no Windows build)
//! skips the affected test with a loud message, or fails it when
//! `OUTPOST_REQUIRE_PACKAGES=1` (as `scripts/test` sets). The one exception:
//! when `scripts/test` could not get the Windows target it warns loudly and
//! sets `OUTPOST_NO_WINDOWS_TARGET=1`, and the `.msi` test skips, loudly.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use outpost_tests::{Collector, OutputExt, Process, wait_for};

const REQUIRE_ENV: &str = "OUTPOST_REQUIRE_PACKAGES";
const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";
/// Upper bound for one packaging tool or Wine command, seconds (`timeout`).
const TOOL_TIMEOUT_SECS: &str = "600";

/// `packaging/build` writes man pages next to the binaries: one at a time.
static BUILD: Mutex<()> = Mutex::new(());

/// Says why a test cannot run here and returns false, or fails it when
/// packages are required.
fn unavailable(why: &str) -> bool {
    assert!(
        std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
        "{REQUIRE_ENV}=1 but {why}"
    );
    eprintln!("\n!!! SKIPPED (set {REQUIRE_ENV}=1 to make this a failure): {why}\n");
    false
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Every tool in `tools` is on PATH (else [`unavailable`]).
fn tools(tools: &[&str]) -> bool {
    match tools.iter().find(|t| !have(t)) {
        None => true,
        Some(t) => unavailable(&format!("`{t}` is not installed (scripts/install-deps installs it)")),
    }
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).stdout_text().trim() == "0"
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The target directory this test was built into (`target/debug/deps/…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("target/debug/deps/<test>").to_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `cmd` bounded by `timeout`, so a hanging tool fails the test.
fn bounded(program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", TOOL_TIMEOUT_SECS, program]);
    cmd
}

/// Runs `packaging/build --debug --no-build` for `what` (deb or msi).
fn build_packages(what: &str, deb_version: Option<&str>, out: &Path) {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let mut cmd = bounded(&workspace().join("packaging/build").to_string_lossy());
    cmd.args(["--debug", "--no-build", "--out"]).arg(out).arg(what);
    if let Some(v) = deb_version {
        cmd.args(["--deb-version", v]);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir());
    run(&mut cmd).ok();
}

/// cargo-deb, installed by `packaging/build --install-tools` (scripts/test
/// runs it before the tests).
fn cargo_deb_installed() -> bool {
    target_dir().join("tools/bin/cargo-deb").exists()
        || unavailable("cargo-deb is not installed in target/tools (run packaging/build --install-tools)")
}

fn deb(dir: &Path, package: &str, version: &str) -> PathBuf {
    let path = dir.join(format!("{package}_{version}_amd64.deb"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A file of a package, read with dpkg-deb and tar.
fn file_in_deb(deb: &Path, path: &str) -> String {
    let out = run(Command::new("sh").args([
        "-c",
        &format!("dpkg-deb --fsys-tarfile '{}' | tar -xO '.{path}'", deb.display()),
    ]))
    .ok();
    out.stdout_text()
}

/// The `Key=` values of a unit file, in order.
fn directives(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_owned())
        .collect()
}

#[test]
fn debs_are_lintian_clean_and_hardened() {
    if !cargo_deb_installed() || !tools(&["lintian", "help2man", "dpkg-deb", "systemd-analyze"]) {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    build_packages("deb", Some("0.1.0-1"), out.path());
    let agent = deb(out.path(), "outpost-agent", "0.1.0-1");
    let collector = deb(out.path(), "outpost-collector", "0.1.0-1");

    // Overrides (usr/share/lintian/overrides) are explained where they are written.
    let lint = run(bounded("lintian")
        .args(["--fail-on", "error,warning", "--pedantic"])
        .arg(&agent)
        .arg(&collector));
    assert!(
        lint.status.success(),
        "lintian found errors or warnings:\n{}{}",
        lint.stdout_text(),
        lint.stderr_text()
    );

    for (deb, name, capabilities) in [
        (&agent, "outpost-agent", "CAP_NET_RAW"),
        (&collector, "outpost-collector", ""),
    ] {
        let control = run(Command::new("dpkg-deb").arg("-f").arg(deb).args(["Package", "Depends"])).ok();
        let control = control.stdout_text();
        assert!(control.contains(&format!("Package: {name}")), "{control}");
        assert!(control.contains("adduser"), "postinst needs adduser: {control}");
        let conffiles = run(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles")).ok();
        assert_eq!(
            conffiles.stdout_text().trim(),
            format!("/etc/default/{name}"),
            "the environment file is the one conffile"
        );
        let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb)).ok().stdout_text();
        for path in [
            format!("./usr/bin/{name}"),
            format!("./usr/lib/systemd/system/{name}.service"),
            format!("./usr/share/man/man1/{name}.1.gz"),
            format!("./etc/default/{name}"),
        ] {
            assert!(listing.contains(&path), "{name} lacks {path}:\n{listing}");
        }

        let unit = file_in_deb(deb, &format!("/usr/lib/systemd/system/{name}.service"));
        let one = |key: &str| -> String {
            let values = directives(&unit, key);
            assert_eq!(values.len(), 1, "{name}: {key}= should be set once: {values:?}");
            values[0].clone()
        };
        assert_eq!(one("User"), name);
        assert_eq!(one("ProtectSystem"), "strict");
        assert_eq!(one("ProtectHome"), "yes");
        assert_eq!(one("PrivateTmp"), "yes");
        assert_eq!(one("NoNewPrivileges"), "yes");
        assert_eq!(one("ReadWritePaths"), format!("/var/lib/{name}"));
        assert_eq!(one("Restart"), "on-failure");
        assert_eq!(one("AmbientCapabilities"), capabilities);
        assert_eq!(one("CapabilityBoundingSet"), capabilities);

        // Exposure 0 (locked down) … 10 (unprotected); both units rate "OK".
        let dir = tempfile::tempdir().expect("tempdir");
        let unit_path = dir.path().join(format!("{name}.service"));
        std::fs::write(&unit_path, &unit).expect("write unit");
        let security = run(bounded("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager", "--threshold=20"])
            .arg(&unit_path));
        let text = security.stdout_text();
        let overall = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no overall exposure for {name}:\n{text}{}", security.stderr_text()));
        eprintln!("{overall}");
        assert!(security.status.success(), "{name}: exposure above 2.0:\n{text}");
    }
}

/// Purges both packages when dropped, so a failing test leaves the machine
/// as it found it.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "outpost-agent", "outpost-collector"])
            .stdin(Stdio::null())
            .status();
    }
}

fn dpkg(args: &[&str], debs: &[&Path]) {
    run(Command::new("dpkg")
        .args(args)
        .args(debs)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .ok();
}

fn dpkg_status(package: &str) -> String {
    run(Command::new("dpkg-query").args(["-W", "-f", "${Status} ${Version}", package]))
        .stdout_text()
        .trim()
        .to_owned()
}

fn getent(db: &str, key: &str) -> Option<String> {
    let out = run(Command::new("getent").args([db, key]));
    out.status.success().then(|| out.stdout_text().trim().to_owned())
}

/// uid and gid of a user, from `getent passwd`.
fn ids(user: &str) -> (u32, u32) {
    let line = getent("passwd", user).unwrap_or_else(|| panic!("no user {user}"));
    let fields: Vec<&str> = line.split(':').collect();
    let parse = |i: usize| fields[i].parse().unwrap_or_else(|_| panic!("bad passwd line {line}"));
    (parse(2), parse(3))
}

/// Owner and mode of a path, from `stat`.
fn owner_and_mode(path: &str) -> String {
    run(Command::new("stat").args(["-c", "%U:%G %a", path]))
        .ok()
        .stdout_text()
        .trim()
        .to_owned()
}

/// A command of the collector as its service user, with the settings of
/// `/etc/default/outpost-collector` loaded as the README says.
fn as_collector_user(args: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args([
        "-u",
        "outpost-collector",
        "--",
        "sh",
        "-c",
        &format!("set -a; . /etc/default/outpost-collector; exec outpost-collector {args}"),
    ]);
    cmd
}

fn sha256(path: &str) -> String {
    run(Command::new("sha256sum").arg(path)).ok().stdout_text()
}

#[test]
fn deb_install_enroll_upgrade_remove_purge() {
    if !is_root() {
        unavailable("installing packages needs root");
        return;
    }
    if !cargo_deb_installed() || !tools(&["dpkg", "help2man", "systemd-analyze", "runuser", "adduser"]) {
        return;
    }
    for package in ["outpost-agent", "outpost-collector"] {
        let status = dpkg_status(package);
        assert!(
            status.is_empty() || status.starts_with("unknown") || status.contains("not-installed"),
            "{package} is already on this machine ({status}): this test installs and purges it; \
             remove it first (dpkg --purge {package})"
        );
        for path in [format!("/var/lib/{package}"), format!("/etc/default/{package}")] {
            assert!(
                !Path::new(&path).exists(),
                "{path} exists already: refusing to touch it"
            );
        }
        assert!(getent("passwd", package).is_none(), "a user {package} exists already");
    }
    let out = tempfile::tempdir().expect("tempdir");
    let (v1, v2) = (out.path().join("v1"), out.path().join("v2"));
    build_packages("deb", Some("0.1.0-1"), &v1);
    build_packages("deb", Some("0.1.0-2"), &v2);

    let _purge = Installed;
    dpkg(
        &["-i"],
        &[
            &deb(&v1, "outpost-agent", "0.1.0-1"),
            &deb(&v1, "outpost-collector", "0.1.0-1"),
        ],
    );
    for name in ["outpost-agent", "outpost-collector"] {
        assert_eq!(dpkg_status(name), "install ok installed 0.1.0-1");
        let passwd = getent("passwd", name).expect("service user created");
        assert!(
            passwd.ends_with(&format!(":/var/lib/{name}:/usr/sbin/nologin")),
            "system user without a login shell, at home in its data directory: {passwd}"
        );
        assert!(getent("group", name).is_some(), "group {name}");
        assert_eq!(
            owner_and_mode(&format!("/var/lib/{name}")),
            format!("{name}:{name} 750")
        );
        let version = run(Command::new("runuser").args(["-u", name, "--", name, "--version"])).ok();
        assert_eq!(version.stdout_text().trim(), format!("{name} 0.1.0"));
        let unit = format!("/usr/lib/systemd/system/{name}.service");
        let verify = run(bounded("systemd-analyze").args(["verify", &unit]));
        assert!(
            verify.status.success() && verify.stderr_text().trim().is_empty(),
            "systemd-analyze verify {unit}:\n{}{}",
            verify.stdout_text(),
            verify.stderr_text()
        );
    }
    assert_eq!(
        owner_and_mode("/etc/default/outpost-collector"),
        "root:outpost-collector 640",
        "the collector's settings may hold secrets"
    );

    // The conffile, changed as an administrator would: loopback, any port.
    let env_file = "/etc/default/outpost-collector";
    let settings = std::fs::read_to_string(env_file).expect("read the environment file");
    let changed = settings
        .replace("OUTPOST_AGENT_ADDR=0.0.0.0:7443", "OUTPOST_AGENT_ADDR=127.0.0.1:0")
        .replace(
            "OUTPOST_CONSOLE_ADDR=127.0.0.1:8080",
            "OUTPOST_CONSOLE_ADDR=127.0.0.1:0",
        );
    assert_ne!(changed, settings, "the shipped file sets both addresses");
    std::fs::write(env_file, &changed).expect("change the environment file");

    // The collector as its service user, started as its unit starts it.
    run(&mut as_collector_user("init --san 127.0.0.1")).ok();
    let (uid, gid) = ids("outpost-collector");
    let mut serve = Command::new("sh");
    serve.args([
        "-c",
        "set -a; . /etc/default/outpost-collector; exec /usr/bin/outpost-collector serve $OUTPOST_SERVE_ARGS",
    ]);
    std::os::unix::process::CommandExt::uid(&mut serve, uid);
    std::os::unix::process::CommandExt::gid(&mut serve, gid);
    let mut server = Process::spawn(serve);
    let line = server.wait_log("agent port listening on ");
    let agent_port = line
        .split("agent port listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_owned();
    let token_out = run(&mut as_collector_user("token create --tenant Acme --site HQ")).ok();
    let token = token_out
        .stdout_text()
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_owned();

    // The README's one-liner: the token from the environment, not the command line.
    let enroll = run(Command::new("runuser")
        .args([
            "-u",
            "outpost-agent",
            "--",
            "outpost-agent",
            "enroll",
            "--collector",
            &agent_port,
        ])
        .env("OUTPOST_ENROLL_TOKEN", &token))
    .ok();
    assert!(
        enroll.stdout_text().contains("Enrolled as agent"),
        "{}",
        enroll.stdout_text()
    );
    assert_eq!(
        owner_and_mode("/var/lib/outpost-agent/identity.pem"),
        "outpost-agent:outpost-agent 600"
    );
    let check =
        || run(Command::new("runuser").args(["-u", "outpost-agent", "--", "outpost-agent", "check-config"])).ok();
    check();
    assert!(server.terminate(), "the collector stops cleanly on SIGTERM");

    let kept = [
        "/var/lib/outpost-agent/agent.toml",
        "/var/lib/outpost-agent/identity.pem",
        "/var/lib/outpost-collector/ca.key",
        "/var/lib/outpost-collector/outpost.db",
    ];
    let before: Vec<String> = kept.iter().map(|p| sha256(p)).collect();

    // Upgrade: a non-interactive dpkg (no terminal) would fail on a conffile prompt.
    dpkg(
        &["-i"],
        &[
            &deb(&v2, "outpost-agent", "0.1.0-2"),
            &deb(&v2, "outpost-collector", "0.1.0-2"),
        ],
    );
    for name in ["outpost-agent", "outpost-collector"] {
        assert_eq!(dpkg_status(name), "install ok installed 0.1.0-2");
    }
    let after: Vec<String> = kept.iter().map(|p| sha256(p)).collect();
    assert_eq!(before, after, "the upgrade left the data alone");
    assert_eq!(
        std::fs::read_to_string(env_file).expect("environment file"),
        changed,
        "the modified conffile survives the upgrade"
    );
    check();

    // remove: programs gone, data, users and conffiles kept.
    run(Command::new("dpkg").args(["--remove", "outpost-agent", "outpost-collector"])).ok();
    for name in ["outpost-agent", "outpost-collector"] {
        assert_eq!(dpkg_status(name), "deinstall ok config-files 0.1.0-2");
        assert!(!Path::new(&format!("/usr/bin/{name}")).exists());
        assert!(getent("passwd", name).is_some(), "remove keeps the user {name}");
        assert!(Path::new(&format!("/etc/default/{name}")).exists());
    }
    let still: Vec<String> = kept.iter().map(|p| sha256(p)).collect();
    assert_eq!(before, still, "remove keeps the data");

    // purge: everything gone.
    run(Command::new("dpkg").args(["--purge", "outpost-agent", "outpost-collector"])).ok();
    for name in ["outpost-agent", "outpost-collector"] {
        let status = dpkg_status(name);
        assert!(
            status.is_empty() || status.contains("not-installed"),
            "{name}: {status}"
        );
        for path in [
            format!("/var/lib/{name}"),
            format!("/etc/default/{name}"),
            format!("/var/lib/systemd/deb-systemd-helper-enabled/{name}.service.dsh-also"),
            format!("/var/lib/systemd/deb-systemd-helper-masked/{name}.service"),
        ] {
            assert!(!Path::new(&path).exists(), "purge left {path}");
        }
        assert!(getent("passwd", name).is_none(), "purge removes the user {name}");
        assert!(getent("group", name).is_none(), "purge removes the group {name}");
    }
}

/// A throwaway Wine prefix; its wineserver (and the service it runs) is
/// stopped when dropped.
struct WinePrefix {
    dir: tempfile::TempDir,
}

impl WinePrefix {
    fn new() -> Self {
        let prefix = Self {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        prefix.run(prefix.command("wineboot").arg("--init")).ok();
        // Until the wineserver wineboot started has finished, a new process
        // finds the prefix half set up (the first service start then fails).
        prefix.run(prefix.command("wineserver").arg("-w")).ok();
        prefix
    }

    /// A Wine command in this prefix, without a display, bounded in time.
    fn command(&self, program: &str) -> Command {
        let mut cmd = bounded(program);
        cmd.env("WINEPREFIX", self.dir.path())
            .env("WINEDEBUG", "-all")
            // No prompts to download Mono or Gecko.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }

    /// Runs a Wine command with its output in files, not pipes: Wine's
    /// background processes (wineserver, services.exe and the service it
    /// starts) inherit the descriptors and would keep a pipe open long
    /// after the command itself has finished.
    fn run(&self, cmd: &mut Command) -> Output {
        let dir = tempfile::tempdir().expect("tempdir");
        let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let status = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    fn drive_c(&self) -> PathBuf {
        self.dir.path().join("drive_c")
    }

    fn service_key(&self) -> Output {
        self.run(
            self.command("wine")
                .args(["reg", "query", r"HKLM\System\CurrentControlSet\Services\outpost-agent"]),
        )
    }
}

impl Drop for WinePrefix {
    fn drop(&mut self) {
        let _ = Command::new("wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.dir.path())
            .stdin(Stdio::null())
            .status();
    }
}

/// Whether a process of `prefix` runs `exe` (its command line names it and
/// its environment holds `WINEPREFIX=prefix`).
fn wine_process_running(prefix: &Path, exe: &str) -> bool {
    let marker = format!("WINEPREFIX={}", prefix.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let dir = entry.path();
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(exe) {
            return false;
        }
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        environ.split(|b| *b == 0).any(|var| var == marker.as_bytes())
    })
}

/// The rows of one table, as `msiinfo export` prints them (after the three
/// header lines), tab-separated.
fn msi_table(msi: &Path, table: &str) -> Vec<Vec<String>> {
    let out = run(Command::new("msiinfo").args(["export"]).arg(msi).arg(table)).ok();
    out.stdout_text()
        .lines()
        .skip(3)
        .map(|l| l.trim_end_matches('\r').split('\t').map(str::to_owned).collect())
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], key: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().map(String::as_str) == Some(key))
        .unwrap_or_else(|| panic!("no row {key} in {rows:?}"))
}

#[test]
fn msi_installs_enrolls_and_uninstalls_under_wine() {
    if !tools(&["wixl", "msiinfo", "msibuild"]) {
        return;
    }
    let exe = target_dir().join(WINDOWS_TARGET).join("debug/outpost-agent.exe");
    if std::env::var("OUTPOST_NO_WINDOWS_TARGET").as_deref() == Ok("1") {
        // scripts/test could not get the Windows target and has said so; the
        // rest of the suite runs.
        eprintln!("\n!!! SKIPPED: no {WINDOWS_TARGET} build on this machine (see the warning of scripts/test)\n");
        return;
    }
    if !exe.exists() {
        unavailable(&format!(
            "{} is not built (cargo build -p outpost-agent --target {WINDOWS_TARGET}; scripts/test does)",
            exe.display()
        ));
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    build_packages("msi", None, out.path());
    let msi = out.path().join("outpost-agent-0.1.0-x64.msi");
    assert!(msi.exists(), "{} was not built", msi.display());

    let files = msi_table(&msi, "File");
    assert_eq!(row(&files, "AgentExe")[2], "outpost-agent.exe");
    let services = msi_table(&msi, "ServiceInstall");
    let service = row(&services, "AgentService");
    assert_eq!(service[1], "outpost-agent");
    assert_eq!(service[3], "16", "own process");
    assert_eq!(service[4], "2", "automatic start");
    assert_eq!(service[8], "LocalSystem");
    assert_eq!(service[10], "service --data-dir \"[DATADIR].\"");
    let controls = msi_table(&msi, "ServiceControl");
    let events: u32 = row(&controls, "AgentServiceControl")[2]
        .parse()
        .expect("ServiceControl event");
    assert_eq!(
        events,
        0x1 | 0x2 | 0x20 | 0x80,
        "start on install, stop on install and uninstall, delete on uninstall"
    );
    let properties = msi_table(&msi, "Property");
    assert!(row(&properties, "SecureCustomProperties")[1].ends_with(";COLLECTOR;ENROLL_TOKEN"));
    assert!(row(&properties, "MsiHiddenProperties")[1].contains("ENROLL_TOKEN"));
    let actions = msi_table(&msi, "CustomAction");
    let enroll = row(&actions, "EnrollAgent");
    let kind: u32 = enroll[1].parse().expect("custom action type");
    assert_eq!(kind & 0x3f, 18, "runs the installed exe");
    assert_ne!(kind & 0x400, 0, "deferred");
    assert_ne!(kind & 0x800, 0, "not impersonated: as SYSTEM");
    assert_ne!(kind & 0x2000, 0, "its command line, with the token, is not logged");
    assert!(enroll[3].starts_with("enroll --collector \"[COLLECTOR]\" --token \"[ENROLL_TOKEN]\""));
    assert!(row(&actions, "SetDataDirAcl")[3].contains("/inheritance:r"));

    if !tools(&["wine", "wineserver", "x86_64-w64-mingw32-gcc"]) {
        return;
    }
    let wine = WinePrefix::new();
    // Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which Rust's standard
    // library imports on Windows 10+: a stand-in for this prefix only.
    let system32 = wine.drive_c().join("windows/system32");
    let shim = workspace().join("tests/wine");
    run(Command::new("x86_64-w64-mingw32-gcc")
        .args(["-O2", "-shared", "-o"])
        .arg(system32.join("bcryptprimitives.dll"))
        .arg(shim.join("bcryptprimitives.c"))
        .arg(shim.join("bcryptprimitives.def"))
        .arg("-lbcrypt"))
    .ok();

    // A real collector on loopback, with a job that only scans loopback and
    // only when asked, so the agent never runs its default scan of this
    // host's networks.
    let mut collector = Collector::init();
    collector.start();
    let token = collector.token("Acme", "Branch");
    collector
        .cli(&[
            "discovery",
            "job",
            "add",
            "--tenant",
            "Acme",
            "--site",
            "Branch",
            "--targets",
            "127.0.0.1",
            "--interval",
            "0",
        ])
        .ok();

    // A refused token fails the installation and rolls it back.
    let program = wine.drive_c().join("Program Files/Outpost/outpost-agent.exe");
    let data = wine.drive_c().join("ProgramData/Outpost");
    let refused = wine.run(
        wine.command("wine")
            .args(["msiexec", "/i"])
            .arg(&msi)
            .arg(format!("COLLECTOR={}", collector.agent_endpoint()))
            .arg("ENROLL_TOKEN=outpost1.not-a-token")
            .arg("/qn"),
    );
    assert!(!refused.status.success(), "an installation with a refused token fails");
    assert!(
        refused.stderr_text().contains("invalid enrollment token"),
        "{}",
        refused.stderr_text()
    );
    assert!(!program.exists(), "rolled back: no program");
    assert!(!wine.service_key().status.success(), "rolled back: no service");
    assert!(!data.join("agent.toml").exists(), "rolled back: not enrolled");

    let log = out.path().join("install.log");
    wine.run(
        wine.command("wine")
            .args(["msiexec", "/i"])
            .arg(&msi)
            .arg(format!("COLLECTOR={}", collector.agent_endpoint()))
            .arg(format!("ENROLL_TOKEN={token}"))
            .args(["/qn", "/l*v"])
            .arg(&log),
    )
    .ok();

    assert!(program.exists(), "{} installed", program.display());
    for file in ["agent.toml", "identity.pem"] {
        assert!(data.join(file).exists(), "enrolled into {}: {file}", data.display());
    }
    let key = wine.service_key().ok().stdout_text();
    assert!(
        key.contains(r"C:\Program Files\Outpost\outpost-agent.exe service --data-dir"),
        "{key}"
    );
    assert!(key.contains("LocalSystem"), "{key}");
    let version = wine
        .run(
            wine.command("wine")
                .arg(r"C:\Program Files\Outpost\outpost-agent.exe")
                .arg("--version"),
        )
        .ok();
    assert_eq!(version.stdout_text().trim(), "outpost-agent 0.1.0");

    // The service started after enrollment and reached the collector.
    let service_log = data.join("outpost-agent.log");
    wait_for("the service to connect to the collector", || {
        let text = std::fs::read_to_string(&service_log).ok()?;
        text.contains("connected to the collector").then_some(())
    });
    let agents = collector.agents();
    assert_eq!(agents.len(), 1, "{agents:?}");
    // Wine's msi writes the property dump without regard to
    // MsiHiddenProperties; the enrollment's command line must not appear.
    let install_log = String::from_utf8_lossy(&std::fs::read(&log).expect("install log")).into_owned();
    assert!(install_log.contains("EnrollAgent"), "the log covers the enrollment");
    assert!(
        !install_log.contains(&format!("--token \"{token}\"")),
        "the token's command line was logged"
    );

    // The service is stopped, and its process gone, before the uninstall:
    // the service reports "stopped" a moment before its process exits, and
    // Wine's msi, unlike Windows Installer, leaves a program file that is
    // still mapped at RemoveFiles in place. (The package's own stop on
    // uninstall is its ServiceControl row, checked above.)
    wine.run(wine.command("wine").args(["sc", "stop", "outpost-agent"]))
        .ok();
    wait_for("the service to log its stop", || {
        let text = std::fs::read_to_string(&service_log).ok()?;
        text.contains("service stopped").then_some(())
    });
    wait_for("the service process to exit", || {
        (!wine_process_running(wine.dir.path(), "outpost-agent.exe")).then_some(())
    });
    wine.run(wine.command("wine").args(["msiexec", "/x"]).arg(&msi).arg("/qn"))
        .ok();
    assert!(!program.exists(), "uninstall removes the program");
    assert!(!wine.service_key().status.success(), "uninstall removes the service");
    // The agent's key and queued data stay for a reinstall (README).
    assert!(data.join("identity.pem").exists());
}
