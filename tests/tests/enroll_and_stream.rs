//! Enroll → connect → observations stored → visible on the console.
use outpost_tests::http::{login, request};
use outpost_tests::{Collector, OutputExt, collector_with_agent_on, postgres_url, wait_for};

fn stream_and_show(database_url: Option<String>) {
    let (c, mut a) = collector_with_agent_on(database_url, "acme", "hq");
    a.start();
    let id = a.id();
    let agent = wait_for("the agent to be online with host facts", || {
        c.agents()
            .into_iter()
            .find(|r| r["id"] == id.as_str() && r["online"] == true && r["hostname"] != "")
    });
    assert_eq!(agent["tenant"], "acme");
    assert_eq!(agent["site"], "hq");
    assert_eq!(agent["version"], env!("CARGO_PKG_VERSION"));
    // Enrollment already records the hostname, so "online with a hostname"
    // can come before the first host-facts batch is stored: wait for it.
    wait_for("the first host facts stored", || {
        (c.count(&format!("SELECT COUNT(*) FROM host_facts WHERE agent_id = '{id}'")) >= 1).then_some(())
    });

    let console = c.console();
    let console = &console;
    let cookie = login(console, "admin", &c.admin_password);
    let api = request(console, "GET", "/api/overview", &[("Cookie", &cookie)], "");
    assert_eq!(api.status, 200, "{api:?}");
    let json: serde_json::Value = serde_json::from_str(&api.body).expect("overview JSON");
    let shown = &json["tenants"][0]["sites"][0]["agents"][0];
    assert_eq!(shown["id"], id.as_str(), "{json}");
    assert_eq!(shown["online"], true);
    assert_eq!(json["tenants"][0]["name"], "acme");
    let page = request(console, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&id), "the overview page lists the agent");
    // Without a session, nothing.
    assert_eq!(request(console, "GET", "/api/overview", &[], "").status, 401);

    // `agent list` in table form says the same.
    let table = c.cli(&["agent", "list"]).ok().stdout_text();
    assert!(
        table.contains(&id) && table.contains("online") && table.contains("acme"),
        "{table}"
    );

    // A graceful stop does not wait for the agent to hang up; the agent notices
    // and the collector records it offline.
    let mut c = c;
    let mut server = c.process.take().expect("server");
    assert!(
        server.terminate(),
        "collector exits cleanly on SIGTERM: {:?}",
        server.log()
    );
    a.running().wait_log("uplink down");
    let row = c
        .agents()
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .expect("agent row");
    assert_eq!(row["online"], false, "{row}");
}

#[test]
fn enrolled_agent_streams_into_sqlite_and_shows_on_the_console() {
    stream_and_show(None);
}

#[test]
fn enrolled_agent_streams_into_postgres_and_shows_on_the_console() {
    if let Some(url) = postgres_url() {
        stream_and_show(Some(url));
    }
}

#[test]
fn token_create_reports_what_it_created() {
    let c = Collector::init();
    let first = c
        .cli(&["token", "create", "--tenant", "acme", "--site", "hq"])
        .ok()
        .stdout_text();
    assert!(first.contains("Created tenant \"acme\""), "{first}");
    assert!(first.contains("Created site \"hq\""), "{first}");
    let last = first.lines().last().expect("token line");
    assert!(last.starts_with("outpost1."), "{last}");
    let second = c
        .cli(&["token", "create", "--tenant", "acme", "--site", "hq"])
        .ok()
        .stdout_text();
    assert!(!second.contains("Created"), "{second}");
    let bad = c.cli(&["token", "create", "--tenant", "", "--site", "hq"]);
    assert!(!bad.status.success());
    assert!(bad.stderr_text().contains("tenant name"), "{}", bad.stderr_text());
    let bad_ttl = c.cli(&["token", "create", "--tenant", "a", "--site", "b", "--ttl", "5y"]);
    assert!(!bad_ttl.status.success());
    assert!(bad_ttl.stderr_text().contains("duration"), "{}", bad_ttl.stderr_text());
}
