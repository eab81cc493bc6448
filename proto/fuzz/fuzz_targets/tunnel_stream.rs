//! A tunnel stream as `outpost_proto::tunnel_wire` reads it from HTTP/2 data
//! frames, on a server (`server_request`) or a client (`client_response`):
//! the input's header (see `src/lib.rs`) says which message type, how the
//! bytes are cut into frames and how the body ends. Every message is read
//! until the end or an error, and compared with plain gRPC decoding (the
//! 5-byte prefix and prost) of the same bytes: the same messages in the same
//! order with the same data bytes, and the same error where the stream is
//! bad. Nothing may panic.
#![no_main]

use std::collections::VecDeque;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::Frame;
use libfuzzer_sys::fuzz_target;
use outpost_proto::MAX_MESSAGE_BYTES;
use outpost_proto::tunnel_wire::{self, Chunked, Incoming};
use outpost_proto::{agent_v1, api_v1};
use outpost_proto_fuzz::{BODY_ERROR, ERROR_CODE, ERROR_MESSAGE, End, Kind, Plan, split};
use tonic::body::Body;
use tonic::{Code, Status};

fuzz_target!(|input: &[u8]| {
    let Some((plan, stream)) = split(input) else {
        return;
    };
    match plan.kind {
        Kind::Frame => check::<agent_v1::TunnelFrame>(&plan, stream),
        Kind::Request => check::<api_v1::TunnelRequest>(&plan, stream),
        Kind::Reply => check::<api_v1::TunnelReply>(&plan, stream),
    }
});

/// What a stream carries once the boundaries between data messages, which
/// mean nothing, are forgotten: runs of data bytes and the other messages.
#[derive(Debug, PartialEq)]
enum Seg<M> {
    Data(Vec<u8>),
    Other(M),
}

fn push<M>(segs: &mut Vec<Seg<M>>, message: Result<Bytes, M>) {
    match message {
        Ok(bytes) if bytes.is_empty() => {}
        Ok(bytes) => match segs.last_mut() {
            Some(Seg::Data(run)) => run.extend_from_slice(&bytes),
            _ => segs.push(Seg::Data(bytes.to_vec())),
        },
        Err(other) => segs.push(Seg::Other(other)),
    }
}

/// What plain gRPC decoding makes of a stream.
struct Expected<'a, M> {
    segs: Vec<Seg<M>>,
    /// The error the stream ends with (its code and a word of its message).
    failure: Option<(Code, &'static str)>,
    /// The payload bytes present of a data message the stream ends inside:
    /// a reader that hands data over as it arrives may have passed on a
    /// prefix of them.
    partial: &'a [u8],
}

fn expected<'a, M: Chunked>(plan: &Plan, stream: &'a [u8]) -> Expected<'a, M> {
    let body_error = (ERROR_CODE, BODY_ERROR);
    let incomplete = if plan.end == End::BodyError {
        body_error
    } else {
        (Code::Internal, "ended inside a message")
    };
    let mut segs = Vec::new();
    let mut rest = stream;
    let (failure, partial) = loop {
        if rest.is_empty() {
            let failure = match (plan.end, plan.client) {
                (End::BodyError, _) => Some(body_error),
                (_, false) | (End::OkTrailers, true) => None,
                (End::ErrorTrailers, true) => Some((ERROR_CODE, ERROR_MESSAGE)),
                (End::Plain, true) => Some((Code::Internal, "without a status")),
            };
            break (failure, &[][..]);
        }
        let Some((&[flag, a, b, c, d], body)) = rest.split_first_chunk::<5>() else {
            break (Some(incomplete), &[][..]);
        };
        match flag {
            0 => {}
            1 => break (Some((Code::Unimplemented, "compressed")), &[][..]),
            _ => break (Some((Code::Internal, "compression flag")), &[][..]),
        }
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len > MAX_MESSAGE_BYTES {
            break (Some((Code::OutOfRange, "limit")), &[][..]);
        }
        let Some((message, after)) = body.split_at_checked(len) else {
            break (Some(incomplete), data_payload(body, len));
        };
        match M::decode(message) {
            Ok(m) => push(&mut segs, m.into_data()),
            Err(_) => break (Some((Code::Internal, "could not be decoded")), &[][..]),
        }
        rest = after;
    };
    Expected { segs, failure, partial }
}

/// The payload bytes present in `body`, the start of a `len`-byte message,
/// when it is all one `data` field (field 2, length-delimited) as prost
/// reads it.
fn data_payload(body: &[u8], len: usize) -> &[u8] {
    let mut buf = body;
    let Ok((2, prost::encoding::WireType::LengthDelimited)) = prost::encoding::decode_key(&mut buf) else {
        return &[];
    };
    let Ok(n) = prost::encoding::decode_varint(&mut buf) else {
        return &[];
    };
    let skip = body.len() - buf.len();
    if usize::try_from(n).ok() == len.checked_sub(skip) {
        buf
    } else {
        &[]
    }
}

/// A body handing over fixed frames, answering "not yet" before each one
/// when `pending` (and waking its reader at once).
struct Frames {
    frames: VecDeque<Result<Frame<Bytes>, Status>>,
    pending: bool,
    waited: bool,
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.pending && !self.waited && !self.frames.is_empty() {
            self.waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.waited = false;
        Poll::Ready(self.frames.pop_front())
    }
}

