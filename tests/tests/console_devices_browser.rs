//! The device pages in a real browser, with the real parts: a simulated fleet
//! (`outpost-sim`) polled by a real agent, stored by a real collector, seen
//! through the console by headless Chromium. The list, a device page with its
//! charts, the live traffic view (samples streamed from the device's
//! `/interface/monitor-traffic` through the agent and the collector), and the
//! topology.
//!
//! The browser side is `console/tests/device_page.mjs`; see
//! `console_browser.rs` for what it needs and when it is skipped.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use outpost_tests::browser::{self, BrowserScript};
use outpost_tests::sim::{Sim, SimDevice};
use outpost_tests::{Collector, Process, collector_with_agent_on, wait_for};

const PASSWORD: &str = "Sim-Pass-3c9a41";

fn wait_polled(c: &Collector, id: &str, sim: &SimDevice) {
    wait_for(&format!("device {id} up as {}", sim.identity), || {
        let d = c.device(id);
        (d["state"] == "up" && d["identity"] == sim.identity.as_str() && d["version"] == sim.ros.as_str()).then_some(())
    });
    wait_for(&format!("the interfaces of {id}"), || {
        (c.count(&format!(
            "SELECT COUNT(*) FROM device_interfaces WHERE device_id = '{id}' AND name = 'ether1'"
        )) == 1)
            .then_some(())
    });
}

/// How many of the agent's log lines for `device` contain `words`.
fn logged(agent: &Process, device: &str, words: &str) -> usize {
    agent
        .log()
        .iter()
        .filter(|l| l.contains(words) && l.contains(device))
        .count()
}

fn wait_logged(script: &mut BrowserScript, agent: &Process, device: &str, words: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while logged(agent, device, words) < times {
        if Instant::now() >= deadline {
            script.fail(&format!(
                "the agent did not log {words:?} {times} times for {device}:\n{}",
                agent.log().join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn device_pages_and_live_traffic_in_a_browser() {
    let root = browser::workspace_root();
    if !browser::available(&root) {
        return;
    }
    let (c, mut agent) = collector_with_agent_on(None, "acme", "hq");
    agent.start();
    let sim = Sim::start(3, "127.0.41.1", "mixed", PASSWORD);
    let v6 = sim.device_with("6.").clone();
    let v7 = sim.device_with("7.").clone();
    let plain6 = c.add_sim_device("acme", "hq", &v6, PASSWORD, false);
    let tls7 = c.add_sim_device("acme", "hq", &v7, PASSWORD, true);
    wait_polled(&c, &plain6, &v6);
    wait_polled(&c, &tls7, &v7);

    let devices = serde_json::json!([
        { "id": plain6, "identity": v6.identity, "version": v6.ros },
        { "id": tls7, "identity": v7.identity, "version": v7.ros },
    ])
    .to_string();
    let url = c.console().url();
    let pin = browser::spki_pin(&c.data_dir().join("server.pem"));
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console_devices_browser_failure.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut script = BrowserScript::spawn(
        &root,
        "device_page.mjs",
        &[
            ("CONSOLE_URL", &url),
            ("CONSOLE_SPKI", &pin),
            ("CONSOLE_USER", "admin"),
            ("CONSOLE_PASSWORD", &c.admin_password),
            ("DEVICES", &devices),
            ("LIVE_DEVICE", &tls7),
        ],
        screenshot,
    );
    script.expect_line("LISTED");
    script.expect_line("PAGE");
    let agent_log = agent.running();
    assert_eq!(
        logged(agent_log, &tls7, "live traffic started"),
        0,
        "live before the view was on"
    );
    script.send_line("GO");

    // The first viewer made the agent stream; switching the view off stops it.
    script.expect_prefix("LIVE ");
    wait_logged(&mut script, agent_log, &tls7, "live traffic started", 1);
    script.expect_line("LIVE-OFF");
    wait_logged(&mut script, agent_log, &tls7, "live traffic stopped", 1);

    // On again, then the browser leaves the page: the stream stops again.
    script.expect_prefix("LIVE-AGAIN ");
    wait_logged(&mut script, agent_log, &tls7, "live traffic started", 2);
    script.expect_line("DONE");
    let status = script.wait_exit();
    if !status.success() {
        script.fail(&format!("exited with {status} after DONE"));
    }
    wait_logged(&mut script, agent_log, &tls7, "live traffic stopped", 2);
    // And stays stopped; the other device never streamed.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(logged(agent_log, &tls7, "live traffic started"), 2);
    assert_eq!(logged(agent_log, &tls7, "live traffic stopped"), 2);
    assert_eq!(logged(agent_log, &plain6, "live traffic"), 0);
    drop(sim);
}
