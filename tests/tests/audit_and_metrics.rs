//! The audit log and the operability endpoints with real processes: console
//! sign-ins, an enrollment, a refused one and a revocation show up in `audit
//! export`; an edit made directly in the SQLite file is named by `audit
//! verify`; `/metrics` parses with Prometheus' own OpenMetrics parser (from
//! the venv `scripts/python-deps` makes, at `$OUTPOST_PYVENV` or
//! `target/pyvenv`) after an agent has streamed; on PostgreSQL, `/readyz`
//! answers 503 while the collector's database refuses connections and 200
//! again once it takes them.
use std::path::PathBuf;
use std::process::Command;

use outpost_tests::{Agent, Collector, OutputExt, collector_with_agent, http, wait_for};

/// Splits RFC 4180 CSV into records of fields (quoted fields may hold
/// commas, doubled quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// `audit export` of everything (optionally one tenant's), as records keyed
/// by the header's column names.
fn export(c: &Collector, tenant: Option<&str>) -> Vec<std::collections::HashMap<String, String>> {
    let mut args = vec![
        "audit",
        "export",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ];
    if let Some(t) = tenant {
        args.extend(["--tenant", t]);
    }
    let out = c.cli(&args).ok();
    let rows = parse_csv(&out.stdout_text());
    let (header, records) = rows.split_first().expect("a header line");
    assert_eq!(
        header.join(","),
        "seq,time,tenant_id,tenant,actor,source,action,object,outcome,details,hash"
    );
    records
        .iter()
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// Runs one statement against the collector's SQLite file, behind its back.
fn tamper(c: &Collector, sql: &str) {
    let sql = sql.to_owned();
    let n = c.on_sqlite("rw", async move |db| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(db)
            .await
            .expect("tamper")
            .rows_affected()
    });
    assert_eq!(n, 1, "one row changed");
}

