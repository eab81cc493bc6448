//! The API as a client sees it, over real loopback sockets, read with the
//! shared codec only. Each test has its own 127.0.x.y range.

mod common;

use std::time::Duration;

use common::*;
use outpost_sim::RosMix;

#[tokio::test]
async fn login_wrong_password_then_right_on_the_same_connection() {
    let fleet = fleet([127, 0, 60, 1], 1, RosMix::Mixed).await;
    let d = &fleet.devices()[0];
    let mut c = connect(d.api).await;
    let r = call(&mut c, &["/login", "=name=admin", "=password=nope"]).await;
    assert_eq!(r[0], vec!["!trap", "=message=invalid user name or password (6)"]);
    assert_eq!(r[1], vec!["!done"]);
    login(&mut c).await;
    let r = call(&mut c, &["/system/identity/print"]).await;
    assert_eq!(rows(&r)[0]["name"], d.identity);
}

#[tokio::test]
async fn commands_before_login_are_fatal() {
    let fleet = fleet([127, 0, 61, 1], 1, RosMix::Mixed).await;
    let mut c = connect(fleet.devices()[0].api).await;
    let r = call(&mut c, &["/system/resource/print"]).await;
    assert_eq!(r, vec![vec!["!fatal".to_owned(), "not logged in".to_owned()]]);
    assert!(read(&mut c).await.is_none(), "closed after !fatal");
}

#[tokio::test]
async fn tags_proplist_queries_and_count_only() {
    let fleet = fleet([127, 0, 62, 1], 1, RosMix::V7).await;
    let mut c = logged_in(fleet.devices()[0].api).await;

    let r = call(&mut c, &["/interface/print", "=.proplist=type,name", ".tag=a1"]).await;
    assert!(r.len() > 2);
    for s in &r {
        assert_eq!(tag_of(s), Some("a1"), "{s:?}");
    }
    let first = &r[0];
    assert_eq!(first[0], "!re");
    assert!(first[1].starts_with("=type="), "proplist order: {first:?}");
    assert!(first[2].starts_with("=name="));
    assert_eq!(first.len(), 4, "only listed fields plus the tag: {first:?}");

    let all = rows(&call(&mut c, &["/interface/print"]).await);
    let ethers = all.iter().filter(|r| r["type"] == "ether").count();
    let r = rows(&call(&mut c, &["/interface/print", "?type=ether"]).await);
    assert_eq!(r.len(), ethers);
    let r = rows(&call(&mut c, &["/interface/print", "?=name=ether1", "?=name=bridge", "?#|"]).await);
    let names: Vec<&str> = r.iter().map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["ether1", "bridge"]);
    let r = rows(&call(&mut c, &["/interface/print", "?type=ether", "?#!"]).await);
    assert_eq!(r.len(), all.len() - ethers);
    let r = rows(&call(&mut c, &["/interface/print", "?-comment"]).await);
    assert_eq!(r.len(), all.len() - 1, "only ether1 has a comment");
    let r = rows(&call(&mut c, &["/interface/print", "?comment"]).await);
    assert_eq!(r[0]["name"], "ether1");

    let r = call(&mut c, &["/interface/print", "=count-only=", "?type=ether"]).await;
    assert_eq!(r, vec![vec!["!done".to_owned(), format!("=ret={ethers}")]]);

    let r = call(&mut c, &["/no/such/thing", ".tag=x"]).await;
    assert_eq!(r[0], vec!["!trap", "=message=no such command prefix", ".tag=x"]);
    assert_eq!(r[1], vec!["!done", ".tag=x"]);

    let r = call(&mut c, &["/quit"]).await;
    assert_eq!(
        r,
        vec![vec!["!fatal".to_owned(), "session terminated on request".to_owned()]]
    );
    assert!(read(&mut c).await.is_none());
}

