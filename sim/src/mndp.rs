//! MNDP announcements: every device tells a loopback address about itself as
//! a RouterOS device does on its `ether1` (identity, ether1's MAC, version,
//! board, uptime, software ID, its address), in the real wire format, from
//! a UDP socket bound to the device's own address, so a listener sees one
//! sender per device. Devices answer nothing over MNDP, not even refresh
//! requests.
//!
//! Each round opens one short-lived socket per device rather than keeping
//! one open, so a fleet announcing needs no more file descriptors than one
//! that does not.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use outpost_discovery::mndp::{self, Announcement};
use tokio::net::UdpSocket;

use crate::device::Device;

/// What `dev` announces in round `seq`.
pub(crate) fn announcement(dev: &Device, seq: u16, now: Instant) -> Announcement {
    let p = &dev.profile;
    let uptime = dev.state().uptime(now);
    Announcement {
        seq,
        mac: p.ifaces.iter().find(|i| i.name == "ether1").map(|i| i.mac),
        identity: Some(p.identity.clone()),
        version: Some(p.version.display()),
        platform: Some("MikroTik".to_owned()),
        uptime_secs: Some(u32::try_from(uptime).unwrap_or(u32::MAX)),
        software_id: Some(p.software_id.clone()),
        board: Some(p.board.name.to_owned()),
        unpack: None,
        ipv6: None,
        interface: Some("ether1".to_owned()),
        ipv4: Some(p.ip),
    }
}

/// Announces every device that is up to `to`, now and then every `every`,
/// until the task is aborted.
pub(crate) async fn announce(devices: Vec<Arc<Device>>, to: SocketAddr, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    // A round that ran late is not made up for: a device announces on a period.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u16 = 0;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let mut failed = 0usize;
        let mut last_error = None;
        for dev in &devices {
            if !dev.up.load(Ordering::Relaxed) {
                continue;
            }
            let packet = mndp::encode(&announcement(dev, seq, now));
            if let Err(e) = send(dev.profile.ip, to, &packet).await {
                failed += 1;
                last_error = Some(e);
            }
        }
        if let Some(error) = last_error {
            tracing::warn!(%to, failed, %error, "could not send some MNDP announcements");
        }
        seq = seq.wrapping_add(1);
    }
}

async fn send(from: Ipv4Addr, to: SocketAddr, packet: &[u8]) -> std::io::Result<()> {
    let socket = UdpSocket::bind((from, 0)).await?;
    socket.send_to(packet, to).await.map(|_| ())
}

/// Why announcing could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The destination is not on loopback.
    #[error("MNDP destination {0} is not a loopback address: the simulator only sends to loopback")]
    NotLoopback(SocketAddr),
    /// A zero interval.
    #[error("the MNDP interval must be longer than zero")]
    ZeroInterval,
}
