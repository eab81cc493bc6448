//! Without root, building fails with what is needed, tests skip with that
//! message, and `OUTPOST_REQUIRE_NETNS=1` turns the skip into a failure.
//! Checked by running a test of this binary as user `nobody`.

use std::process::{Command, Output};

use outpost_testnet::{REQUIRE_ENV, TestNet, TestNetError};

const CHILD_ENV: &str = "OUTPOST_TESTNET_UNPRIVILEGED_CHILD";

/// Run as `nobody` by [`without_root_build_says_what_is_needed`].
#[test]
#[ignore = "a helper, run as nobody by without_root_build_says_what_is_needed"]
fn unprivileged_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    match TestNet::builder().build() {
        Err(e @ TestNetError::Unavailable { .. }) => println!("ERROR {e}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Skips (prints and returns None), or panics when required.
    assert!(TestNet::builder().build_or_skip().is_none());
}

fn run_as_nobody(require: bool) -> Option<Output> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args([
            "--exact",
            "unprivileged_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env_remove(REQUIRE_ENV);
    if require {
        command.env(REQUIRE_ENV, "1");
    }
    match command.output() {
        Ok(output) => Some(output),
        Err(e) => {
            eprintln!("skipping: cannot run setpriv (util-linux): {e}");
            None
        }
    }
}

#[test]
fn without_root_build_says_what_is_needed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: dropping to nobody needs root; without root every other test here shows this case");
        return;
    }
    let Some(skipped) = run_as_nobody(false) else { return };
    let stdout = String::from_utf8_lossy(&skipped.stdout);
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("ERROR test network unavailable: building network namespaces needs root"),
        "{stdout}"
    );
    assert!(stdout.contains("uid 65534"), "{stdout}");
    assert!(
        stderr.contains("skipping: test network unavailable") && stderr.contains(REQUIRE_ENV),
        "{stderr}"
    );

    let Some(required) = run_as_nobody(true) else { return };
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&required.stdout),
        String::from_utf8_lossy(&required.stderr)
    );
    assert!(!required.status.success(), "required but did not fail:\n{output}");
    assert!(
        output.contains("building the test network failed: test network unavailable"),
        "{output}"
    );
}
