//! Bad agent configuration or a missing identity: a clear message naming the
//! problem and a non-zero exit, from both `check-config` and `run`.
use outpost_tests::{Agent, OutputExt, collector_with_agent};

#[test]
fn bad_configuration_is_named_and_refused() {
    let (_c, a) = collector_with_agent("acme", "hq");
    a.cli(&["check-config"]).ok();

    a.set_config("batch_max_observations", "0");
    for cmd in ["check-config", "run"] {
        let out = a.cli(&[cmd]);
        assert!(!out.status.success(), "{cmd} accepted a bad configuration");
        assert!(
            out.stderr_text().contains("batch_max_observations"),
            "{cmd}: {}",
            out.stderr_text()
        );
    }

    a.set_config("batch_max_observations", "500");
    a.set_config("surprise", "true");
    let out = a.cli(&["check-config"]);
    assert!(!out.status.success());
    assert!(out.stderr_text().contains("surprise"), "{}", out.stderr_text());
}

#[test]
fn an_unenrolled_data_directory_says_what_to_do() {
    let a = Agent::new();
    for cmd in ["check-config", "run"] {
        let out = a.cli(&[cmd]);
        assert!(!out.status.success());
        assert!(
            out.stderr_text().contains("outpost-agent enroll"),
            "{cmd}: {}",
            out.stderr_text()
        );
    }
}
