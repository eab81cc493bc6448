//! `outpost-collector device import`: a CSV file of devices added to a site in
//! one go, on SQLite and PostgreSQL.
use std::path::Path;
use std::process::{Command, Output, Stdio};

use outpost_tests::{Collector, OutputExt, bin, postgres_url};

/// `device import --tenant acme --site SITE FILE`, with `password` in the
/// environment when given.
fn import(c: &Collector, site: &str, file: &Path, password: Option<&str>) -> Output {
    let mut cmd = Command::new(bin("outpost-collector"));
    cmd.args(["device", "import", "--tenant", "acme", "--site", site])
        .arg(file)
        .arg("--data-dir")
        .arg(c.data_dir())
        .env("NO_COLOR", "1")
        .env_remove("OUTPOST_ROS_PASSWORD")
        .stdin(Stdio::null());
    if let Some(url) = &c.database_url {
        cmd.arg("--database-url").arg(url);
    }
    if let Some(p) = password {
        cmd.env("OUTPOST_ROS_PASSWORD", p);
    }
    cmd.output().expect("run device import")
}

fn refused(out: Output, why: &str) {
    assert!(!out.status.success(), "should fail: {}", out.stdout_text());
    assert!(
        out.stderr_text().contains(why),
        "expected {why:?} in: {}",
        out.stderr_text()
    );
}

fn imports_a_fleet(database_url: Option<String>) {
    let c = Collector::init_with(database_url);
    c.cli(&["token", "create", "--tenant", "acme", "--site", "hq"]).ok();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("fleet.csv");
    std::fs::write(
        &good,
        "# three routers\naddress,port,user,tls,ssh_port,interval\n\
         10.1.0.1,,admin,false,,\n10.1.0.2,18729,noc,true,2222,30\n10.1.0.3,8728,admin,no,,60\n",
    )
    .expect("write");

    let out = import(&c, "hq", &good, Some("s3cret")).ok();
    assert!(
        out.stdout_text().contains("Imported 3 devices"),
        "{}",
        out.stdout_text()
    );
    let devices = c.devices();
    assert_eq!(devices.len(), 3);
    let second = devices.iter().find(|d| d["address"] == "10.1.0.2").expect("listed");
    assert_eq!(
        (second["api_port"].as_i64(), second["api_tls"].as_bool()),
        (Some(18729), Some(true))
    );
    assert_eq!(
        c.count("SELECT COUNT(*) FROM devices WHERE address = '10.1.0.1' AND api_port = 8728 AND ssh_port = 22 AND poll_interval_secs = 60"),
        1
    );
    assert_eq!(c.count("SELECT COUNT(*) FROM device_events WHERE kind = 'added'"), 3);

    // Again: everything is there already.
    let out = import(&c, "hq", &good, Some("s3cret")).ok();
    assert!(
        out.stdout_text().contains("Imported 0 devices"),
        "{}",
        out.stdout_text()
    );
    assert!(out.stdout_text().contains("Skipped 3 devices"), "{}", out.stdout_text());

    // One bad line: named with its field, and nothing of the file is added.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "address,port,user,tls\n10.2.0.1,8728,admin,false\n10.2.0.2,70000,admin,false\n",
    )
    .expect("write");
    let out = import(&c, "hq", &bad, Some("s3cret"));
    refused(out.clone(), "line 3: port \"70000\"");
    refused(out, "no device was added");
    refused(import(&c, "nowhere", &good, Some("s3cret")), "no site \"nowhere\"");
    refused(import(&c, "hq", &good, None), "OUTPOST_ROS_PASSWORD");
    assert_eq!(c.devices().len(), 3);
}

#[test]
fn imports_a_fleet_on_sqlite() {
    imports_a_fleet(None);
}

#[test]
fn imports_a_fleet_on_postgres() {
    if let Some(url) = postgres_url() {
        imports_a_fleet(Some(url));
    }
}
