//! `outpost-collector quickstart`: one command brings up a collector on SQLite
//! and an agent enrolled through the real path; Ctrl-C stops both; a second run
//! reuses the data directory. A simulated RouterOS site comes with it, its
//! devices added once and polled.
use std::process::Command;

use outpost_tests::http::{Console, login, request};
use outpost_tests::{Process, bin, wait_for};

fn quickstart(dir: &std::path::Path) -> Process {
    let mut cmd = Command::new(bin("outpost-collector"));
    cmd.arg("quickstart").arg("--data-dir").arg(dir).args([
        "--agent-addr",
        "127.0.0.1:0",
        "--console-addr",
        "127.0.0.1:0",
    ]);
    Process::spawn(cmd)
}

/// The console the quickstart printed, trusting the collector CA it names.
fn console(p: &Process, dir: &std::path::Path) -> Console {
    let url = field(p, "console:");
    let addr: std::net::SocketAddr = url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("the console is served over HTTPS: {url}"))
        .trim_end_matches('/')
        .parse()
        .expect("console address");
    let ca = dir.join("collector/ca.crt");
    assert!(
        p.logged(&format!("collector CA {}", ca.display())),
        "the quickstart names the CA to trust: {:?}",
        p.log()
    );
    Console::https(addr, &ca)
}

fn field(p: &Process, label: &str) -> String {
    let line = p.wait_log(label);
    line[line.find(label).expect("label") + label.len()..].trim().to_owned()
}

#[test]
fn quickstart_runs_enrolls_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = quickstart(dir.path());
    first.wait_log("Outpost is running.");
    let addr = &console(&first, dir.path());
    let login_line = field(&first, "login:");
    let password = login_line
        .strip_prefix("admin / ")
        .expect("admin credentials printed")
        .to_owned();
    assert!(first.logged("Enrolled local agent"), "{:?}", first.log());

    let cookie = login(addr, "admin", &password);
    wait_for("the local agent online on the console", || {
        let r = request(addr, "GET", "/api/overview", &[("Cookie", &cookie)], "");
        let json: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        (json["totals"]["online"] == 1).then_some(())
    });
    // The demo site: simulated RouterOS devices, added and polled.
    assert!(first.logged("Added 20 simulated RouterOS devices"), "{:?}", first.log());
    wait_for("every demo device up on the console", || {
        let r = request(addr, "GET", "/api/devices", &[("Cookie", &cookie)], "");
        let json: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        let devices: Vec<&serde_json::Value> = json["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["devices"].as_array().into_iter().flatten())
            .collect();
        (devices.len() == 20 && devices.iter().all(|d| d["state"] == "up")).then_some(())
    });
    // The command line the quickstart shows works as shown.
    let shown = field(&first, "command line:");
    let words: Vec<&str> = shown.split_whitespace().collect();
    let after = |flag: &str| {
        let i = words.iter().position(|w| *w == flag).expect(flag);
        words[i + 1].trim_end_matches(',').to_owned()
    };
    let config = tempfile::tempdir().expect("config dir");
    let run = |args: &[&str]| {
        Command::new(bin("outpost"))
            .args(args)
            .env("OUTPOST_CONFIG_DIR", config.path())
            .env("OUTPOST_PASSWORD", &password)
            .output()
            .expect("run outpost")
    };
    let login_out = run(&[
        "login",
        &after("login"),
        "--ca-fingerprint",
        &after("--ca-fingerprint"),
        "--user",
        "admin",
    ]);
    assert!(
        login_out.status.success(),
        "{}",
        String::from_utf8_lossy(&login_out.stderr)
    );
    let listed = run(&["devices", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("devices JSON");
    assert_eq!(json["devices"].as_array().map(Vec::len), Some(20), "{json}");
    // Discovery of the demo site: the managed routers and the ones left for
    // adoption, found by the local agent's scan.
    let hosts = wait_for("the demo site in the inventory", || {
        let out = Command::new(bin("outpost-collector"))
            .args(["discovery", "hosts", "--json", "--data-dir"])
            .arg(dir.path().join("collector"))
            .output()
            .ok()?;
        let hosts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
        (hosts.len() == 22).then_some(hosts)
    });
    let out = Command::new(bin("outpost-collector"))
        .args(["discovery", "hosts", "--adoptable", "--json", "--data-dir"])
        .arg(dir.path().join("collector"))
        .output()
        .expect("discovery hosts --adoptable");
    let adoptable: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let addresses: Vec<&str> = adoptable.iter().filter_map(|h| h["address"].as_str()).collect();
    assert_eq!(
        addresses,
        ["127.0.100.21", "127.0.100.22"],
        "only the unmanaged routers: {adoptable:#?}"
    );
    assert!(
        hosts
            .iter()
            .all(|h| h["open_ports"].as_array().is_some_and(|p| !p.is_empty())),
        "{hosts:#?}"
    );
    assert!(first.interrupt(), "Ctrl-C stops cleanly: {:?}", first.log());
    first.wait_log("collector stopped");
    first.wait_log("agent stopped");

    let mut second = quickstart(dir.path());
    second.wait_log("Outpost is running.");
    assert!(second.logged("Reusing the collector"));
    assert!(second.logged("Reusing the agent"));
    assert!(!second.logged("Enrolled local agent"));
    assert!(
        !second.logged("simulated RouterOS devices to site"),
        "added once: {:?}",
        second.log()
    );
    let addr = &console(&second, dir.path());
    // Same credentials still work: the data directory was reused.
    let cookie = login(addr, "admin", &password);
    wait_for("the same agent online again", || {
        let r = request(addr, "GET", "/api/overview", &[("Cookie", &cookie)], "");
        let json: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        (json["totals"]["agents"] == 1 && json["totals"]["online"] == 1).then_some(())
    });
    assert!(second.terminate());

    // The collector's data is wiped and re-created: the old agent directory
    // trusts a CA that no longer exists, so it is moved aside and a new agent
    // enrolled.
    std::fs::remove_dir_all(dir.path().join("collector")).expect("wipe the collector");
    let mut third = quickstart(dir.path());
    third.wait_log("Outpost is running.");
    assert!(third.logged("belonged to another collector"), "{:?}", third.log());
    assert!(third.logged("Enrolled local agent"), "{:?}", third.log());
    assert!(third.terminate());
}
