//! The public API end to end, with real processes: the collector serving it on
//! its HTTPS console port, the `outpost` command line, and a client we did not
//! write (PyPI grpcio, stubs generated from the published `.proto`).
use std::path::Path;
use std::process::{Command, Output, Stdio};

use outpost_tests::browser::workspace_root;
use outpost_tests::*;

/// `outpost <args>` with its credentials in `config`.
fn outpost(config: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("outpost"));
    cmd.args(args)
        .env("OUTPOST_CONFIG_DIR", config)
        .env_remove("OUTPOST_API_TOKEN")
        .env_remove("OUTPOST_PASSWORD")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run outpost")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The collector CA's fingerprint, as `cert fingerprint` prints it.
fn ca_fingerprint(c: &Collector) -> String {
    let out = c.cli(&["cert", "fingerprint"]).ok();
    let fp = out.stdout_text().trim().to_owned();
    assert!(fp.starts_with("sha256:") && fp.len() == 71, "{fp}");
    fp
}

/// An API token made with the collector's command line.
fn api_token(c: &Collector, args: &[&str]) -> String {
    let mut all = vec!["api-token", "create"];
    all.extend_from_slice(args);
    let out = c.cli(&all).ok();
    out.stdout_text().lines().last().expect("token line").trim().to_owned()
}

#[test]
fn the_command_line_and_grpcio_see_one_tenant_through_a_tenant_token() {
    let (c, acme_agent) = collector_with_agent("acme", "hq");
    let globex_agent = Agent::new();
    globex_agent.enroll(&c.agent_endpoint(), &c.token("globex", "hq")).ok();
    c.cli(&[
        "user",
        "add",
        "--username",
        "acme-ops",
        "--tenant",
        "acme",
        "--role",
        "operator",
    ])
    .ok();
    let token = api_token(
        &c,
        &[
            "--user", "acme-ops", "--tenant", "acme", "--scope", "read", "--name", "psa",
        ],
    );
    let fingerprint = ca_fingerprint(&c);
    let console = c.console_addr.expect("console").to_string();
    let config = tempfile::tempdir().expect("config dir");

    let login = outpost(
        config.path(),
        &[("OUTPOST_API_TOKEN", &token)],
        &["login", &console, "--ca-fingerprint", &fingerprint],
    );
    assert!(login.status.success(), "login: {}", text(&login.stderr));
    let listed = outpost(config.path(), &[], &["agents", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let agents = v["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 1, "{v}");
    assert_eq!(agents[0]["id"], acme_agent.id());
    assert_eq!(agents[0]["tenant_name"], "acme");

    let revoke = outpost(config.path(), &[], &["agent", "revoke", &globex_agent.id()]);
    assert_eq!(revoke.status.code(), Some(2));
    assert!(text(&revoke.stderr).contains("not found"), "{}", text(&revoke.stderr));
    let revoke = outpost(config.path(), &[], &["agent", "revoke", &acme_agent.id()]);
    assert!(
        text(&revoke.stderr).contains("permission denied"),
        "{}",
        text(&revoke.stderr)
    );

    let wrong_pin = tempfile::tempdir().expect("dir");
    let refused = outpost(
        wrong_pin.path(),
        &[("OUTPOST_API_TOKEN", &token)],
        &["login", &console, "--ca-fingerprint", &"00".repeat(32)],
    );
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("pinned"), "{}", text(&refused.stderr));

    let python = workspace_root().join("target/pyvenv/bin/python");
    let script = workspace_root().join("tests/python/api_grpcio.py");
    let out = Command::new(python)
        .arg(script)
        .arg(workspace_root().join("proto/proto"))
        .arg(&console)
        .arg(c.ca_file())
        .arg("localhost")
        .arg(&token)
        .output()
        .expect("run the grpcio client");
    assert!(out.status.success(), "grpcio: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("grpcio JSON");
    assert_eq!(v["whoami"]["token_scope"], "read");
    assert_eq!(v["agents"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["agents"][0]["id"], acme_agent.id());
    assert_eq!(v["unauthenticated"], "UNAUTHENTICATED");
}

#[test]
fn a_password_sign_in_from_the_command_line_opens_a_session_that_logout_ends() {
    let (c, _agent) = collector_with_agent("acme", "hq");
    let fingerprint = ca_fingerprint(&c);
    let console = c.console_addr.expect("console").to_string();
    let config = tempfile::tempdir().expect("config dir");

    let wrong = outpost(
        config.path(),
        &[("OUTPOST_PASSWORD", "not the password")],
        &["login", &console, "--ca-fingerprint", &fingerprint, "--user", "admin"],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("invalid username, password or code"),
        "{}",
        text(&wrong.stderr)
    );

    let login = outpost(
        config.path(),
        &[("OUTPOST_PASSWORD", &c.admin_password)],
        &["login", &console, "--ca-fingerprint", &fingerprint, "--user", "admin"],
    );
    assert!(login.status.success(), "login: {}", text(&login.stderr));
    let me = outpost(config.path(), &[], &["whoami", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&me.stdout).expect("whoami JSON");
    assert_eq!(v["username"], "admin");
    assert_eq!(v["credential"], "session");
    assert_eq!(v["msp_admin"], true);
    let token = outpost(
        config.path(),
        &[],
        &["token", "create", "--site", &site_id(&config, "acme")],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(
        text(&token.stdout)
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("outpost1.")),
        "{}",
        text(&token.stdout)
    );

    // The audit log through the API, as the collector itself exports it.
    let range = ["--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"];
    let mut args = vec!["audit", "export"];
    args.extend_from_slice(&range);
    let ours = outpost(config.path(), &[], &args);
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    let theirs = c.cli(&args).ok();
    assert_eq!(text(&ours.stdout), theirs.stdout_text());
    assert!(
        text(&ours.stdout).contains(",console.login,user admin,success,"),
        "{}",
        text(&ours.stdout)
    );
    assert!(text(&ours.stdout).contains(",token.create,"), "{}", text(&ours.stdout));

    let saved = std::fs::read_to_string(config.path().join("credentials.toml")).expect("credentials");
    let out = outpost(config.path(), &[], &["logout"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The session is over on the collector too, not only forgotten here.
    std::fs::write(config.path().join("credentials.toml"), saved).expect("restore");
    let after = outpost(config.path(), &[], &["whoami"]);
    assert_eq!(after.status.code(), Some(2));
    assert!(text(&after.stderr).contains("log in again"), "{}", text(&after.stderr));
}

/// The id of `tenant`'s first site, through `outpost sites list --json`.
fn site_id(config: &tempfile::TempDir, tenant: &str) -> String {
    let out = outpost(config.path(), &[], &["sites", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sites JSON");
    v["sites"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["tenant_name"] == tenant))
        .and_then(|s| s["id"].as_str())
        .expect("a site of the tenant")
        .to_owned()
}
