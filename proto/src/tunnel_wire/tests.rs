use std::collections::VecDeque;

use super::*;
use crate::agent_v1::{Empty, TunnelClosed, TunnelFrame, TunnelHello, tunnel_frame};
use crate::api_v1::{TunnelReply, TunnelRequest, TunnelTarget, tunnel_request};

/// A body handing over fixed frames.
struct Frames(VecDeque<Result<Frame<Bytes>, Status>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Status;
    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Poll::Ready(self.0.pop_front())
    }
}

fn body(frames: impl IntoIterator<Item = Frame<Bytes>>) -> Body {
    Body::new(Frames(frames.into_iter().map(Ok).collect()))
}

fn ok_trailers() -> Frame<Bytes> {
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", http::HeaderValue::from_static("0"));
    Frame::trailers(t)
}

/// What plain gRPC (prost) writes for `m`.
fn plain<M: Message>(m: &M) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&u32::try_from(m.encoded_len()).expect("small").to_be_bytes());
    m.encode(&mut out).expect("encode");
    out
}

fn wire<M: Chunked>(m: M) -> Vec<u8> {
    let (head, chunk) = encode(m).expect("encode");
    let mut out = head.to_vec();
    out.extend_from_slice(chunk.as_deref().unwrap_or_default());
    out
}

/// `bytes` read into a [`ChunkBuf`] and framed where they lie.
fn framed(bytes: &[u8]) -> Framed {
    let mut buf = ChunkBuf::with_capacity(bytes.len());
    buf.spare().put_slice(bytes);
    assert_eq!(buf.len(), bytes.len());
    buf.into_framed().expect("framed")
}

fn frame(kind: tunnel_frame::Kind) -> TunnelFrame {
    TunnelFrame { kind: Some(kind) }
}

#[test]
fn the_framing_is_what_prost_writes() {
    for n in [0usize, 1, 127, 128, 16_383, 16_384, 65_536, 1 << 20] {
        let bytes = Bytes::from(vec![0xa5; n]);
        let f = TunnelFrame::data(bytes.clone());
        assert_eq!(wire(f.clone()), plain(&f), "TunnelFrame, {n} bytes");
        let r = TunnelRequest::data(bytes.clone());
        assert_eq!(wire(r.clone()), plain(&r), "TunnelRequest, {n} bytes");
        let r = TunnelReply::data(bytes.clone());
        assert_eq!(wire(r.clone()), plain(&r), "TunnelReply, {n} bytes");
        assert_eq!(framed(&bytes).0.to_vec(), plain(&r), "read into a ChunkBuf, {n} bytes");
    }
    let hello = frame(tunnel_frame::Kind::Hello(TunnelHello {
        tunnel_id: "t1".into(),
        secret: vec![1; 32],
    }));
    assert_eq!(wire(hello.clone()), plain(&hello));
}

