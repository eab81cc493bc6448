//! The whole discovery path with real processes: a collector and an agent run
//! on the scan side of a test network (network namespaces, one per host); a
//! discovery job added on the collector's command line reaches the agent, the
//! agent scans the network, and the findings land in the site's inventory.
//! An nmap file imported on the agent joins them; a malformed one is refused
//! with its position and changes nothing. A job's SNMPv3 user, given on the
//! collector's command line, reaches the agent, which queries a real snmpd.
use std::collections::BTreeMap;

use outpost_testnet::{HostSpec, SNMP_V3_USER, TestNet, snmp_sys_name};
use outpost_tests::{Agent, Collector, OutputExt, http, wait_for};
use serde_json::Value;

fn inventory(c: &Collector) -> BTreeMap<String, Value> {
    let out = c.cli(&["discovery", "hosts", "--json"]).ok();
    let hosts: Vec<Value> = serde_json::from_str(&out.stdout_text()).expect("discovery hosts --json");
    hosts
        .into_iter()
        .map(|h| (h["address"].as_str().expect("address").to_owned(), h))
        .collect()
}

/// A collector and an enrolled (not yet started) agent of acme/hq, both
/// inside `net`'s scan namespace.
fn enrolled_in(net: &TestNet) -> (Collector, Agent) {
    let ns = net.scan_namespace().to_owned();
    let mut collector = Collector::init();
    collector.netns = Some(ns.clone());
    collector.start();
    let token = collector.token("acme", "hq");
    let mut agent = Agent::new();
    agent.netns = Some(ns);
    agent.enroll(&collector.agent_endpoint(), &token).ok();
    (collector, agent)
}