fn body(plan: &Plan, stream: &[u8]) -> Body {
    let mut frames = VecDeque::new();
    let mut rest = stream;
    for &cut in plan.cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (frame, after) = rest.split_at(cut.min(rest.len()));
        frames.push_back(Ok(Frame::data(Bytes::copy_from_slice(frame))));
        rest = after;
    }
    let mut trailers = http::HeaderMap::new();
    match plan.end {
        End::OkTrailers => {
            Status::new(Code::Ok, "")
                .add_header(&mut trailers)
                .expect("OK trailers");
            frames.push_back(Ok(Frame::trailers(trailers)));
        }
        End::ErrorTrailers => {
            Status::new(ERROR_CODE, ERROR_MESSAGE)
                .add_header(&mut trailers)
                .expect("error trailers");
            frames.push_back(Ok(Frame::trailers(trailers)));
        }
        End::Plain => {}
        End::BodyError => frames.push_back(Err(Status::new(ERROR_CODE, BODY_ERROR))),
    }
    Body::new(Frames {
        frames,
        pending: plan.pending,
        waited: false,
    })
}

/// The next message; a call left pending is dropped and made again when
/// `drop_pending` (a reader in a `select!` does that), which must lose
/// nothing. `polls` counts every poll against `max_polls`: each one either
/// ends the call or lets the body hand over a frame, so a reader that spins
/// fails here instead of hanging.
fn next<M: Chunked>(
    incoming: &mut Incoming<M>,
    drop_pending: bool,
    polls: &mut usize,
    max_polls: usize,
) -> Result<Option<M>, Status> {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        let mut call = Box::pin(incoming.message());
        loop {
            *polls += 1;
            assert!(
                *polls <= max_polls,
                "over {max_polls} polls: the reader makes no progress"
            );
            match call.as_mut().poll(&mut cx) {
                Poll::Ready(result) => return result,
                Poll::Pending if drop_pending => break,
                Poll::Pending => {}
            }
        }
    }
}

fn check<M: Chunked + PartialEq + Debug>(plan: &Plan, stream: &[u8]) {
    let body = body(plan, stream);
    let mut incoming = if plan.client {
        tunnel_wire::client_response::<M>(body)
    } else {
        let request = http::Request::new(body);
        tunnel_wire::server_request::<M>(request).1
    };

    // Every message takes at least one byte of the stream, every frame two
    // polls at most (a "not yet" and the frame).
    let max_calls = stream.len() + 2;
    let max_polls = 4 * (stream.len() + 4);
    let mut polls = 0;
    let mut segs = Vec::new();
    let mut data_bytes = 0;
    let mut calls = 0;
    let end = loop {
        calls += 1;
        assert!(
            calls <= max_calls,
            "over {max_calls} messages from {} bytes",
            stream.len()
        );
        match next(&mut incoming, plan.pending, &mut polls, max_polls) {
            Ok(Some(m)) => {
                let m = m.into_data();
                if let Ok(bytes) = &m {
                    data_bytes += bytes.len();
                }
                push(&mut segs, m);
            }
            Ok(None) => break Ok(()),
            Err(status) => break Err(status),
        }
    };
    assert!(
        data_bytes <= stream.len(),
        "{data_bytes} data bytes handed over from a {}-byte stream",
        stream.len()
    );

    let want = expected::<M>(plan, stream);
    match (&end, want.failure) {
        (Ok(()), None) => assert_eq!(segs, want.segs, "messages of a good stream"),
        (Err(status), Some((code, says))) => {
            assert_eq!(status.code(), code, "{status:?}, expected a {code:?} saying {says:?}");
            assert!(status.message().contains(says), "{status:?}, expected {says:?}");
            agree_until_failure(&segs, &want);
        }
        (Ok(()), Some(failure)) => panic!("a bad stream read to its end; expected {failure:?}"),
        (Err(status), None) => panic!("a good stream failed: {status:?}"),
    }

    // Once ended, a stream stays as it ended.
    let again = next(&mut incoming, plan.pending, &mut polls, max_polls);
    match (&end, again) {
        (Ok(()), Ok(None)) => {}
        (Err(first), Err(status)) => assert_eq!(
            (status.code(), status.message()),
            (first.code(), first.message()),
            "a second error after {first:?}"
        ),
        (_, again) => panic!("after {end:?} the next call gave {again:?}"),
    }
}

/// `segs`, read from a stream ending in an error, are the complete messages
/// before it and maybe some of the payload of the data message it ended
/// inside.
fn agree_until_failure<M: PartialEq + Debug>(segs: &[Seg<M>], want: &Expected<'_, M>) {
    if segs == want.segs.as_slice() {
        return;
    }
    let Some((Seg::Data(last), before)) = segs.split_last() else {
        panic!("read {segs:?}, expected {:?} before the error", want.segs);
    };
    let (agreed, extra) = match (before.len() + 1 == want.segs.len(), want.segs.last()) {
        // The partial payload joined the last complete data run.
        (true, Some(Seg::Data(run))) if last.starts_with(run) => {
            (&want.segs[..want.segs.len() - 1], &last[run.len()..])
        }
        _ => (want.segs.as_slice(), last.as_slice()),
    };
    assert_eq!(before, agreed, "messages before the error");
    assert!(
        want.partial.starts_with(extra),
        "{} data bytes handed over that are not the payload of the message the stream ended inside",
        extra.len()
    );
}