#[test]
fn real_actions_are_exported_and_a_tampered_record_is_named() {
    let mut c = Collector::init();
    c.start();
    let console = &c.console();

    let refused = http::try_login(console, "admin", "not the password");
    assert_eq!(refused.status, 401, "{refused:?}");
    let session = http::login(console, "admin", &c.admin_password);

    let token = c.token("acme", "hq");
    let agent = Agent::new();
    agent.enroll(&c.agent_endpoint(), &token).ok();
    let id = agent.id();
    let again = Agent::new().enroll(&c.agent_endpoint(), &token);
    assert!(!again.status.success(), "a used token is refused");
    c.cli(&["agent", "revoke", &id]).ok();

    let records = export(&c, None);
    let find = |action: &str, outcome: &str| {
        records
            .iter()
            .find(|r| r["action"] == action && r["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action} {outcome} in {records:#?}"))
    };
    let failed = find("console.login", "failure");
    assert_eq!(
        (failed["actor"].as_str(), failed["source"].as_str()),
        ("admin", "127.0.0.1")
    );
    assert!(failed["details"].contains("invalid username or password"));
    let login = find("console.login", "success");
    assert_eq!(
        (
            login["actor"].as_str(),
            login["source"].as_str(),
            login["tenant"].as_str()
        ),
        ("admin", "127.0.0.1", "")
    );
    let created = find("token.create", "success");
    assert_eq!(
        (created["actor"].as_str(), created["tenant"].as_str()),
        ("local operator", "acme")
    );
    let enrolled = find("agent.enroll", "success");
    assert_eq!(enrolled["actor"], format!("agent {id}"));
    assert_eq!(enrolled["object"], format!("agent {id}"));
    assert_eq!(enrolled["source"], "127.0.0.1");
    let refusal = find("enroll.refused", "failure");
    assert!(refusal["details"].contains("already been used"), "{refusal:?}");
    let revoked = find("agent.revoke", "success");
    assert_eq!(
        (
            revoked["actor"].as_str(),
            revoked["object"].clone(),
            revoked["tenant"].as_str()
        ),
        ("local operator", format!("agent {id}"), "acme")
    );
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].parse().expect("seq")).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "oldest first, no gaps"
    );
    for r in &records {
        assert_eq!(r["hash"].len(), 64, "{r:?}");
    }

    // The console shows the same records and downloads the same CSV.
    let cookie = [("Cookie", session.as_str())];
    let page = http::request(console, "GET", "/audit", &cookie, "");
    assert_eq!(page.status, 200, "{page:?}");
    for r in &records {
        assert!(
            page.body.contains(&format!("data-seq=\"{}\"", r["seq"])),
            "{}",
            page.body
        );
    }
    let csv = http::request(
        console,
        "GET",
        "/audit.csv?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
        &cookie,
        "",
    );
    assert_eq!(csv.status, 200, "{csv:?}");
    let downloaded = parse_csv(&csv.body);
    assert_eq!(
        downloaded.len(),
        records.len() + 1,
        "header and the same records: {}",
        csv.body
    );
    assert_eq!(
        downloaded.last().map(|r| r[10].as_str()),
        records.last().map(|r| r["hash"].as_str())
    );

    // One tenant's records: the token, the enrollment, the revocation.
    let acme = export(&c, Some("acme"));
    let actions: Vec<&str> = acme.iter().map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["token.create", "agent.enroll", "agent.revoke"]);
    let nobody = c.cli(&[
        "audit",
        "export",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
        "--tenant",
        "nobody",
    ]);
    assert!(!nobody.status.success() && nobody.stderr_text().contains("no tenant named"));
    let backwards = c.cli(&[
        "audit",
        "export",
        "--from",
        "2100-01-01T00:00:00Z",
        "--to",
        "2000-01-01T00:00:00Z",
    ]);
    assert!(!backwards.status.success() && backwards.stderr_text().contains("must be before"));

    let ok = c.cli(&["audit", "verify"]).ok();
    let last = records.last().expect("records");
    assert!(
        ok.stdout_text()
            .contains(&format!("head: seq {} hash {}", last["seq"], last["hash"])),
        "{}",
        ok.stdout_text()
    );

    // An edit made directly in the database file: named by its seq.
    let seq = &enrolled["seq"];
    tamper(
        &c,
        &format!("UPDATE audit_log SET actor = 'someone else' WHERE seq = {seq}"),
    );
    let broken = c.cli(&["audit", "verify"]);
    assert!(!broken.status.success(), "verify must fail: {}", broken.stdout_text());
    let why = broken.stderr_text();
    assert!(
        why.contains(&format!("broken at seq {seq}")) && why.contains("edited"),
        "{why}"
    );
}

fn python() -> PathBuf {
    let venv = std::env::var_os("OUTPOST_PYVENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyvenv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "no Python venv with prometheus-client at {}: run scripts/python-deps first",
        venv.display()
    );
    py
}

/// Families parsed by `prometheus_client.openmetrics.parser`: name → (type,
/// samples as (name, value)).
fn parse_openmetrics(text: &str) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.value] for s in f.samples]}
print(json.dumps(out))
"#;
    use std::io::Write as _;
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("python").ok();
    serde_json::from_str(&out.stdout_text()).expect("parser output is JSON")
}

