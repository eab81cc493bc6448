//! The collector's commands refuse bad input with a message naming the problem.
use std::process::{Command, Output};

use outpost_tests::{Collector, OutputExt, bin};

/// Asserts a failed command whose stderr contains `why`.
fn refused(out: Output, why: &str) {
    assert!(!out.status.success(), "command should fail: {}", out.stdout_text());
    assert!(
        out.stderr_text().contains(why),
        "expected {why:?} in: {}",
        out.stderr_text()
    );
}

#[test]
fn commands_name_what_is_wrong() {
    let c = Collector::init();
    refused(c.cli(&["init"]), "already initialised");
    refused(c.cli(&["agent", "revoke", "not-a-uuid"]), "invalid agent id");
    refused(
        c.cli(&["agent", "revoke", "00000000-0000-4000-8000-000000000000"]),
        "no agent with id",
    );
    refused(
        c.cli(&["site", "delete", "--tenant", "nobody", "--site", "nowhere"]),
        "not found",
    );
    refused(c.cli(&["serve", "--agent-cert-lifetime", "10s"]), "minimum is 60s");

    let run = |args: &[&str], dir: &std::path::Path| {
        Command::new(bin("outpost-collector"))
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .output()
            .expect("run")
    };
    refused(
        run(&["agent", "list", "--database-url", "mysql://x"], c.data_dir()),
        "unsupported database URL",
    );
    let empty = tempfile::tempdir().expect("tempdir");
    refused(
        run(
            &["serve", "--agent-addr", "127.0.0.1:0", "--console-addr", "127.0.0.1:0"],
            empty.path(),
        ),
        "outpost-collector init",
    );
}
