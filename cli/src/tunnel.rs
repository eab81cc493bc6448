//! `outpost tunnel`: a local port forwarded to a device port through the
//! collector and the device's agent, like `kubectl port-forward`. Each
//! connection accepted on the local port is its own `TunnelService.Open`
//! call, so WinBox, `ssh`, `scp` and a browser all work through it, and one
//! slow connection never holds up another.
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::device_service_client::DeviceServiceClient;
use outpost_proto::tunnel_wire::{self, ChunkBuf, Out};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::connect::{Api, status};

/// The path of `TunnelService.Open`.
const OPEN_PATH: &str = "/outpost.api.v1.TunnelService/Open";

/// The device port a name or number stands for.
pub(crate) fn port_of(spec: &str) -> Result<u16> {
    Ok(match spec {
        "winbox" => 8291,
        "ssh" => 22,
        "telnet" => 23,
        "http" => 80,
        "https" => 443,
        "api" => 8728,
        "api-ssl" => 8729,
        n => match n.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => bail!("{spec:?} is not a port: use winbox, ssh, telnet, http, https, api, api-ssl or a number"),
        },
    })
}

/// The device `name` names: its id, or the one device whose identity or
/// address it is.
async fn device_id(api: &Api, name: &str) -> Result<String> {
    let mut devices = DeviceServiceClient::new(api.channel.clone());
    if uuid::Uuid::parse_str(name).is_ok() {
        let d = devices
            .get_device(api.request(pb::GetDeviceRequest {
                device_id: name.to_owned(),
            })?)
            .await
            .map_err(|s| status(&format!("device {name}"), s))?
            .into_inner();
        return Ok(d.id);
    }
    let all = devices
        .list_devices(api.request(pb::ListDevicesRequest::default())?)
        .await
        .map_err(|s| status("listing devices", s))?
        .into_inner()
        .devices;
    let matching: Vec<_> = all.iter().filter(|d| d.identity == name || d.address == name).collect();
    match matching.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => bail!("no device has the id, identity or address {name:?} (see `outpost devices list`)"),
        _ => bail!(
            "{} devices are called {name:?}: use the device id (see `outpost devices list`)",
            matching.len()
        ),
    }
}

/// Listens on `local` and forwards each connection to `port` of `device`.
pub(crate) async fn run(api: Api, device: &str, port: u16, local: SocketAddr) -> Result<()> {
    let device = device_id(&api, device).await?;
    if !local.ip().is_loopback() {
        eprintln!(
            "warning: {local} is not a loopback address: anyone who can reach it reaches the device through your account"
        );
    }
    let listener = TcpListener::bind(local)
        .await
        .with_context(|| format!("listening on {local}"))?;
    let bound = listener.local_addr()?;
    // One line for people and scripts alike: where to point the client.
    println!("listening on {bound}");
    eprintln!("forwarding {bound} to port {port} of device {device}; Ctrl-C stops");
    let api = std::sync::Arc::new(api);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (conn, peer) = accepted.context("accepting a connection")?;
                let (api, device) = (api.clone(), device.clone());
                tokio::spawn(async move {
                    if let Err(e) = forward(&api, &device, port, conn).await {
                        eprintln!("connection from {peer}: {e:#}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn request(kind: pb::tunnel_request::Kind) -> Out<pb::TunnelRequest> {
    Out::Message(pb::TunnelRequest { kind: Some(kind) })
}

/// Carries one local connection until both sides are done.
async fn forward(api: &Api, device: &str, port: u16, conn: TcpStream) -> Result<()> {
    let _ = conn.set_nodelay(true);
    let (tx, rx) = mpsc::channel(8);
    tx.send(request(pb::tunnel_request::Kind::Target(pb::TunnelTarget {
        device_id: device.to_owned(),
        port: u32::from(port),
    })))
    .await
    .context("the tunnel request queue closed")?;
    // Written and read by `tunnel_wire`: the bytes are never copied in between.
    let metadata = api.request(())?.into_parts().0;
    let mut replies: tunnel_wire::Incoming<pb::TunnelReply> =
        tunnel_wire::call(&mut api.channel.clone(), OPEN_PATH, metadata, ReceiverStream::new(rx))
            .await
            .map_err(|s| status("opening the tunnel", s))?;
    match replies.message().await.map_err(|s| status("opening the tunnel", s))? {
        Some(pb::TunnelReply {
            kind: Some(pb::tunnel_reply::Kind::Opened(_)),
        }) => {}
        _ => bail!("the collector did not open the tunnel"),
    }
    let (mut rd, mut wr) = conn.into_split();
    let up = async move {
        loop {
            // Read where the message is sent from: no copy on the way out.
            let mut buf = ChunkBuf::with_capacity(tunnel_wire::CHUNK_BYTES);
            let n = rd.read_buf(buf.spare()).await.context("reading the local connection")?;
            if n == 0 {
                let _ = tx.send(request(pb::tunnel_request::Kind::Fin(pb::TunnelFin {}))).await;
                // Holding the sender keeps the call open for the device's answer.
                tx.closed().await;
                return Ok::<(), anyhow::Error>(());
            }
            let framed = buf.into_framed().map_err(|s| status("tunnel", s))?;
            if tx.send(Out::Framed(framed)).await.is_err() {
                return Ok(());
            }
        }
    };
    let down = async move {
        loop {
            match replies.message().await {
                Ok(Some(pb::TunnelReply {
                    kind: Some(pb::tunnel_reply::Kind::Data(b)),
                })) => wr.write_all(&b).await.context("writing the local connection")?,
                Ok(Some(pb::TunnelReply {
                    kind: Some(pb::tunnel_reply::Kind::Fin(_)),
                })) => {
                    let _ = wr.shutdown().await;
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok::<(), anyhow::Error>(()),
                Err(s) => return Err(status("tunnel", s)),
            }
        }
    };
    tokio::pin!(up, down);
    // The call ends once both directions are done; an error ends it at once.
    tokio::select! {
        r = &mut down => r,
        r = &mut up => { r?; down.await }
    }
}

#[cfg(test)]
mod tests {
    use super::port_of;

    #[test]
    fn ports_by_name_or_number() {
        assert_eq!(port_of("winbox").ok(), Some(8291));
        assert_eq!(port_of("ssh").ok(), Some(22));
        assert_eq!(port_of("8443").ok(), Some(8443));
        for bad in ["0", "65536", "rdp", ""] {
            let e = port_of(bad).expect_err(bad).to_string();
            assert!(e.contains("is not a port"), "{e}");
        }
    }
}
