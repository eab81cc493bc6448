//! `--services`: a fleet that listens on the plain API only.

mod common;

use std::net::Ipv4Addr;

use common::*;
use outpost_sim::{Fleet, FleetConfig, RosMix, Services};

#[test]
fn service_lists_parse() {
    let all: Services = "api,api-ssl".parse().expect("parses");
    assert_eq!(all, Services::default());
    let api: Services = "api".parse().expect("parses");
    assert_eq!(
        api,
        Services {
            api: true,
            api_ssl: false
        }
    );
    assert!("api,telnet".parse::<Services>().unwrap_err().contains("telnet"));
    assert!("".parse::<Services>().is_err());
}

#[tokio::test]
async fn api_only_fleet_has_no_api_ssl_listener_and_says_so() {
    let fleet = Fleet::start(FleetConfig {
        devices: 2,
        first_ip: Ipv4Addr::new(127, 0, 91, 1),
        ros: RosMix::Mixed,
        api_port: 0,
        api_ssl_port: 0,
        services: Services {
            api: true,
            api_ssl: false,
        },
        ..FleetConfig::default()
    })
    .await
    .expect("fleet starts");
    for d in fleet.devices() {
        assert_eq!(d.api_ssl.port(), 0);
        let line = d.line();
        assert!(
            line.starts_with(&format!("device {} api={} ros=", d.ip, d.api.port())),
            "{line}"
        );
        assert!(!line.contains("api-ssl"), "{line}");
        logged_in(d.api).await;
    }
    // Down and up again: still the API only, on the same port.
    let d = fleet.devices()[0].clone();
    fleet.control(&format!("down {}", d.ip)).await.expect("down");
    // The listener closes when its task sees the stop: wait for that.
    let mut closed = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(d.api).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(closed, "nothing listens after down");
    fleet.control(&format!("up {}", d.ip)).await.expect("up");
    assert_eq!(fleet.device(d.ip).expect("device"), d);
    logged_in(d.api).await;
}
