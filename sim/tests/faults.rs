//! Every control operation, through the text form the control port takes,
//! checked from a raw API connection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use outpost_sim::{RosMix, legacy_response};

#[tokio::test]
async fn slow_delays_replies_and_clear_removes_it() {
    let fleet = fleet([127, 0, 80, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    fleet.control(&format!("slow {} 400", d.ip)).await.expect("slow");
    let t = Instant::now();
    call(&mut c, &["/system/identity/print"]).await;
    assert!(t.elapsed() >= Duration::from_millis(400));
    fleet.control(&format!("clear {}", d.ip)).await.expect("clear");
    let t = Instant::now();
    call(&mut c, &["/system/identity/print"]).await;
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn drop_and_fatal_close_open_connections() {
    let fleet = fleet([127, 0, 81, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    fleet.control(&format!("drop {}", d.ip)).await.expect("drop");
    assert!(read(&mut c).await.is_none(), "closed without a word");

    let mut c = logged_in(d.api).await;
    fleet.control(&format!("fatal {}", d.ip)).await.expect("fatal");
    let s = read(&mut c).await.expect("!fatal");
    assert_eq!(s[0], "!fatal");
    assert!(read(&mut c).await.is_none(), "closed after !fatal");
    // The device still accepts new connections.
    logged_in(d.api).await;
}

#[tokio::test]
async fn trap_empty_and_unknown_word() {
    let fleet = fleet([127, 0, 82, 1], 1, RosMix::V6).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    fleet
        .control(&format!("trap {} /system/resource/print", d.ip))
        .await
        .expect("trap");
    let r = call(&mut c, &["/system/resource/print", ".tag=5"]).await;
    assert_eq!(r[0][0], "!trap");
    assert_eq!(tag_of(&r[0]), Some("5"));
    assert_eq!(r[1], vec!["!done", ".tag=5"]);

    fleet
        .control(&format!("empty {} /ip/neighbor/print", d.ip))
        .await
        .expect("empty");
    let r = call(&mut c, &["/ip/neighbor/print"]).await;
    assert_eq!(r, vec![vec!["!empty".to_owned()], vec!["!done".to_owned()]]);

    fleet
        .control(&format!("unknown-word {} !foo", d.ip))
        .await
        .expect("word");
    let r = call(&mut c, &["/system/identity/print", ".tag=w"]).await;
    assert_eq!(r[0], vec!["!foo", ".tag=w"]);
    assert_eq!(r[1][0], "!re");

    fleet.control(&format!("clear {}", d.ip)).await.expect("clear");
    let r = call(&mut c, &["/system/resource/print"]).await;
    assert_eq!(r[0][0], "!re");
}

#[tokio::test]
async fn password_legacy_login_and_api_policy() {
    let fleet = fleet([127, 0, 83, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    fleet
        .control(&format!("password {} n3w", d.ip))
        .await
        .expect("password");
    let mut c = connect(d.api).await;
    let r = call(&mut c, &["/login", "=name=admin", "=password=admin"]).await;
    assert_eq!(r[0][0], "!trap");
    let r = call(&mut c, &["/login", "=name=admin", "=password=n3w"]).await;
    assert_eq!(r, vec![vec!["!done".to_owned()]]);

    // Pre-6.43: a plaintext attempt gets a challenge, which the client answers.
    fleet
        .control(&format!("legacy-login {} on", d.ip))
        .await
        .expect("legacy");
    let mut c = connect(d.api).await;
    let r = call(&mut c, &["/login", "=name=admin", "=password=n3w"]).await;
    let ret = attrs(&r[0])["ret"].clone();
    assert_eq!(ret.len(), 32);
    let challenge = hex_decode(&ret);
    let bad = call(
        &mut c,
        &[
            "/login",
            "=name=admin",
            &format!("=response={}", legacy_response("x", &challenge)),
        ],
    )
    .await;
    assert_eq!(bad[0], vec!["!trap", "=message=cannot log in"]);
    let r = call(&mut c, &["/login"]).await;
    let challenge = hex_decode(&attrs(&r[0])["ret"]);
    let ok = call(
        &mut c,
        &[
            "/login",
            "=name=admin",
            &format!("=response={}", legacy_response("n3w", &challenge)),
        ],
    )
    .await;
    assert_eq!(ok, vec![vec!["!done".to_owned()]]);
    assert_eq!(call(&mut c, &["/system/identity/print"]).await[0][0], "!re");

    fleet
        .control(&format!("legacy-login {} off", d.ip))
        .await
        .expect("legacy off");
    fleet
        .control(&format!("no-api-policy {} on", d.ip))
        .await
        .expect("policy");
    let mut c = connect(d.api).await;
    let r = call(&mut c, &["/login", "=name=admin", "=password=n3w"]).await;
    assert_eq!(r[0], vec!["!trap", "=message=not allowed (9)"]);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test]
async fn down_and_up() {
    let fleet = fleet([127, 0, 84, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    fleet.control(&format!("down {}", d.ip)).await.expect("down");
    assert!(read(&mut c).await.is_none());
    assert!(tokio::net::TcpStream::connect(d.api).await.is_err(), "nothing listens");
    assert!(tokio::net::TcpStream::connect(d.api_ssl).await.is_err());
    fleet.control(&format!("up {}", d.ip)).await.expect("up");
    assert_eq!(fleet.device(d.ip).expect("device").api, d.api, "same port again");
    logged_in(d.api).await;
}

#[tokio::test]
async fn config_changes_bump_last_config_change() {
    let fleet = fleet([127, 0, 85, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let before = fleet.last_config_change(d.ip).expect("time");
    let lines = fleet.config_lines(d.ip).expect("lines").len();
    fleet
        .control(&format!("config {} /ip dns set servers=192.0.2.53", d.ip))
        .await
        .expect("config");
    assert!(fleet.last_config_change(d.ip).expect("time") > before);
    let after = fleet.config_lines(d.ip).expect("lines");
    assert_eq!(after.len(), lines + 1);
    assert_eq!(after.last().map(String::as_str), Some("/ip dns set servers=192.0.2.53"));
}

#[tokio::test]
async fn counter_wrap_reset_and_reboot() {
    let fleet = fleet([127, 0, 86, 1], 1, RosMix::Mixed).await;
    let d = fleet.devices()[0].clone();
    let mut c = logged_in(d.api).await;
    let rx = |r: Vec<Sentence>| rows(&r)[0]["rx-byte"].parse::<u64>().expect("decimal");
    let q = ["/interface/print", "?name=ether1", "=.proplist=rx-byte"];

    fleet
        .control(&format!("counter {} ether1 wrap", d.ip))
        .await
        .expect("wrap");
    let near_top = rx(call(&mut c, &q).await);
    assert!(near_top > u64::MAX - (1 << 32), "{near_top}");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let rolled = rx(call(&mut c, &q).await);
    assert!(rolled < near_top, "rolled over: {rolled}");

    fleet
        .control(&format!("counter {} ether1 reset", d.ip))
        .await
        .expect("reset");
    assert!(rx(call(&mut c, &q).await) < 10_000_000);

    fleet.control(&format!("reboot {}", d.ip)).await.expect("reboot");
    assert!(read(&mut c).await.is_none(), "a reboot drops connections");
    let mut c = logged_in(d.api).await;
    let up = rows(&call(&mut c, &["/system/resource/print"]).await)[0]["uptime"].clone();
    assert!(up == "0s" || up == "1s" || up == "2s", "{up}");
    let log = rows(&call(&mut c, &["/log/print", "?message=router rebooted"]).await);
    assert!(!log.is_empty());
}

#[tokio::test]
async fn control_errors_are_explained() {
    let fleet = fleet([127, 0, 87, 1], 1, RosMix::Mixed).await;
    assert!(fleet.control("slow 127.0.87.99 10").await.is_err());
    assert!(fleet.control("counter 127.0.87.1 ether99 wrap").await.is_err());
    assert!(fleet.control("teleport 127.0.87.1").await.is_err());
}

#[tokio::test]
async fn control_port_answers_ok_or_error() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let fleet = std::sync::Arc::new(fleet([127, 0, 88, 1], 1, RosMix::Mixed).await);
    let listener = outpost_sim::control::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(outpost_sim::control::serve(listener, fleet.clone()));
    let sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"slow 127.0.88.1 5\nfly 127.0.88.1\n")
        .await
        .expect("write");
    assert_eq!(lines.next_line().await.expect("read").as_deref(), Some("ok"));
    let e = lines.next_line().await.expect("read").expect("line");
    assert!(e.starts_with("error "), "{e}");
    assert!(
        outpost_sim::control::bind("192.0.2.1:0".parse().expect("addr"))
            .await
            .is_err()
    );
}
