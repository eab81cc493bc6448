//! Writes the seed corpus of the `tunnel_stream` fuzz target,
//! `seeds/tunnel_stream/` beside this crate's Cargo.toml:
//!
//!     cargo run --example make_seeds
//!
//! Each seed is a header (see `src/lib.rs`) and a stream of gRPC messages as
//! plain gRPC writes them: tunnels opened, carrying data and closed, on the
//! agent's stream and the API's, cut into frames of one byte, of a few and
//! large ones; an empty data message, a large one, a compressed one, and a
//! stream ending inside a message. Running it again gives the same files.
use std::path::PathBuf;

use bytes::Bytes;
use outpost_proto::agent_v1::{Empty, TunnelClosed, TunnelFrame, TunnelHello, tunnel_frame};
use outpost_proto::api_v1::{
    TunnelFin, TunnelOpened, TunnelReply, TunnelRequest, TunnelTarget, tunnel_reply, tunnel_request,
};
use outpost_proto_fuzz::{End, Kind, Plan, join};
use prost::Message;

/// `message` with its gRPC prefix.
fn grpc<M: Message>(message: &M) -> Vec<u8> {
    let len = u32::try_from(message.encoded_len()).unwrap_or(u32::MAX);
    let mut out = vec![0];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&message.encode_to_vec());
    out
}

fn frame(kind: tunnel_frame::Kind) -> TunnelFrame {
    TunnelFrame { kind: Some(kind) }
}

fn plan(kind: Kind, end: End, client: bool, pending: bool, cuts: [usize; 4]) -> Plan {
    Plan {
        kind,
        end,
        client,
        pending,
        cuts,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/tunnel_stream");
    std::fs::create_dir_all(&dir)?;

    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let data = |range: std::ops::Range<usize>| Bytes::copy_from_slice(&payload[range]);

    // The agent's side of a tunnel: hello, opened, data both small and
    // spanning frames, an empty data message, fin and closed.
    let mut agent = grpc(&frame(tunnel_frame::Kind::Hello(TunnelHello {
        tunnel_id: "tunnel-7".into(),
        secret: vec![9; 32],
    })));
    agent.extend(grpc(&frame(tunnel_frame::Kind::Opened(Empty {}))));
    agent.extend(grpc(&frame(tunnel_frame::Kind::Data(data(0..300)))));
    agent.extend(grpc(&frame(tunnel_frame::Kind::Data(Bytes::new()))));
    agent.extend(grpc(&frame(tunnel_frame::Kind::Data(data(300..5_000)))));
    agent.extend(grpc(&frame(tunnel_frame::Kind::Fin(Empty {}))));
    agent.extend(grpc(&frame(tunnel_frame::Kind::Closed(TunnelClosed {
        reason: "reset".into(),
        detail: "the device went away".into(),
    }))));

    // An API client's requests and the collector's replies.
    let mut requests = grpc(&TunnelRequest {
        kind: Some(tunnel_request::Kind::Target(TunnelTarget {
            device_id: "0d1e2f30-4152-4637-8849-5a6b7c8d9eaf".into(),
            port: 22,
        })),
    });
    requests.extend(grpc(&TunnelRequest {
        kind: Some(tunnel_request::Kind::Data(data(0..130))),
    }));
    requests.extend(grpc(&TunnelRequest {
        kind: Some(tunnel_request::Kind::Fin(TunnelFin {})),
    }));
    let mut replies = grpc(&TunnelReply {
        kind: Some(tunnel_reply::Kind::Opened(TunnelOpened {
            tunnel_id: "tunnel-7".into(),
            target: "192.0.2.10:22".into(),
        })),
    });
    replies.extend(grpc(&TunnelReply {
        kind: Some(tunnel_reply::Kind::Data(data(0..16_384))),
    }));
    replies.extend(grpc(&TunnelReply {
        kind: Some(tunnel_reply::Kind::Fin(TunnelFin {})),
    }));

    let mut compressed = grpc(&frame(tunnel_frame::Kind::Data(data(0..20))));
    compressed[0] = 1;
    let truncated = grpc(&frame(tunnel_frame::Kind::Data(data(0..200))))[..120].to_vec();

    let large = [65_536, 65_536, 65_536, 65_536];
    let seeds = [
        (
            "agent-one-frame",
            plan(Kind::Frame, End::OkTrailers, true, false, large),
            &agent,
        ),
        (
            "agent-bytes",
            plan(Kind::Frame, End::Plain, false, false, [1, 1, 1, 1]),
            &agent,
        ),
        (
            "agent-mixed-cuts",
            plan(Kind::Frame, End::OkTrailers, true, true, [3, 7, 300, 4096]),
            &agent,
        ),
        (
            "agent-error-trailers",
            plan(Kind::Frame, End::ErrorTrailers, true, false, [5, 6, 11, 64]),
            &agent,
        ),
        (
            "agent-reset",
            plan(Kind::Frame, End::BodyError, false, false, [13, 2, 4096, 8]),
            &agent,
        ),
        (
            "requests",
            plan(Kind::Request, End::Plain, false, false, [4, 16, 64, 2]),
            &requests,
        ),
        (
            "replies",
            plan(Kind::Reply, End::OkTrailers, true, false, [5, 6, 4096, 1]),
            &replies,
        ),
        (
            "compressed",
            plan(Kind::Frame, End::OkTrailers, true, false, [2, 3, 4, 5]),
            &compressed,
        ),
        (
            "truncated",
            plan(Kind::Frame, End::OkTrailers, true, false, [7, 16, 13, 64]),
            &truncated,
        ),
    ];
    for (name, plan, stream) in seeds {
        std::fs::write(dir.join(format!("{name}.bin")), join(&plan, stream)?)?;
    }
    Ok(())
}
