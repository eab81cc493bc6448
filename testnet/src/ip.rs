//! Running iproute2's `ip` and reading its answers.

use std::process::{Command, Output, Stdio};

use crate::TestNetError;

/// Runs `ip ARGS…` and fails with its stderr unless it succeeds.
pub(crate) fn ip(args: &[&str]) -> Result<Output, TestNetError> {
    run("ip", args)
}

/// Runs `program ARGS…` and fails with its stderr unless it succeeds.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<Output, TestNetError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestNetError::io(format!("running `{command}`"), e))?;
    if !output.status.success() {
        return Err(TestNetError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

/// Names of all network namespaces, from `ip netns list`.
///
/// Lines look like `name` or `name (id: 3)`.
pub(crate) fn netns_list() -> Result<Vec<String>, TestNetError> {
    let out = ip(&["netns", "list"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Pids of the processes inside namespace `ns`, from `ip netns pids`.
pub(crate) fn netns_pids(ns: &str) -> Result<Vec<i32>, TestNetError> {
    let out = ip(&["netns", "pids", ns])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect())
}
