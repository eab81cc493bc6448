//! Bad agent configuration or a missing identity: a clear message naming the
//! problem and a non-zero exit, from both `check-config` and `run`; and the
//! enrollment token read from a file, so it never shows on a command line.
use outpost_tests::{Agent, Collector, OutputExt, collector_with_agent};

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

#[test]
fn enrollment_reads_the_token_from_a_file() {
    let mut c = Collector::init();
    c.start();
    let a = Agent::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let enroll_from = |file: &std::path::Path| {
        a.cli(&[
            "enroll",
            "--collector",
            &c.agent_endpoint(),
            "--token-file",
            file.to_str().expect("UTF-8 path"),
        ])
    };

    let empty = dir.path().join("empty-token.txt");
    std::fs::write(&empty, "\n").expect("write");
    let missing = dir.path().join("no-such-token.txt");
    for (file, says) in [(&empty, "is empty"), (&missing, "cannot read")] {
        let out = enroll_from(file);
        assert!(!out.status.success(), "enrolled with {}", file.display());
        let err = out.stderr_text();
        assert!(err.contains(&file.display().to_string()) && err.contains(says), "{err}");
    }

    let file = dir.path().join("token.txt");
    std::fs::write(&file, format!("{}\n", c.token("acme", "hq"))).expect("write");
    enroll_from(&file).ok();
    a.cli(&["check-config"]).ok();
}