#[test]
fn a_chunk_over_the_message_limit_is_refused_on_the_way_out() {
    let status = encode(TunnelFrame::data(Bytes::from(vec![0; MAX_MESSAGE_BYTES]))).expect_err("too big");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let mut buf = ChunkBuf::with_capacity(MAX_MESSAGE_BYTES);
    buf.spare().put_bytes(0, MAX_MESSAGE_BYTES);
    let status = buf.into_framed().expect_err("too big");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

/// Every message of `stream`, whatever the frames' sizes: the data joined,
/// the others as they were.
fn read_all(wire: &[u8], cut: &[usize]) -> Result<(Vec<u8>, Vec<TunnelFrame>), Status> {
    let mut frames = Vec::new();
    let mut at = 0;
    for &c in cut.iter().chain(std::iter::once(&wire.len())) {
        let c = c.min(wire.len());
        if c > at {
            frames.push(Frame::data(Bytes::copy_from_slice(&wire[at..c])));
            at = c;
        }
    }
    frames.push(ok_trailers());
    let mut incoming = Incoming::<TunnelFrame>::new(body(frames), true);
    let rt = tokio_runtime();
    rt.block_on(async {
        let (mut data, mut others) = (Vec::new(), Vec::new());
        while let Some(m) = incoming.message().await? {
            match m.into_data() {
                Ok(b) => data.extend_from_slice(&b),
                Err(other) => others.push(other),
            }
        }
        Ok((data, others))
    })
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

#[test]
fn messages_come_back_whatever_the_frames() {
    let hello = frame(tunnel_frame::Kind::Hello(TunnelHello {
        tunnel_id: "tunnel-7".into(),
        secret: vec![9; 32],
    }));
    let closed = frame(tunnel_frame::Kind::Closed(TunnelClosed {
        reason: "reset".into(),
        detail: "the device went away".into(),
    }));
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut stream = plain(&hello);
    stream.extend(wire(TunnelFrame::data(Bytes::copy_from_slice(&payload[..300]))));
    stream.extend(wire(TunnelFrame::data(Bytes::new())));
    stream.extend(plain(&frame(tunnel_frame::Kind::Opened(Empty {}))));
    stream.extend(wire(TunnelFrame::data(Bytes::copy_from_slice(&payload[300..]))));
    stream.extend(plain(&closed));
    let want_others = vec![hello, frame(tunnel_frame::Kind::Opened(Empty {})), closed];
    // One frame; frames cut at every place in the first messages; cuts
    // inside the big chunk.
    let mut cuts: Vec<Vec<usize>> = vec![vec![]];
    for i in 1..400 {
        cuts.push(vec![i]);
        cuts.push(vec![i, i + 1, i + 7]);
    }
    cuts.push((1..stream.len()).step_by(4093).collect());
    cuts.push((1..stream.len()).step_by(1).take(64).collect());
    for cut in cuts {
        let (data, others) = read_all(&stream, &cut).unwrap_or_else(|s| panic!("cut {cut:?}: {s:?}"));
        assert_eq!(data, payload, "cut {cut:?}");
        assert_eq!(others, want_others, "cut {cut:?}");
    }
}

#[test]
fn a_chunk_in_one_frame_is_handed_over_without_a_copy() {
    let framed = framed(&[3u8; 65_536]);
    let wire = framed.0.clone();
    let frames = [Frame::data(wire.clone()), ok_trailers()];
    let mut incoming = Incoming::<TunnelFrame>::new(body(frames), true);
    let got = tokio_runtime()
        .block_on(incoming.message())
        .expect("read")
        .expect("a message")
        .into_data()
        .expect("data");
    assert_eq!(got.len(), 65_536);
    assert_eq!(got.as_ptr(), wire[wire.len() - 65_536..].as_ptr(), "the same memory");
}

#[test]
fn bad_streams_are_errors_that_say_why() {
    let rt = tokio_runtime();
    let mut compressed = plain(&TunnelFrame::data(Bytes::from_static(b"x")));
    compressed[0] = 1;
    let mut huge = vec![0u8];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut garbage = vec![0u8, 0, 0, 0, 3];
    garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
    let truncated = plain(&TunnelFrame::data(Bytes::from_static(b"hello")))[..8].to_vec();
    for (bytes, code, says) in [
        (compressed, Code::Unimplemented, "compressed"),
        (huge, Code::OutOfRange, "limit"),
        (garbage, Code::Internal, "could not be decoded"),
        (truncated, Code::Internal, "ended inside a message"),
    ] {
        let mut incoming = Incoming::<TunnelFrame>::new(body([Frame::data(Bytes::from(bytes)), ok_trailers()]), true);
        let status = rt
            .block_on(async {
                loop {
                    if incoming.message().await?.is_none() {
                        return Ok::<(), Status>(());
                    }
                }
            })
            .expect_err(says);
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    }
}

#[test]
fn a_client_reads_the_status_from_the_trailers() {
    let rt = tokio_runtime();
    let mut aborted = http::HeaderMap::new();
    Status::aborted("tunnel closed: idle for 300 s")
        .add_header(&mut aborted)
        .expect("header");
    let mut incoming = Incoming::<TunnelReply>::new(body([Frame::trailers(aborted)]), true);
    let status = rt.block_on(incoming.message()).expect_err("aborted");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(status.message(), "tunnel closed: idle for 300 s");

    let mut incoming = Incoming::<TunnelReply>::new(body([]), true);
    let status = rt.block_on(incoming.message()).expect_err("no status");
    assert!(status.message().contains("without a status"), "{status:?}");

    // A server reading a request stream: its end is simply the end.
    let mut incoming = Incoming::<TunnelRequest>::new(body([]), false);
    assert!(rt.block_on(incoming.message()).expect("ok").is_none());
}

#[test]
fn outgoing_ends_with_the_status_on_a_server_and_plainly_on_a_client() {
    let rt = tokio_runtime();
    let target = TunnelRequest {
        kind: Some(tunnel_request::Kind::Target(TunnelTarget {
            device_id: "d".into(),
            port: 22,
        })),
    };
    let messages = vec![
        Ok(Out::Message(target.clone())),
        Ok(Out::Message(TunnelRequest::data(Bytes::from_static(b"abc")))),
        Ok(Out::Framed(framed(b"defg"))),
    ];
    let collect = |mut out: Outgoing<TunnelRequest>| {
        rt.block_on(async move {
            let mut frames = Vec::new();
            while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut out).poll_frame(cx)).await {
                frames.push(f);
            }
            frames
        })
    };
    let frames = collect(Outgoing::new(tokio_stream::iter(messages.clone()), true));
    let mut bytes = Vec::new();
    let mut trailers = None;
    for f in frames {
        match f.expect("frame").into_data() {
            Ok(d) => bytes.extend_from_slice(&d),
            Err(f) => trailers = f.into_trailers().ok(),
        }
    }
    let mut want = plain(&target);
    want.extend(plain(&TunnelRequest::data(Bytes::from_static(b"abc"))));
    want.extend(plain(&TunnelRequest::data(Bytes::from_static(b"defg"))));
    assert_eq!(bytes, want);
    let status = Status::from_header_map(&trailers.expect("trailers")).expect("a status");
    assert_eq!(status.code(), Code::Ok);

    let failing = vec![Ok(Out::Message(target)), Err(Status::aborted("gone"))];
    let frames = collect(Outgoing::new(tokio_stream::iter(failing.clone()), true));
    let last = frames.last().expect("frames").as_ref().expect("a frame");
    let status = Status::from_header_map(last.trailers_ref().expect("trailers")).expect("status");
    assert_eq!((status.code(), status.message()), (Code::Aborted, "gone"));

    let frames = collect(Outgoing::new(tokio_stream::iter(messages), false));
    assert!(
        frames.iter().all(|f| f.as_ref().is_ok_and(Frame::is_data)),
        "no trailers from a client"
    );
    let frames = collect(Outgoing::new(tokio_stream::iter(failing), false));
    assert!(
        frames.last().expect("frames").is_err(),
        "a client's error resets its stream"
    );
}

