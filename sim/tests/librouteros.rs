//! Cross-check with a client we did not write: PyPI librouteros polls a
//! simulated device (API and API-SSL) and must read the same rows our codec
//! reads from the same device at the same moment, and the same rows our
//! client (`outpost_routeros::Client`) reads.
//!
//! Needs the venv made by `scripts/python-deps` (at `$OUTPOST_PYVENV`, or
//! `target/pyvenv` in the repository).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::*;
use outpost_routeros::{Client, ClientConfig, Command};
use outpost_sim::RosMix;
use serde_json::Value;

fn python() -> PathBuf {
    let venv = std::env::var_os("OUTPOST_PYVENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyvenv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "no Python venv with librouteros at {}: run scripts/python-deps first",
        venv.display()
    );
    py
}

/// librouteros turns "true"/"yes" into booleans and decimal strings into
/// integers; bring our strings to the same shape.
fn as_librouteros(v: &str) -> Value {
    match v {
        "true" | "yes" => Value::Bool(true),
        "false" | "no" => Value::Bool(false),
        _ => match v.parse::<i64>() {
            Ok(n) if n.to_string() == v => Value::from(n),
            _ => Value::String(v.to_owned()),
        },
    }
}

/// Fields that move between two reads (clocks, counters, wandering gauges).
const MOVING: &[&str] = &[
    "uptime",
    "cpu-load",
    "free-memory",
    "write-sect-since-reboot",
    "write-sect-total",
    "age",
    "rx-byte",
];

fn compare(what: &str, ours: &[HashMap<String, String>], theirs: &Value) {
    let theirs = theirs
        .as_array()
        .unwrap_or_else(|| panic!("{what}: a list, got {theirs}"));
    assert_eq!(ours.len(), theirs.len(), "{what}: row count");
    for (o, t) in ours.iter().zip(theirs) {
        let t = t.as_object().expect("row object");
        assert_eq!(o.len(), t.len(), "{what}: same fields\nours {o:?}\ntheirs {t:?}");
        for (k, v) in o {
            let tv = t.get(k).unwrap_or_else(|| panic!("{what}: librouteros lacks {k}"));
            if k == "rx-byte" {
                assert!(
                    tv.as_u64().expect("counter") >= v.parse::<u64>().expect("counter"),
                    "{what}: {k} grows"
                );
            } else if !MOVING.contains(&k.as_str()) {
                assert_eq!(&as_librouteros(v), tv, "{what}: {k}");
            }
        }
    }
}

#[tokio::test]
async fn librouteros_reads_what_our_codec_and_client_read() {
    let py = python();
    let fleet = fleet([127, 0, 90, 1], 12, RosMix::Mixed).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/librouteros_check.py");
    // One RouterBOARD and one CHR, so both routerboard answers are checked.
    let mut picks = vec![
        fleet
            .devices()
            .into_iter()
            .find(|d| d.board != "CHR")
            .expect("a RouterBOARD"),
    ];
    picks.extend(fleet.devices().into_iter().find(|d| d.board == "CHR"));
    for d in picks {
        let mut c = logged_in(d.api).await;
        let ours = [
            ("resource", rows(&call(&mut c, &["/system/resource/print"]).await)),
            ("identity", rows(&call(&mut c, &["/system/identity/print"]).await)),
            (
                "interfaces",
                rows(&call(&mut c, &["/interface/print", "=.proplist=name,type,running,rx-byte"]).await),
            ),
            ("addresses", rows(&call(&mut c, &["/ip/address/print"]).await)),
            ("neighbors", rows(&call(&mut c, &["/ip/neighbor/print"]).await)),
            (
                "query",
                rows(
                    &call(
                        &mut c,
                        &[
                            "/interface/print",
                            "=.proplist=name",
                            "?=name=ether1",
                            "?=name=bridge",
                            "?#|",
                        ],
                    )
                    .await,
                ),
            ),
        ];
        let routerboard = call(&mut c, &["/system/routerboard/print"]).await;
        // And our own client (tags, login, typed commands) reads the same.
        let mut cfg = ClientConfig::plain(d.ip.to_string(), "admin", "admin");
        cfg.port = d.api.port();
        let (client, _) = Client::connect(cfg).await.expect("our client logs in");
        let run = |path: &'static str, proplist: &'static [&'static str]| {
            let client = &client;
            async move {
                let mut cmd = Command::new(path);
                if !proplist.is_empty() {
                    cmd = cmd.proplist(proplist);
                }
                let rows = client.run(&cmd).await.expect("our client runs the command");
                rows.iter()
                    .map(|r| {
                        r.iter()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect::<HashMap<_, _>>()
                    })
                    .collect::<Vec<_>>()
            }
        };
        let ours_client = [
            ("resource", run("/system/resource/print", &[]).await),
            ("identity", run("/system/identity/print", &[]).await),
            (
                "interfaces",
                run("/interface/print", &["name", "type", "running", "rx-byte"]).await,
            ),
            ("addresses", run("/ip/address/print", &[]).await),
            ("neighbors", run("/ip/neighbor/print", &[]).await),
        ];
        client.close();

        let out = tokio::process::Command::new(&py)
            .arg(&script)
            .args([
                d.ip.to_string(),
                d.api.port().to_string(),
                d.api_ssl.port().to_string(),
                "admin".to_owned(),
                "admin".to_owned(),
            ])
            .output()
            .await
            .expect("run python");
        assert!(
            out.status.success(),
            "librouteros_check.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).expect("json");
        for transport in ["plain", "ssl"] {
            let t = &theirs[transport];
            for (what, rows) in &ours {
                compare(&format!("{} {transport} {what}", d.ip), rows, &t[*what]);
            }
            for (what, rows) in &ours_client {
                compare(&format!("{} {transport} {what} (our client)", d.ip), rows, &t[*what]);
            }
            if routerboard[0][0] == "!trap" {
                assert_eq!(t["routerboard"]["trap"], "no such command prefix");
            } else {
                compare("routerboard", &common::rows(&routerboard), &t["routerboard"]);
            }
            let names: Vec<&str> = t["query"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|r| r["name"].as_str())
                .collect();
            assert_eq!(names, ["ether1", "bridge"]);
        }
    }
}
