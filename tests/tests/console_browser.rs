//! The console in a real browser: headless Chromium signs in through the login
//! form and sees a second agent appear on the overview, live over Server-Sent
//! Events, without reloading the page.
//!
//! The browser side is `console/tests/live_update.mjs` (Node, playwright-core
//! from `console/node_modules`, Debian's `/usr/bin/chromium`). Without those the
//! test is skipped, or fails when `OUTPOST_REQUIRE_BROWSER=1` (as in
//! `scripts/test`).
use std::path::PathBuf;

use outpost_tests::browser::{self, BrowserScript};
use outpost_tests::{Agent, Collector, OutputExt as _, wait_for};

fn wait_online(c: &Collector, id: &str) {
    wait_for(&format!("agent {id} to be online"), || {
        c.agents().into_iter().find(|r| r["id"] == id && r["online"] == true)
    });
}

#[test]
fn console_overview_updates_live_in_a_browser() {
    let root = browser::workspace_root();
    if !browser::available(&root) {
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

    let url = c.console().url();
    let pin = browser::spki_pin(&c.data_dir().join("server.pem"));
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console_browser_failure.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut script = BrowserScript::spawn(
        &root,
        "live_update.mjs",
        &[
            ("CONSOLE_URL", &url),
            ("CONSOLE_SPKI", &pin),
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