#[tokio::test]
async fn v6_and_v7_forms_differ_as_on_real_routers() {
    let v6 = fleet([127, 0, 63, 1], 8, RosMix::V6).await;
    let v7 = fleet([127, 0, 64, 1], 8, RosMix::V7).await;

    for d in v6.devices() {
        let mut c = logged_in(d.api).await;
        let res = &rows(&call(&mut c, &["/system/resource/print"]).await)[0];
        assert_eq!(res["version"], "6.49.10");
        assert!(!res.contains_key("last-config-change"));
        assert!(res["build-time"].contains('/'), "v6 date: {}", res["build-time"]);
        assert!(
            res["uptime"].chars().all(|c| c.is_ascii_digit() || "wdhms".contains(c)),
            "{}",
            res["uptime"]
        );
        for k in [
            "free-memory",
            "total-memory",
            "free-hdd-space",
            "total-hdd-space",
            "cpu-load",
        ] {
            res[k]
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{k} is a number: {}", res[k]));
        }
        let health = call(&mut c, &["/system/health/print"]).await;
        if d.board != "CHR" {
            let h = rows(&health);
            assert_eq!(h.len(), 1, "v6 health is one flat row");
            assert!(h[0].contains_key("temperature") && !h[0].contains_key("name"));
        }
        let ifaces = rows(&call(&mut c, &["/interface/print"]).await);
        assert!(ifaces.iter().all(|i| i["type"] != "wifi"));
        let wifi = call(&mut c, &["/interface/wifi/registration-table/print"]).await;
        assert_eq!(wifi[0][0], "!trap");
        if ifaces.iter().any(|i| i["type"] == "wlan") {
            let reg = rows(&call(&mut c, &["/interface/wireless/registration-table/print"]).await);
            assert!(!reg.is_empty());
            let s = &reg[0]["signal-strength"];
            assert!(s.starts_with('-') && s.contains("@") && s.contains("GHz"), "{s}");
            assert!(reg[0]["bytes"].contains(','));
            assert!(reg[0]["tx-rate"].contains("Mbps"));
        }
    }
    for d in v7.devices() {
        let mut c = logged_in(d.api).await;
        let res = &rows(&call(&mut c, &["/system/resource/print"]).await)[0];
        assert!(res["version"].starts_with("7.") && res["version"].ends_with(" (stable)"));
        assert!(res["build-time"].contains('-'));
        assert_eq!(res.contains_key("last-config-change"), d.version.minor >= 17);
        let health = rows(&call(&mut c, &["/system/health/print"]).await);
        if d.board != "CHR" {
            assert!(
                health
                    .iter()
                    .all(|h| h.contains_key("name") && h.contains_key("value") && h.contains_key("type"))
            );
            assert!(health.iter().any(|h| h["name"] == "temperature" && h["type"] == "C"));
        }
        let ifaces = rows(&call(&mut c, &["/interface/print"]).await);
        assert!(ifaces.iter().all(|i| i["type"] != "wlan"));
        let old = call(&mut c, &["/interface/wireless/registration-table/print"]).await;
        assert_eq!(old[0][0], "!trap");
        if ifaces.iter().any(|i| i["type"] == "wifi") {
            let reg = rows(&call(&mut c, &["/interface/wifi/registration-table/print"]).await);
            assert!(reg[0]["signal"].parse::<i32>().expect("signal") < 0);
        }
        // 7.18 answers an empty result with !empty.
        let empty = call(&mut c, &["/interface/print", "?name=nothing"]).await;
        let words: Vec<&str> = empty.iter().map(|s| s[0].as_str()).collect();
        if d.version.minor >= 18 {
            assert_eq!(words, ["!empty", "!done"]);
        } else {
            assert_eq!(words, ["!done"]);
        }
    }
}

#[tokio::test]
async fn chr_has_no_routerboard_and_no_sensors() {
    let fleet = fleet([127, 0, 65, 1], 20, RosMix::Mixed).await;
    let chr = fleet
        .devices()
        .into_iter()
        .find(|d| d.board == "CHR")
        .expect("a CHR among 20");
    let rb = fleet
        .devices()
        .into_iter()
        .find(|d| d.board != "CHR")
        .expect("a RouterBOARD");
    let mut c = logged_in(chr.api).await;
    let r = call(&mut c, &["/system/routerboard/print"]).await;
    assert_eq!(r[0], vec!["!trap", "=message=no such command prefix"]);
    assert!(rows(&call(&mut c, &["/system/health/print"]).await).is_empty());
    let mut c = logged_in(rb.api).await;
    let r = rows(&call(&mut c, &["/system/routerboard/print"]).await);
    assert_eq!(r[0]["routerboard"], "true");
    assert_eq!(r[0]["serial-number"].len(), 12);
}