#[test]
fn a_site_job_is_scanned_by_the_agent_and_lands_in_the_inventory() {
    let Some(net) = TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22, 80]))
        .host(HostSpec::icmp_only())
        .host(HostSpec::silent())
        .build_or_skip()
    else {
        return;
    };
    let (collector, mut agent) = enrolled_in(&net);
    agent.set_config("discovery_first_run_secs", "1");
    agent.start();

    let subnet = net.ipv4_subnet().to_string();
    collector
        .cli(&[
            "discovery",
            "job",
            "add",
            "--tenant",
            "acme",
            "--site",
            "hq",
            "--targets",
            &subnet,
            "--ports",
            "22,80,443",
            "--rate",
            "2000",
        ])
        .ok();
    let (h0, h1, silent) = (
        net.host(0).addr().to_string(),
        net.host(1).addr().to_string(),
        net.host(2).addr().to_string(),
    );
    let hosts = wait_for("the scan's hosts in the inventory", || {
        let hosts = inventory(&collector);
        (hosts.contains_key(&h0) && hosts.contains_key(&h1)).then_some(hosts)
    });
    assert!(!hosts.contains_key(&silent), "the silent host: {hosts:#?}");
    let up = &hosts[&h0];
    assert_eq!(up["open_ports"], serde_json::json!(["22/tcp", "80/tcp"]), "{up:#}");
    assert_eq!(up["mac"], net.host(0).mac().to_string());
    assert_eq!(up["site"], "hq");
    assert_eq!(hosts[&h1]["open_ports"], serde_json::json!([]));
    wait_for("the scan recorded as finished", || {
        (collector.count("SELECT COUNT(*) FROM discovery_scans WHERE finished_ms IS NOT NULL AND hosts_found >= 3")
            >= 1)
            .then_some(())
    });
    assert!(
        agent.running().logged("discovery scan finished"),
        "{:?}",
        agent.running().log()
    );

    // An nmap scan of the same site, imported on the agent.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<nmaprun>\n<host><status state=\"up\"/>\n<address addr=\"10.77.0.99\" addrtype=\"ipv4\"></host></nmaprun>",
    )
    .expect("write");
    let out = agent.cli(&["import-nmap", bad.to_str().expect("path")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "the fault's position: {err}");
    // Cut short after a whole host, as when nmap is stopped: refused too.
    let cut = dir.path().join("cut.xml");
    std::fs::write(
        &cut,
        "<nmaprun>\n<host><status state=\"up\"/><address addr=\"10.77.250.1\" addrtype=\"ipv4\"/></host>\n<ho",
    )
    .expect("write");
    let out = agent.cli(&["import-nmap", cut.to_str().expect("path")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("before </nmaprun>") && err.contains("nothing was imported"),
        "{err}"
    );
    assert!(
        !agent.data_dir().join("nmap-import").exists()
            || std::fs::read_dir(agent.data_dir().join("nmap-import"))
                .expect("queue")
                .next()
                .is_none(),
        "nothing queued"
    );

    let extra = ipnet::Ipv4Net::new(net.scan_ipv4(), 24)
        .expect("prefix")
        .hosts()
        .nth(98)
        .expect("a /24 has a .99")
        .to_string();
    let xml = format!(
        r#"<?xml version="1.0"?><nmaprun args="nmap -sV {subnet}" start="1764000000">
<host><status state="up"/><address addr="{extra}" addrtype="ipv4"/><address addr="02:77:00:00:00:99" addrtype="mac"/>
<hostnames><hostname name="printer.example" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="9100"><state state="open"/><service name="jetdirect" product="HP JetDirect"/></port></ports>
<os><osmatch name="HP printer" accuracy="96"/></os></host>
<runstats><finished time="1764000005"/></runstats></nmaprun>"#
    );
    let good = dir.path().join("scan.xml");
    std::fs::write(&good, xml).expect("write");
    let out = agent.cli(&["import-nmap", good.to_str().expect("path")]).ok();
    assert!(
        out.stdout_text().contains("Queued 1 of 1 hosts"),
        "{}",
        out.stdout_text()
    );
    let hosts = wait_for("the imported host", || {
        let hosts = inventory(&collector);
        hosts.contains_key(&extra).then_some(hosts)
    });
    let printer = &hosts[&extra];
    assert_eq!(printer["open_ports"], serde_json::json!(["9100/tcp"]), "{printer:#}");
    assert!(
        printer["names"]
            .as_array()
            .expect("names")
            .iter()
            .any(|n| n == "printer.example")
    );
    assert_eq!(printer["os_guess"], "HP printer");
    assert!(hosts.contains_key(&h0), "the import misses nobody: {hosts:#?}");
    assert!(
        !hosts.contains_key("10.77.250.1"),
        "nothing of the cut file: {hosts:#?}"
    );
    assert!(
        std::fs::read_dir(agent.data_dir().join("nmap-import"))
            .expect("queue")
            .next()
            .is_none(),
        "the queue is emptied once the outbox has the hosts"
    );
}

#[test]
fn an_snmpv3_user_from_the_command_line_reaches_the_agent_which_reads_sysname_with_it() {
    let Some(net) = TestNet::builder().host(HostSpec::snmpd()).build_or_skip() else {
        return;
    };
    let (collector, mut agent) = enrolled_in(&net);
    agent.set_config("discovery_first_run_secs", "1");
    agent.start();

    let address = net.host(0).addr().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let auth_file = dir.path().join("auth");
    std::fs::write(&auth_file, format!("{}\n", SNMP_V3_USER.auth_password)).expect("write");
    let add = |priv_env: &[(&str, &str)]| {
        collector.cli_env(
            &[
                "discovery",
                "job",
                "add",
                "--tenant",
                "acme",
                "--site",
                "hq",
                "--targets",
                &address,
                "--ports",
                "22",
                "--snmp-v3-user",
                SNMP_V3_USER.name,
                "--snmp-v3-auth",
                SNMP_V3_USER.auth_protocol,
                "--snmp-v3-auth-password-file",
                auth_file.to_str().expect("path"),
                "--snmp-v3-priv",
                SNMP_V3_USER.priv_protocol,
            ],
            priv_env,
        )
    };
    // The privacy password is never taken from the command line.
    let out = add(&[]);
    assert!(!out.status.success());
    let err = out.stderr_text();
    assert!(
        err.contains("--snmp-v3-priv-password-file") && err.contains("OUTPOST_SNMP_V3_PRIV_PASSWORD"),
        "{err}"
    );
    add(&[("OUTPOST_SNMP_V3_PRIV_PASSWORD", SNMP_V3_USER.priv_password)]).ok();
    let jobs = collector
        .cli(&["discovery", "job", "list", "--json"])
        .ok()
        .stdout_text();
    assert!(jobs.contains("1 v3 user outpost"), "{jobs}");
    assert!(
        !jobs.contains(SNMP_V3_USER.auth_password) && !jobs.contains(SNMP_V3_USER.priv_password),
        "{jobs}"
    );

    let hosts = wait_for("the snmpd host with its sysName", || {
        let hosts = inventory(&collector);
        hosts
            .get(&address)
            .is_some_and(|h| h["snmp_name"].is_string())
            .then_some(hosts)
    });
    let h = &hosts[&address];
    assert_eq!(h["snmp_name"], snmp_sys_name(0), "{h:#}");
    assert_eq!(h["mac"], net.host(0).mac().to_string());
}

#[test]
fn scan_now_from_the_console_is_run_by_the_agent_over_its_connected_networks() {
    let Some(net) = TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22]))
        .host(HostSpec::icmp_only())
        .build_or_skip()
    else {
        return;
    };
    let (collector, mut agent) = enrolled_in(&net);
    // No job: the agent's default job over its connected networks, which
    // would first run minutes from now; "scan now" runs it at once.
    agent.start();

    let console = collector.console();
    let password = collector.admin_password.clone();
    // The console listens on loopback inside the scan namespace.
    let (scan, page) = net
        .run_in_scan(|| {
            let cookie = http::login(&console, "admin", &password);
            let list = http::request(&console, "GET", "/inventory", &[("Cookie", &cookie)], "");
            let at = list.body.find("/inventory/sites/").expect("a site link") + "/inventory/sites/".len();
            let site: String = list.body[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let path = format!("/inventory/sites/{site}");
            let page = http::request(&console, "GET", &path, &[("Cookie", &cookie)], "");
            let body = format!("csrf={}&job=", http::form_encode(&http::csrf_of(&page.body)));
            let headers = [
                ("Cookie", cookie.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ];
            // Bounded: the agent's session may still be settling.
            let mut answer = None;
            for _ in 0..50 {
                let r = http::request(&console, "POST", &format!("{path}/scan"), &headers, &body);
                if r.status == 303 {
                    answer = Some(r);
                    break;
                }
                assert_eq!(r.status, 503, "{r:?}");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            let answer = answer.expect("an agent of the site took the scan");
            let to = answer.header("location").expect("to the scan's page").to_owned();
            let scan = to.trim_start_matches("/inventory/scans/").to_owned();
            // The scan's page once the agent has reported it finished.
            let page = wait_for("the scan finished", || {
                let p = http::request(&console, "GET", &to, &[("Cookie", &cookie)], "");
                (p.status == 200 && p.body.contains("finished")).then_some(p.body)
            });
            (scan, page)
        })
        .expect("entering the scan namespace");

    assert_eq!(
        collector.count(&format!(
            "SELECT COUNT(*) FROM discovery_scans WHERE id = '{scan}' AND state = 'finished' AND hosts_found >= 3"
        )),
        1,
        "{page}"
    );
    // The default job covered the bridge's /24 and left its /64 to the
    // neighbour table, and said so.
    assert!(page.contains(&net.ipv4_subnet().to_string()), "{page}");
    assert!(page.contains("too large to sweep"), "{page}");
    let hosts = inventory(&collector);
    let (h0, h1) = (net.host(0).addr().to_string(), net.host(1).addr().to_string());
    assert_eq!(hosts[&h0]["open_ports"], serde_json::json!(["22/tcp"]), "{hosts:#?}");
    assert_eq!(hosts[&h1]["open_ports"], serde_json::json!([]), "{hosts:#?}");
    assert!(
        agent.running().logged("discovery scan finished"),
        "{:?}",
        agent.running().log()
    );
}

#[test]
fn a_scheduled_nmap_that_dies_mid_scan_is_refused_and_reported() {
    let Some(net) = TestNet::builder()
        .host(HostSpec::new().tcp_ports(&[22]))
        .build_or_skip()
    else {
        return;
    };
    // A real nmap that stops in the middle of its scan: a script that ends
    // the process (exit status 0) before the first host is written, so the
    // XML on its standard output stops after the header.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("stop.nse");
    std::fs::write(
        &script,
        "description = \"ends nmap mid-scan\"\ncategories = {\"safe\"}\n\
         hostrule = function(host) return true end\naction = function(host) os.exit(0) end\n",
    )
    .expect("write");
    let (collector, mut agent) = enrolled_in(&net);
    agent.set_config("discovery_first_run_secs", "1");
    agent.set_config("discovery_nmap", "true");
    agent.set_config(
        "discovery_nmap_args",
        &format!("\"-n -sT --script {}\"", script.display()),
    );
    agent.start();
    let address = net.host(0).addr().to_string();
    collector
        .cli(&[
            "discovery",
            "job",
            "add",
            "--tenant",
            "acme",
            "--site",
            "hq",
            "--targets",
            &address,
            "--ports",
            "22",
        ])
        .ok();
    wait_for("the refused nmap run reported", || {
        (collector.count(
            "SELECT COUNT(*) FROM discovery_scans WHERE source = 'nmap-import' AND state = 'partial' \
             AND warnings LIKE '%before </nmaprun>%' AND warnings LIKE '%nothing was imported%'",
        ) == 1)
            .then_some(())
    });
    assert!(
        agent.running().logged("scheduled nmap refused"),
        "{:?}",
        agent.running().log()
    );
    // The agent's own scan of the job is stored as usual; nothing from nmap.
    let hosts = inventory(&collector);
    let seen_by = hosts[&address]["seen_by"].as_array().expect("seen_by");
    assert!(
        !seen_by.is_empty() && !seen_by.iter().any(|s| s == "nmap"),
        "{seen_by:?}"
    );
}
