//! RouterOS devices end to end: a simulated fleet (`outpost-sim`, the real API
//! protocol on loopback) polled by a real agent, stored by a real collector.
use outpost_tests::sim::Sim;
use outpost_tests::{Collector, OutputExt as _, collector_with_agent_on, postgres_url, wait_for};

/// The simulated devices' password: distinctive, so a leak is found by a grep.
const PASSWORD: &str = "Sim-Pass-5b1e7c";

/// Waits until the device's listed state is `state`, and returns the row.
fn wait_state(collector: &Collector, id: &str, state: &str) -> serde_json::Value {
    wait_for(&format!("device {id} {state}"), || {
        let d = collector.device(id);
        (d["state"] == state).then_some(d)
    })
}

fn polled_fleet_is_stored(database_url: Option<String>, first_ip: &str) {
    let (collector, mut agent) = collector_with_agent_on(database_url, "acme", "hq");
    agent.start();
    let sim = Sim::start(3, first_ip, "mixed", PASSWORD);
    let v6 = sim.device_with("6.").clone();
    let v7 = sim.device_with("7.").clone();
    let plain6 = collector.add_sim_device("acme", "hq", &v6, PASSWORD, false);
    let tls7 = collector.add_sim_device("acme", "hq", &v7, PASSWORD, true);

    // Identity, version and board come from the device, through the agent.
    wait_state(&collector, &plain6, "up");
    let d6 = wait_for("v6 identity", || {
        let d = collector.device(&plain6);
        (d["identity"] == v6.identity.as_str()).then_some(d)
    });
    assert_eq!(d6["version"], v6.ros.as_str(), "{d6}");
    assert_eq!(d6["channel"], "", "v6 has no channel: {d6}");
    let d7 = wait_for("v7 identity", || {
        let d = collector.device(&tls7);
        (d["identity"] == v7.identity.as_str()).then_some(d)
    });
    assert_eq!(d7["version"], v7.ros.as_str(), "{d7}");
    assert_eq!(d7["channel"], "stable", "{d7}");
    assert!(
        d7["cpu_load"].as_i64().is_some() && d7["total_memory"].as_i64().unwrap_or(0) > 0,
        "{d7}"
    );
    // API-SSL: the certificate was pinned on first use.
    let pin = d7["api_tls_pin"].as_str().expect("pinned").to_owned();
    assert_eq!(pin.len(), 64, "{d7}");

    // Lists: interfaces with rates after two polls, addresses, neighbours
    // (other simulated devices), and log lines.
    wait_for("interface rates", || {
        (collector.count(&format!(
            "SELECT COUNT(*) FROM device_interfaces WHERE device_id = '{plain6}' AND rx_bps IS NOT NULL"
        )) > 0)
            .then_some(())
    });
    assert!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM device_addresses WHERE device_id = '{tls7}'"
        )) > 0
    );
    assert!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM device_neighbors WHERE device_id = '{tls7}'"
        )) > 0
    );
    wait_for("log lines", || {
        (collector.count(&format!("SELECT COUNT(*) FROM device_log WHERE device_id = '{plain6}'")) > 0).then_some(())
    });
    assert_eq!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM device_events WHERE device_id = '{tls7}' AND kind = 'certificate_pinned'"
        )),
        1
    );

    // Configuration backups over SSH: the first one of each device.
    for id in [&plain6, &tls7] {
        wait_for("first configuration backup", || {
            (collector.count(&format!(
                "SELECT COUNT(*) FROM config_versions WHERE device_id = '{id}' AND trigger_reason = 'first'"
            )) == 1)
                .then_some(())
        });
    }
    // The SSH host key was pinned on first use.
    assert!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM devices WHERE id = '{plain6}' AND ssh_host_key_pin IS NOT NULL"
        )) == 1
    );

    // Unknown reply words are tolerated: the device stays up and is polled.
    sim.control(&format!("unknown-word {} !foo", v6.ip));
    let polled = collector.device(&plain6)["last_poll_ms"].as_i64().expect("polled");
    wait_for("a poll after unknown words", || {
        let d = collector.device(&plain6);
        (d["last_poll_ms"].as_i64().unwrap_or(0) > polled && d["state"] == "up").then_some(())
    });
    sim.control(&format!("clear {}", v6.ip));

    // A counter reset (a reboot) gives no rate for one poll, then rates again.
    sim.control(&format!("counter {} ether1 reset", v6.ip));
    let rate = |null: bool| {
        format!(
            "SELECT COUNT(*) FROM device_interfaces WHERE device_id = '{plain6}' AND name = 'ether1' AND rx_bps IS {}NULL",
            if null { "" } else { "NOT " }
        )
    };
    wait_for("no rate across the reset", || {
        (collector.count(&rate(true)) == 1).then_some(())
    });
    wait_for("rates after the reset", || {
        (collector.count(&rate(false)) == 1).then_some(())
    });

    // A changed API-SSL certificate is a state and an event, never accepted.
    sim.control(&format!("rotate-cert {}", v7.ip));
    sim.control(&format!("drop {}", v7.ip));
    let mismatch = wait_state(&collector, &tls7, "tls_pin_mismatch");
    let presented = mismatch["presented_tls_fingerprint"]
        .as_str()
        .expect("presented fingerprint")
        .to_owned();
    assert_ne!(presented, pin);
    assert_eq!(mismatch["api_tls_pin"], pin.as_str(), "the pin must not move by itself");
    collector.cli(&["device", "accept-certificate", &tls7]).ok();
    let d7 = wait_state(&collector, &tls7, "up");
    assert_eq!(d7["api_tls_pin"], presented.as_str());

    // A wrong password is "login failed", with the router's words.
    sim.control(&format!("password {} changed", v6.ip));
    sim.control(&format!("drop {}", v6.ip));
    let failed = wait_state(&collector, &plain6, "auth_failed");
    assert!(
        failed["state_reason"]
            .as_str()
            .unwrap_or("")
            .contains("invalid user name or password"),
        "{failed}"
    );
    sim.control(&format!("password {} {PASSWORD}", v6.ip));

    // A device that disappears is unreachable, and comes back.
    sim.control(&format!("down {}", v6.ip));
    let gone = wait_state(&collector, &plain6, "unreachable");
    assert!(
        gone["state_reason"].as_str().unwrap_or("").contains("refused"),
        "{gone}"
    );
    sim.control(&format!("up {}", v6.ip));
    wait_state(&collector, &plain6, "up");

    // The password travelled only inside the mTLS stream: it is nowhere in
    // the agent's data directory (outbox included) or its log.
    let mut files = vec![agent.data_dir().to_owned()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                files.push(entry.expect("entry").path());
            }
        } else {
            let bytes = std::fs::read(&path).expect("read file");
            assert!(
                !bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
                "{} holds the device password",
                path.display()
            );
        }
    }
    for line in agent.running().log() {
        assert!(!line.contains(PASSWORD), "the agent logged the device password: {line}");
    }
}