#[tokio::test]
async fn counters_and_uptime_grow() {
    let fleet = fleet([127, 0, 66, 1], 1, RosMix::Mixed).await;
    let mut c = logged_in(fleet.devices()[0].api).await;
    let q = [
        "/interface/print",
        "?running=true",
        "=.proplist=name,rx-byte,tx-byte,rx-packet",
    ];
    let before = rows(&call(&mut c, &q).await);
    let up0 = rows(&call(&mut c, &["/system/resource/print", "=.proplist=uptime"]).await)[0]["uptime"].clone();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = rows(&call(&mut c, &q).await);
    let up1 = rows(&call(&mut c, &["/system/resource/print", "=.proplist=uptime"]).await)[0]["uptime"].clone();
    assert_ne!(up0, up1);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a["name"], b["name"]);
        let n = |r: &std::collections::HashMap<String, String>, k: &str| r[k].parse::<u64>().expect("decimal");
        assert!(n(b, "rx-byte") > n(a, "rx-byte"), "{} rx grows", a["name"]);
        assert!(n(b, "tx-byte") >= n(a, "tx-byte"));
        assert!(n(b, "rx-packet") >= n(a, "rx-packet"));
    }
}

#[tokio::test]
async fn neighbours_are_other_simulated_devices() {
    let fleet = fleet([127, 0, 67, 1], 6, RosMix::Mixed).await;
    let devices = fleet.devices();
    for d in &devices {
        let mut c = logged_in(d.api).await;
        let ns = rows(&call(&mut c, &["/ip/neighbor/print"]).await);
        assert_eq!(ns.len(), 2, "two links per device by default");
        for n in &ns {
            let peer = devices
                .iter()
                .find(|p| p.ip.to_string() == n["address"])
                .expect("neighbour is a sim device");
            assert_ne!(peer.ip, d.ip);
            assert_eq!(n["identity"], peer.identity);
            assert_eq!(n["board"], peer.board);
            assert_eq!(n["platform"], "MikroTik");
            assert_eq!(
                n.contains_key("discovered-by"),
                d.version.minor >= 7 && d.ros_major() == 7
            );
            // And the peer sees us back, on the interface we name.
            let mut pc = logged_in(peer.api).await;
            let back = rows(&call(&mut pc, &["/ip/neighbor/print", &format!("?address={}", d.ip)]).await);
            assert_eq!(back.len(), 1);
            assert_eq!(back[0]["interface"], n["interface-name"]);
            let peer_if = rows(
                &call(
                    &mut pc,
                    &["/interface/print", &format!("?name={}", n["interface-name"])],
                )
                .await,
            );
            assert_eq!(peer_if[0]["mac-address"], n["mac-address"]);
        }
    }
}