fn sample(families: &serde_json::Value, family: &str, sample: &str) -> f64 {
    families[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family} in {families:#}"))
        .iter()
        .find(|s| s[0] == sample)
        .and_then(|s| s[1].as_f64())
        .unwrap_or_else(|| panic!("no sample {sample} in {family}: {families:#}"))
}

#[test]
fn metrics_parse_as_openmetrics_after_an_agent_streamed() {
    let (mut c, mut agent) = collector_with_agent("acme", "hq");
    agent.start();
    let console = &c.console();
    assert_eq!(http::try_login(console, "admin", "wrong").status, 401);

    let health = http::request(console, "GET", "/healthz", &[], "");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = http::request(console, "GET", "/readyz", &[], "");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));

    // Host facts are the agent's first observations; wait until some are committed.
    let text = wait_for("observations ingested and the agent online", || {
        let r = http::request(console, "GET", "/metrics", &[], "");
        assert_eq!(r.status, 200, "{r:?}");
        let ingested = r
            .body
            .lines()
            .any(|l| l.starts_with("outpost_observations_ingested_total ") && !l.ends_with(" 0"));
        let online = r.body.lines().any(|l| l == "outpost_agents_online 1");
        (ingested && online).then_some(r)
    });
    assert!(
        text.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{text:?}"
    );
    let families = parse_openmetrics(&text.body);
    let types: Vec<(&str, &str)> = [
        ("outpost_observations_ingested", "counter"),
        ("outpost_batch_commit_seconds", "histogram"),
        ("outpost_database_errors", "counter"),
        ("outpost_console_login_failures", "counter"),
        ("outpost_agents_online", "gauge"),
        ("outpost_agent_streams", "gauge"),
        ("outpost_agent_outbox_observations", "gauge"),
        ("outpost_agent_outbox_observations_max", "gauge"),
        ("outpost_console_sessions", "gauge"),
        ("outpost_console_event_streams", "gauge"),
    ]
    .to_vec();
    for (name, kind) in &types {
        assert_eq!(families[name]["type"], *kind, "{name} in {families:#}");
    }
    assert_eq!(
        families.as_object().map(|o| o.len()),
        Some(types.len()),
        "no other families: {families:#}"
    );
    assert!(
        sample(
            &families,
            "outpost_observations_ingested",
            "outpost_observations_ingested_total"
        ) > 0.0
    );
    assert!(
        sample(
            &families,
            "outpost_batch_commit_seconds",
            "outpost_batch_commit_seconds_count"
        ) > 0.0
    );
    assert!(
        sample(
            &families,
            "outpost_batch_commit_seconds",
            "outpost_batch_commit_seconds_sum"
        ) > 0.0
    );
    assert_eq!(
        sample(
            &families,
            "outpost_console_login_failures",
            "outpost_console_login_failures_total"
        ),
        1.0
    );
    assert_eq!(sample(&families, "outpost_agents_online", "outpost_agents_online"), 1.0);
    assert_eq!(sample(&families, "outpost_agent_streams", "outpost_agent_streams"), 1.0);
    assert!(!text.body.contains("_total_total"));
    agent.kill9();
    c.kill9();
}

/// Runs statements on the test server's administrative URL (the role that
/// created the collector's database owns it).
fn on_test_server(statements: Vec<String>) {
    let url = std::env::var("OUTPOST_TEST_DATABASE_URL").expect("test server URL");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            use sqlx::Connection as _;
            let mut db = sqlx::PgConnection::connect(&url)
                .await
                .expect("connect to the test server");
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut db)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        })
    })
    .join()
    .expect("admin thread");
}

#[test]
fn readiness_follows_the_database_on_postgresql() {
    let Some(url) = outpost_tests::postgres_url() else {
        return;
    };
    let db = url.rsplit('/').next().expect("database name").to_owned();
    let mut c = Collector::init_with(Some(url));
    c.start();
    let console = &c.console();
    let ready = |status: u16| {
        wait_for(&format!("/readyz to answer {status}"), || {
            let r = http::request(console, "GET", "/readyz", &[], "");
            (r.status == status).then_some(r)
        })
    };
    ready(200);

    // The collector's database stops taking connections and loses the ones it has.
    on_test_server(vec![
        format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"),
    ]);
    let down = ready(503);
    assert!(down.body.contains("database"), "{down:?}");
    let health = http::request(console, "GET", "/healthz", &[], "");
    assert_eq!(health.status, 200, "the process still runs");
    let metrics = http::request(console, "GET", "/metrics", &[], "");
    let errors: f64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("outpost_database_errors_total "))
        .and_then(|v| v.parse().ok())
        .expect("database error counter");
    assert!(errors > 0.0, "{}", metrics.body);

    // Back: ready again, without a restart.
    on_test_server(vec![format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true")]);
    ready(200);
    c.kill9();
}
