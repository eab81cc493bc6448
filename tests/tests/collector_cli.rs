//! The collector's commands refuse bad input with a message naming the problem.
use outpost_tests::{Collector, OutputExt};

#[test]
fn commands_name_what_is_wrong() {
    let c = Collector::init();
    let again = c.cli(&["init"]);
    assert!(!again.status.success());
    assert!(
        again.stderr_text().contains("already initialised"),
        "{}",
        again.stderr_text()
    );

    let bad_id = c.cli(&["agent", "revoke", "not-a-uuid"]);
    assert!(!bad_id.status.success());
    assert!(
        bad_id.stderr_text().contains("invalid agent id"),
        "{}",
        bad_id.stderr_text()
    );

    let unknown = c.cli(&["agent", "revoke", "00000000-0000-4000-8000-000000000000"]);
    assert!(!unknown.status.success());
    assert!(
        unknown.stderr_text().contains("no agent with id"),
        "{}",
        unknown.stderr_text()
    );

    let no_site = c.cli(&["site", "delete", "--tenant", "nobody", "--site", "nowhere"]);
    assert!(!no_site.status.success());
    assert!(no_site.stderr_text().contains("not found"), "{}", no_site.stderr_text());

    let short = c.cli(&["serve", "--agent-cert-lifetime", "10s"]);
    assert!(!short.status.success());
    assert!(
        short.stderr_text().contains("minimum is 60s"),
        "{}",
        short.stderr_text()
    );

    let out = std::process::Command::new(outpost_tests::bin("outpost-collector"))
        .args(["agent", "list", "--database-url", "mysql://x"])
        .arg("--data-dir")
        .arg(c.data_dir())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));

    let empty = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(outpost_tests::bin("outpost-collector"))
        .args(["serve", "--agent-addr", "127.0.0.1:0", "--console-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(empty.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("outpost-collector init"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