#[tokio::test]
async fn monitor_traffic_streams_alongside_other_commands_until_cancelled() {
    let fleet = fleet([127, 0, 68, 1], 1, RosMix::Mixed).await;
    let mut c = logged_in(fleet.devices()[0].api).await;
    send(
        &mut c,
        &["/interface/monitor-traffic", "=interface=ether1,ether2", ".tag=m"],
    )
    .await;
    let mut streamed = 0;
    while streamed < 4 {
        let s = read(&mut c).await.expect("row");
        assert_eq!(s[0], "!re");
        assert_eq!(tag_of(&s), Some("m"));
        let a = attrs(&s);
        assert!(a["name"] == "ether1" || a["name"] == "ether2");
        a["rx-bits-per-second"].parse::<u64>().expect("bits");
        streamed += 1;
    }
    // Another command on the same connection while the stream runs.
    send(&mut c, &["/system/identity/print", ".tag=i"]).await;
    let mut got_identity = false;
    while !got_identity {
        let s = read(&mut c).await.expect("sentence");
        if tag_of(&s) == Some("i") && s[0] == "!done" {
            got_identity = true;
        }
    }
    send(&mut c, &["/cancel", "=tag=m", ".tag=c"]).await;
    let (mut trap, mut done_m, mut done_c) = (false, false, false);
    while !(trap && done_m && done_c) {
        let s = read(&mut c).await.expect("sentence");
        match (s[0].as_str(), tag_of(&s)) {
            ("!trap", Some("m")) => {
                assert_eq!(&s[1..3], ["=category=2", "=message=interrupted"]);
                trap = true;
            }
            ("!done", Some("m")) => {
                assert!(trap, "!trap before !done");
                done_m = true;
            }
            ("!done", Some("c")) => done_c = true,
            ("!re", Some("m")) => assert!(!trap),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Nothing more from the stream.
    send(&mut c, &["/system/identity/print", ".tag=j"]).await;
    let s = read(&mut c).await.expect("row");
    assert_eq!(tag_of(&s), Some("j"));
}

#[tokio::test]
async fn monitor_traffic_once_and_unknown_interface() {
    let fleet = fleet([127, 0, 69, 1], 1, RosMix::Mixed).await;
    let mut c = logged_in(fleet.devices()[0].api).await;
    let r = call(&mut c, &["/interface/monitor-traffic", "=interface=ether1", "=once="]).await;
    let words: Vec<&str> = r.iter().map(|s| s[0].as_str()).collect();
    assert_eq!(words, ["!re", "!done"]);
    let r = call(&mut c, &["/interface/monitor-traffic", "=interface=ether99", "=once="]).await;
    assert_eq!(r[0], vec!["!trap", "=message=no such item"]);
}

#[tokio::test]
async fn log_grows_with_ids_and_listen_streams_new_lines() {
    let fleet = fleet([127, 0, 70, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    let log = rows(&call(&mut c, &["/log/print"]).await);
    assert!(log.len() >= 3);
    assert!(log.iter().all(|l| l[".id"].starts_with('*')));
    assert!(log.last().expect("line")["message"].contains("logged in from 127.0.0.1 via api"));
    send(&mut c, &["/log/listen", ".tag=l"]).await;
    // The listener starts from the lines present when it runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet
        .control(&format!("config {} /ip dns set servers=192.0.2.53", d.ip))
        .await
        .expect("config");
    let s = read(&mut c).await.expect("listened line");
    assert_eq!(s[0], "!re");
    assert_eq!(attrs(&s)["message"], "config changed by admin");
    assert_eq!(tag_of(&s), Some("l"));
    send(&mut c, &["/cancel", "=tag=l"]).await;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|s: &Sentence| s[0] == "!done" && tag_of(s) == Some("l"))
    {
        seen.push(read(&mut c).await.expect("sentence"));
    }
    assert!(seen.iter().any(|s| s[0] == "!trap" && tag_of(s) == Some("l")));
}

#[tokio::test]
async fn leases_addresses_and_package_update_look_real() {
    let fleet = fleet([127, 0, 71, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    let leases = rows(&call(&mut c, &["/ip/dhcp-server/lease/print"]).await);
    assert!(!leases.is_empty());
    assert!(
        leases
            .iter()
            .all(|l| l["status"] == "bound" || l["status"] == "waiting")
    );
    let addrs = rows(&call(&mut c, &["/ip/address/print"]).await);
    assert!(addrs.iter().any(|a| a["address"] == format!("{}/8", d.ip)));
    let up = rows(&call(&mut c, &["/system/package/update/print"]).await);
    assert_eq!(up[0]["installed-version"], d.version.number);
    assert!(up[0]["status"] == "New version is available" || up[0]["status"] == "System is already up to date");
}

#[tokio::test]
async fn api_ssl_serves_the_devices_self_signed_certificate() {
    let fleet = fleet([127, 0, 72, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let der = fleet.certificate_der(d.ip).expect("cert");
    let tcp = tokio::net::TcpStream::connect(d.api_ssl).await.expect("tcp");
    let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from(d.ip));
    let tls = pinned_tls(der.clone())
        .connect(name.clone(), tcp)
        .await
        .expect("handshake");
    let mut c = outpost_routeros::connection::Connection::new(tls);
    login(&mut c).await;
    let r = rows(&call(&mut c, &["/system/identity/print"]).await);
    assert_eq!(r[0]["name"], d.identity);

    // TLS 1.2 and 1.3 both work.
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let tcp = tokio::net::TcpStream::connect(d.api_ssl).await.expect("tcp");
        let tls = pinned_tls_with(der.clone(), &[version])
            .connect(name.clone(), tcp)
            .await
            .expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
    }

    // After rotation, new connections get a new certificate.
    fleet.control(&format!("rotate-cert {}", d.ip)).await.expect("rotate");
    let new = fleet.certificate_der(d.ip).expect("cert");
    assert_ne!(new, der);
    let tcp = tokio::net::TcpStream::connect(d.api_ssl).await.expect("tcp");
    assert!(
        pinned_tls(der).connect(name.clone(), tcp).await.is_err(),
        "old pin fails"
    );
    let tcp = tokio::net::TcpStream::connect(d.api_ssl).await.expect("tcp");
    pinned_tls(new).connect(name, tcp).await.expect("new pin works");
}