/// A RouterOS 7.18 device: `!empty` replies, and a configuration change
/// noticed through `last-config-change` becomes a new backup with its diff,
/// while an unchanged configuration does not.
#[test]
fn a_configuration_change_becomes_a_new_backup_and_nothing_else_does() {
    let (collector, mut agent) = collector_with_agent_on(None, "acme", "hq");
    agent.start();
    let sim = Sim::start_seeded(12, "127.0.33.1", "7", PASSWORD, 3);
    let d = sim.device_with("7.18").clone();
    let id = collector.add_sim_device("acme", "hq", &d, PASSWORD, false);
    wait_state(&collector, &id, "up");
    let versions = |trigger: &str| {
        collector.count(&format!(
            "SELECT COUNT(*) FROM config_versions WHERE device_id = '{id}' AND trigger_reason = '{trigger}'"
        ))
    };
    wait_for("first backup", || (versions("first") == 1).then_some(()));
    // Several polls later, still one version: exports differ only in their
    // header time.
    let polled = collector.device(&id)["last_poll_ms"].as_i64().expect("polled");
    wait_for("two more polls", || {
        (collector.device(&id)["last_poll_ms"].as_i64().unwrap_or(0) > polled + 15_000).then_some(())
    });
    assert_eq!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM config_versions WHERE device_id = '{id}'"
        )),
        1
    );

    sim.control(&format!("config {} /ip dns set servers=192.0.2.53", d.ip));
    wait_for("a backup after the change", || {
        (versions("config-changed") == 1).then_some(())
    });
    assert_eq!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM config_versions WHERE device_id = '{id}' AND trigger_reason = 'config-changed' \
             AND lines_added >= 1 AND sealed_diff IS NOT NULL"
        )),
        1
    );
    assert_eq!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM device_events WHERE device_id = '{id}' AND kind = 'config_version'"
        )),
        2
    );

    // The device gets a new SSH host key: the next backup fails and says
    // why, the key waits for an operator, and the API side stays up.
    sim.control(&format!("rotate-host-key {}", d.ip));
    sim.control(&format!("config {} /ip dns set servers=192.0.2.54", d.ip));
    wait_for("the backup problem", || {
        (collector.count(&format!(
            "SELECT COUNT(*) FROM devices WHERE id = '{id}' AND backup_problem LIKE '%host key%' \
             AND presented_ssh_host_key IS NOT NULL AND presented_ssh_host_key <> ssh_host_key_pin"
        )) == 1)
            .then_some(())
    });
    assert_eq!(collector.device(&id)["state"], "up");
    assert_eq!(versions("config-changed"), 1, "nothing stored under a changed host key");
    // Accepted: the agent gets the new pin and takes the backup it owes.
    let out = collector.cli(&["device", "accept-host-key", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the owed backup", || (versions("config-changed") == 2).then_some(()));
    wait_for("the problem cleared", || {
        (collector.count(&format!(
            "SELECT COUNT(*) FROM devices WHERE id = '{id}' AND backup_problem = '' AND presented_ssh_host_key IS NULL"
        )) == 1)
            .then_some(())
    });
    let out = collector.cli(&["device", "accept-host-key", &id]);
    assert!(!out.status.success(), "nothing left to accept");
}

#[test]
fn a_simulated_fleet_is_polled_into_sqlite() {
    polled_fleet_is_stored(None, "127.0.31.1");
}

#[test]
fn a_simulated_fleet_is_polled_into_postgres() {
    let Some(url) = postgres_url() else { return };
    polled_fleet_is_stored(Some(url), "127.0.32.1");
}
