//! kill -9 of the collector or the agent while 100,000 observations stream:
//! after a restart every observation is stored exactly once.
use outpost_tests::{Agent, Collector, OutputExt, collector_with_agent_on, postgres_url, wait_for};

const N: i64 = 100_000;

/// Fills the agent's outbox with N samples (values 0..N) and slows batches
/// down enough that a kill lands mid-stream.
fn prepare(a: &Agent) {
    a.cli(&["synth", "--count", &N.to_string()]).ok();
    a.set_config("batch_max_observations", "500");
    a.set_config("max_in_flight_batches", "2");
    a.set_config("max_backoff_secs", "1");
}

fn stored(c: &Collector) -> i64 {
    c.count("SELECT COUNT(*) FROM metric_samples")
}

/// Waits until at least `n` rows are stored.
fn wait_stored(c: &Collector, n: i64) -> i64 {
    wait_for(&format!("{n} stored observations"), || {
        Some(stored(c)).filter(|&s| s >= n)
    })
}

fn assert_exactly_once(c: &Collector, agent_id: &str) {
    wait_stored(c, N);
    assert_eq!(stored(c), N, "no duplicates");
    assert_eq!(
        c.count(&format!(
            "SELECT COUNT(DISTINCT seq) FROM metric_samples WHERE agent_id = '{agent_id}' AND seq BETWEEN 1 AND {N}"
        )),
        N,
        "every sequence number 1..=N once"
    );
    // Each sample carries its index as the value: the right data, not just the right count.
    assert_eq!(
        c.count("SELECT CAST(SUM(value) AS BIGINT) FROM metric_samples WHERE name = 'synthetic.sample'"),
        N * (N - 1) / 2
    );
    assert_eq!(
        c.count("SELECT COUNT(*) FROM metric_samples WHERE seq <> CAST(value AS BIGINT) + 1"),
        0
    );
    // The agent's outbox drains: the collector's high-water mark passes N.
    wait_for("the outbox to drain", || {
        c.agents()
            .into_iter()
            .find(|r| r["id"] == agent_id && r["acked_seq"].as_i64().unwrap_or(0) >= N)
    });
}

fn collector_killed_mid_stream(database_url: Option<String>) {
    let (mut c, mut a) = collector_with_agent_on(database_url, "acme", "hq");
    prepare(&a);
    a.start();
    wait_stored(&c, 5_000);
    c.kill9();
    let at_kill = stored(&c);
    assert!(
        at_kill < N,
        "the kill landed after the stream finished ({at_kill}); the test proves nothing"
    );
    c.start();
    assert_exactly_once(&c, &a.id());
    a.running().wait_log("uplink down");
}

#[test]
fn kill9_collector_mid_stream_sqlite() {
    collector_killed_mid_stream(None);
}

#[test]
fn kill9_collector_mid_stream_postgres() {
    if let Some(url) = postgres_url() {
        collector_killed_mid_stream(Some(url));
    }
}

#[test]
fn kill9_agent_mid_stream() {
    let (c, mut a) = collector_with_agent_on(None, "acme", "hq");
    prepare(&a);
    a.start();
    wait_stored(&c, 5_000);
    a.kill9();
    let at_kill = stored(&c);
    assert!(
        at_kill < N,
        "the kill landed after the stream finished ({at_kill}); the test proves nothing"
    );
    a.start();
    assert_exactly_once(&c, &a.id());
}
