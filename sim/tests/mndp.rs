//! MNDP announcements from a fleet started in-process: rounds at the
//! interval, silence from a device taken down, loopback only.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use outpost_discovery::mndp::{Announcement, parse};
use outpost_sim::{AnnounceError, Op, RosMix};
use tokio::net::UdpSocket;

mod common;

async fn next(rx: &UdpSocket) -> (Ipv4Addr, Announcement) {
    let mut buf = [0u8; 2048];
    let (len, from) = tokio::time::timeout(Duration::from_secs(10), rx.recv_from(&mut buf))
        .await
        .expect("an announcement within 10 s")
        .expect("recv");
    let IpAddr::V4(ip) = from.ip() else {
        panic!("from {from}");
    };
    (ip, parse(&buf[..len]).expect("a valid MNDP announcement"))
}

#[tokio::test]
async fn devices_announce_each_round_until_taken_down() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let fleet = common::fleet([127, 0, 150, 1], 2, RosMix::Mixed).await;
    let devices: HashMap<Ipv4Addr, _> = fleet.devices().into_iter().map(|d| (d.ip, d)).collect();
    fleet
        .announce_mndp(rx.local_addr().expect("addr"), Duration::from_secs(1))
        .expect("announce");

    // Round 0 at once, round 1 a second later: one announcement per device each.
    for round in 0..2u16 {
        let mut seen = HashMap::new();
        while seen.len() < 2 {
            let (ip, a) = next(&rx).await;
            assert_eq!(a.seq, round, "from {ip}");
            let d = &devices[&ip];
            assert_eq!(a.identity.as_deref(), Some(d.identity.as_str()));
            assert_eq!(a.ipv4, Some(d.ip));
            assert_eq!(a.board.as_deref(), Some(d.board));
            assert_eq!(a.version, Some(d.version.display()));
            seen.insert(ip, a.mac);
        }
        let macs: std::collections::HashSet<_> = seen.values().collect();
        assert_eq!(macs.len(), 2, "each device has its own MAC");
    }

    let down = Ipv4Addr::new(127, 0, 150, 1);
    fleet.apply(Op::Down(down)).await.expect("down");
    // A round may have been under way when the device went down; after it,
    // only the other device speaks.
    let mut rounds_without = 0;
    while rounds_without < 2 {
        let (ip, a) = next(&rx).await;
        if ip == down {
            assert!(
                rounds_without == 0 && a.seq <= 2,
                "{ip} announced round {} while down",
                a.seq
            );
        } else {
            rounds_without += 1;
        }
    }
}

#[tokio::test]
async fn only_loopback_destinations_and_a_real_interval() {
    let fleet = common::fleet([127, 0, 151, 1], 1, RosMix::V7).await;
    let outside: SocketAddr = "192.0.2.1:5678".parse().expect("addr");
    assert_eq!(
        fleet.announce_mndp(outside, Duration::from_secs(30)),
        Err(AnnounceError::NotLoopback(outside))
    );
    let inside: SocketAddr = "127.0.0.1:5678".parse().expect("addr");
    assert_eq!(
        fleet.announce_mndp(inside, Duration::ZERO),
        Err(AnnounceError::ZeroInterval)
    );
}
