//! The agent's outbox on a small tmpfs that really fills up: the agent
//! refuses metric samples below its free-space reserve, survives the appends
//! that fail with ENOSPC, recovers without a restart once space is freed, and
//! loses or duplicates nothing it handed a sequence number to. When the disk
//! stays full beyond the retry budget, it exits non-zero, naming the outbox
//! and the cause, and works again after a restart once there is space.
//!
//! The collector is stopped before the disk fills: while it acknowledges
//! promptly, the outbox file stays small (tens of KiB) and redb rewrites pages
//! it already owns, so a full disk does not make a single write fail. Only a
//! growing outbox (a backlog) needs new blocks from the filesystem.
use std::io::Write as _;
use std::path::{Path, PathBuf};

use outpost_agent::outbox::{Outbox, OutboxOptions};
use outpost_tests::tmpfs::Tmpfs;
use outpost_tests::{Agent, Collector, collector_with_agent_in, wait_for};

/// Room for the agent's files and a growing outbox; the filler takes the rest.
const TMPFS_SIZE: &str = "32m";

fn agent_on(mnt: &Tmpfs, reopen_attempts: u32) -> (Collector, Agent) {
    let (c, a) = collector_with_agent_in(mnt.path(), "acme", "hq");
    a.set_config("host_facts_interval_secs", "1");
    a.set_config("synthetic_metrics_per_sec", "4000");
    a.set_config("outbox_min_free_mb", "2");
    a.set_config("outbox_reopen_attempts", &reopen_attempts.to_string());
    a.set_config("max_backoff_secs", "1");
    (c, a)
}

fn samples(c: &Collector, agent: &str) -> i64 {
    c.count(&format!(
        "SELECT COUNT(*) FROM metric_samples WHERE agent_id = '{agent}'"
    ))
}

fn wait_samples(c: &Collector, agent: &str, n: i64) {
    wait_for(&format!("{n} stored metric samples"), || {
        (samples(c, agent) >= n).then_some(())
    });
}

/// Writes a file until the filesystem refuses with ENOSPC; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    // Big writes first, then ever smaller ones to take the last pages.
    let mut chunk = 1usize << 20;
    let block = vec![0xa5u8; chunk];
    while chunk > 0 {
        match f.write(&block[..chunk]) {
            Ok(0) => chunk /= 2,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => chunk /= 2,
            Err(e) => panic!("writing the filler: {e}"),
        }
    }
    path
}

/// Stops the collector, lets the outbox grow a backlog, then fills the disk;
/// returns the filler's path.
fn fill_while_the_outbox_grows(c: &mut Collector, a: &Agent, mnt: &Tmpfs) -> PathBuf {
    c.kill9();
    let outbox = a.data_dir().join("outbox.redb");
    wait_for("the outbox to grow past 1 MiB", || {
        std::fs::metadata(&outbox).ok().filter(|m| m.len() > 1 << 20)
    });
    let filler = fill(mnt.path());
    assert!(mnt.available() < 1 << 20, "the tmpfs is full: {}", mnt.available());
    filler
}

/// The last sequence number the agent's outbox handed out (the agent is stopped).
fn last_seq(a: &Agent) -> (u64, u64) {
    let mut o = OutboxOptions::new(1_000_000);
    o.min_free_bytes = 0;
    let ob = Outbox::open_with(&a.data_dir().join("outbox.redb"), &o).expect("open the outbox");
    (ob.next_seq().expect("next_seq") - 1, ob.refused().expect("refused"))
}

#[test]
fn a_full_disk_does_not_wedge_the_agent_and_loses_nothing() {
    let Some(mnt) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    // Declared after the mount, so dropped (agent killed) before it is unmounted.
    let (mut c, mut a) = agent_on(&mnt, 8);
    a.start();
    let id = a.id();
    wait_samples(&c, &id, 1_000);

    let filler = fill_while_the_outbox_grows(&mut c, &a, &mnt);
    let low = a.running().wait_log("below the outbox reserve");
    assert!(
        low.contains("free_bytes") && low.contains("reserve_bytes=2097152"),
        "{low}"
    );
    // Writes that need new blocks fail for real (ENOSPC); the agent reopens
    // its outbox instead of keeping a broken handle.
    let enospc = a.running().wait_log("outbox I/O error; reopening the database");
    assert!(enospc.contains("No space left on device"), "{enospc}");
    assert!(
        a.process.as_mut().expect("agent").exited().is_none(),
        "the agent is still running"
    );

    std::fs::remove_file(filler).expect("free the space");
    a.running().wait_log("outbox reopened; it works again");
    a.running().wait_log("free disk space is back above the outbox reserve");
    let before = samples(&c, &id);
    c.start();
    wait_samples(&c, &id, before + 1_000);
    assert!(
        a.process.as_mut().expect("agent").exited().is_none(),
        "recovered without a restart"
    );

    // Stop producing, then let the agent deliver what its outbox still holds.
    assert!(a.process.take().expect("agent").terminate(), "clean exit");
    let (last, refused) = last_seq(&a);
    assert!(refused > 0, "metric samples were refused while space was short");
    a.set_config("synthetic_metrics_per_sec", "0");
    a.set_config("host_facts_interval_secs", "3600");
    a.start();
    wait_for("the collector to commit everything the outbox handed out", || {
        c.agents()
            .into_iter()
            .find(|r| r["id"] == id.as_str() && r["acked_seq"].as_i64().unwrap_or(0) >= last as i64)
    });

    // Every number the outbox handed out is stored exactly once: N rows with N
    // distinct numbers, all in 1..=N, across both kinds of observation.
    let union = format!(
        "SELECT seq FROM metric_samples WHERE agent_id = '{id}' AND seq <= {last} \
         UNION ALL SELECT seq FROM host_facts WHERE agent_id = '{id}' AND seq <= {last}"
    );
    assert_eq!(
        c.count(&format!("SELECT COUNT(*) FROM ({union})")),
        last as i64,
        "no duplicates"
    );
    assert_eq!(
        c.count(&format!("SELECT COUNT(DISTINCT seq) FROM ({union})")),
        last as i64,
        "no gaps"
    );
    assert!(
        c.count(&format!("SELECT COUNT(*) FROM host_facts WHERE agent_id = '{id}'")) >= 3,
        "host facts throughout"
    );
}

#[test]
fn a_disk_that_stays_full_makes_the_agent_exit_non_zero_and_a_restart_recovers() {
    let Some(mnt) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let (mut c, mut a) = agent_on(&mnt, 2);
    a.start();
    let id = a.id();
    wait_samples(&c, &id, 500);

    let filler = fill_while_the_outbox_grows(&mut c, &a, &mnt);
    let mut p = a.process.take().expect("agent");
    let status = p.wait_exit();
    assert!(!status.success(), "exit status {status}");
    let message = p.wait_log("error: the outbox ");
    assert!(
        message.contains("outbox.redb is unusable") && message.contains("No space left on device"),
        "the message names the outbox and the cause: {message}"
    );

    std::fs::remove_file(filler).expect("free the space");
    c.start();
    let before = samples(&c, &id);
    a.start();
    a.running().wait_log("connected to the collector");
    wait_samples(&c, &id, before + 500);
}