/// Found by fuzzing (proto/fuzz, `tunnel_stream`): after a reset stream a
/// server's next read said the stream had ended well, and after a message
/// that could not be decoded the next read went on with the messages behind
/// it. A stream that failed stays failed, with the same error.
#[test]
fn a_failed_stream_stays_failed() {
    let rt = tokio_runtime();
    let reset = [
        Ok(Frame::data(Bytes::from(plain(&TunnelRequest::data(
            Bytes::from_static(b"abc"),
        ))))),
        Err(Status::aborted("the stream was reset")),
    ];
    let mut incoming = Incoming::<TunnelRequest>::new(Body::new(Frames(reset.into_iter().collect())), false);
    let data = rt.block_on(incoming.message()).expect("read").expect("a message");
    assert_eq!(data.into_data().expect("data"), Bytes::from_static(b"abc"));
    for _ in 0..2 {
        let status = rt.block_on(incoming.message()).expect_err("reset");
        assert_eq!(
            (status.code(), status.message()),
            (Code::Aborted, "the stream was reset")
        );
    }

    let mut stream = vec![0u8, 0, 0, 0, 3, 0xff, 0xff, 0xff];
    stream.extend(plain(&TunnelRequest::data(Bytes::from_static(b"after"))));
    let mut incoming = Incoming::<TunnelRequest>::new(body([Frame::data(Bytes::from(stream))]), false);
    for _ in 0..2 {
        let status = rt.block_on(incoming.message()).expect_err("undecodable");
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(status.message().contains("could not be decoded"), "{status:?}");
    }
}
