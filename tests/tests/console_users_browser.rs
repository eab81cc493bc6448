//! Tenant users, roles and TOTP end to end: `user add|list|role|remove` on the
//! command line, then headless Chromium (`console/tests/users.mjs`): the MSP
//! administrator creates a tenant viewer, who is refused adding a device
//! (403), sets up TOTP, and signs in with password + code, then with a
//! recovery code, which is refused the second time.
//!
//! Skipped without the browser prerequisites, or failing when
//! `OUTPOST_REQUIRE_BROWSER=1` (as in `scripts/test`); the command-line part
//! always runs.
use std::path::PathBuf;

use outpost_tests::browser::{self, BrowserScript};
use outpost_tests::http::{login, request};
use outpost_tests::{Collector, OutputExt as _};

fn users_json(c: &Collector) -> serde_json::Value {
    let out = c.cli(&["user", "list", "--json"]).ok();
    serde_json::from_str(&out.stdout_text()).expect("user list --json")
}

#[test]
fn tenant_users_roles_and_totp() {
    let mut c = Collector::init();
    // Creates tenants "acme" and "globex" with a site each.
    c.token("acme", "hq");
    c.token("globex", "plant");
    c.start();
    let console = c.console();

    // Bootstrapping from the command line.
    let out = c
        .cli(&[
            "user",
            "add",
            "--username",
            "olga",
            "--tenant",
            "acme",
            "--role",
            "operator",
        ])
        .ok();
    let password = out
        .stdout_text()
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("password line")
        .trim()
        .to_owned();
    let refused = c.cli(&["user", "add", "--username", "olga", "--tenant", "acme"]);
    assert!(!refused.status.success(), "a second olga");
    assert!(
        refused.stderr_text().contains("already exists"),
        "{}",
        refused.stderr_text()
    );
    let refused = c.cli(&["user", "add", "--username", "nemo", "--tenant", "initech"]);
    assert!(
        refused.stderr_text().contains("no tenant named"),
        "{}",
        refused.stderr_text()
    );
    let users = users_json(&c);
    let olga = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "olga")
        .expect("olga listed");
    assert_eq!(
        olga["roles"],
        serde_json::json!([{"tenant": "acme", "role": "operator"}])
    );

    // Olga sees acme only, and may add devices there.
    let session = login(&c.console(), "olga", &password);
    let overview = request(&c.console(), "GET", "/api/overview", &[("Cookie", &session)], "");
    assert_eq!(overview.status, 200);
    let text = overview.body.clone();
    assert!(text.contains("acme") && !text.contains("globex"), "{text}");
    let form = request(&console, "GET", "/devices/new", &[("Cookie", &session)], "");
    assert_eq!(form.status, 200);

    // Demoted to viewer: the same session is refused at once.
    c.cli(&[
        "user",
        "role",
        "--username",
        "olga",
        "--tenant",
        "acme",
        "--role",
        "viewer",
    ])
    .ok();
    let form = request(&console, "GET", "/devices/new", &[("Cookie", &session)], "");
    assert_eq!(form.status, 403);
    // Removed from the tenant: nothing of it is left to see.
    c.cli(&[
        "user",
        "role",
        "--username",
        "olga",
        "--tenant",
        "acme",
        "--role",
        "none",
    ])
    .ok();
    let overview = request(&c.console(), "GET", "/api/overview", &[("Cookie", &session)], "");
    assert!(!overview.body.contains("acme"));
    c.cli(&["user", "remove", "--username", "olga"]).ok();
    let gone = request(&c.console(), "GET", "/api/overview", &[("Cookie", &session)], "");
    assert_eq!(gone.status, 401, "a deleted user's session ends");

    let root = browser::workspace_root();
    if !browser::available(&root) {
        return;
    }
    // The administrator password command still works.
    let admin_password = {
        let out = c.cli(&["admin", "reset-password", "--username", "admin"]).ok();
        out.stdout_text()
            .rsplit_once(": ")
            .map(|(_, p)| p.trim().to_owned())
            .expect("new admin password")
    };
    let url = console.url();
    let pin = browser::spki_pin(&c.data_dir().join("server.pem"));
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console_users_browser_failure.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut script = BrowserScript::spawn(
        &root,
        "users.mjs",
        &[
            ("CONSOLE_URL", &url),
            ("CONSOLE_SPKI", &pin),
            ("CONSOLE_USER", "admin"),
            ("CONSOLE_PASSWORD", &admin_password),
            ("TENANT", "acme"),
            ("NEW_USER", "vera"),
            ("NEW_PASSWORD", "vera-password-1"),
        ],
        screenshot,
    );
    for line in ["CREATED", "DENIED", "ENROLLED", "TOTP", "RECOVERY", "DONE"] {
        script.expect_line(line);
    }
    let status = script.wait_exit();
    if !status.success() {
        script.fail(&format!("exited with {status} after DONE"));
    }
    // The command line agrees with what the browser did.
    let users = users_json(&c);
    let vera = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "vera")
        .expect("vera listed");
    assert_eq!(vera["totp"], true);
    assert_eq!(vera["roles"], serde_json::json!([{"tenant": "acme", "role": "viewer"}]));
}
