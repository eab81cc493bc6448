//! Tunnel streams on the wire without copying their bytes.
//!
//! A tunnel carries bulk bytes in gRPC messages whose `data` field is all
//! there is. Through tonic's codec every chunk was copied twice per hop: into
//! the encoder's buffer on the way out, and from the HTTP/2 frames into the
//! decoder's buffer on the way in (a fifth of the agent's CPU in a bulk
//! transfer, bench/results.md). Here the same gRPC messages are written as a
//! small head (the 5-byte gRPC prefix, the field's key and length) followed by
//! the chunk itself, and read back by slicing the chunk out of the HTTP/2 data
//! frame it arrived in. Every other message (hello, fin, closed, a target)
//! goes through prost as usual, and any peer speaking plain gRPC reads and
//! writes these streams unchanged.
//!
//! Reading, a data message may be handed over in pieces, as its bytes arrive
//! in HTTP/2 frames: a tunnel's bytes are a stream, and its messages'
//! boundaries mean nothing.
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::{Body as _, Frame};
use prost::Message;
use tokio_stream::Stream;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::MAX_MESSAGE_BYTES;

/// `data = 2` as a length-delimited field: the key every tunnel message uses
/// for its bytes (checked against prost by the tests).
const DATA_KEY: u8 = (2 << 3) | 2;
/// The gRPC message prefix: a compression flag and a big-endian length.
const PREFIX: usize = 5;
/// A key and the longest length varint.
const DATA_HEAD: usize = 1 + 10;

/// A tunnel message type whose bytes travel in field 2.
pub trait Chunked: Message + Default + Send + 'static {
    /// A message carrying `bytes`.
    fn data(bytes: Bytes) -> Self;
    /// The bytes, if this is a data message; the message itself otherwise.
    fn into_data(self) -> Result<Bytes, Self>;
}

macro_rules! chunked {
    ($message:ty, $kind:path) => {
        impl Chunked for $message {
            fn data(bytes: Bytes) -> Self {
                Self {
                    kind: Some($kind(bytes)),
                }
            }
            fn into_data(self) -> Result<Bytes, Self> {
                match self.kind {
                    Some($kind(bytes)) => Ok(bytes),
                    kind => Err(Self { kind }),
                }
            }
        }
    };
}

chunked!(crate::agent_v1::TunnelFrame, crate::agent_v1::tunnel_frame::Kind::Data);
chunked!(crate::api_v1::TunnelRequest, crate::api_v1::tunnel_request::Kind::Data);
chunked!(crate::api_v1::TunnelReply, crate::api_v1::tunnel_reply::Kind::Data);

/// `message` as gRPC framing: its head and, for data, the chunk untouched
/// (the connection writes both in one vectored write).
fn encode<M: Chunked>(message: M) -> Result<(Bytes, Option<Bytes>), Status> {
    let message = match message.into_data() {
        Ok(chunk) => {
            let mut head = BytesMut::with_capacity(HEADROOM);
            put_data_head(&mut head, chunk.len())?;
            return Ok((head.freeze(), Some(chunk)));
        }
        Err(other) => other,
    };
    let len = message.encoded_len();
    let len32 = message_len(len)?;
    let mut buf = BytesMut::with_capacity(PREFIX + len);
    buf.put_u8(0);
    buf.put_u32(len32);
    message
        .encode(&mut buf)
        .map_err(|e| Status::internal(format!("encoding a tunnel message: {e}")))?;
    Ok((buf.freeze(), None))
}

/// The head of a data message of `n` bytes: the gRPC prefix, the field's
/// key and its length; [`data_head_len`] bytes.
fn put_data_head(out: &mut impl BufMut, n: usize) -> Result<(), Status> {
    let len32 = message_len(1 + prost::encoding::encoded_len_varint(n as u64) + n)?;
    out.put_u8(0);
    out.put_u32(len32);
    out.put_u8(DATA_KEY);
    prost::encoding::encode_varint(n as u64, out);
    Ok(())
}

fn data_head_len(n: usize) -> usize {
    PREFIX + 1 + prost::encoding::encoded_len_varint(n as u64)
}

fn message_len(len: usize) -> Result<u32, Status> {
    u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_MESSAGE_BYTES)
        .ok_or_else(|| {
            Status::out_of_range(format!(
                "a {len}-byte message is over the {MAX_MESSAGE_BYTES}-byte limit"
            ))
        })
}

/// Room in front of a chunk for its message's head.
const HEADROOM: usize = PREFIX + DATA_HEAD;

/// The most bytes to read into a [`ChunkBuf`] at once: with its heads (the
/// HTTP/2 frame's and the message's, twice when a collector passes it on as
/// two frames) it still fills exactly four 16 KiB TLS records, and stays
/// under rustls's 64 KiB write buffer, so a chunk is one TLS write. At 64 KiB
/// each chunk cost a fifth record of a few bytes and a second write.
pub const CHUNK_BYTES: usize = 64 * 1024 - 64;

/// A buffer that bytes read from a socket go into with room in front, so
/// that they become a data message where they lie.
pub struct ChunkBuf(BytesMut);

impl ChunkBuf {
    /// Room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(HEADROOM + capacity);
        buf.put_bytes(0, HEADROOM);
        Self(buf)
    }

    /// Where to append the bytes (e.g. `read_buf(chunk.spare())`).
    pub fn spare(&mut self) -> &mut BytesMut {
        &mut self.0
    }

    /// The bytes held.
    pub fn len(&self) -> usize {
        self.0.len() - HEADROOM
    }

    /// Whether no byte is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as a data message (of any of the tunnel message types:
    /// they all carry data in field 2).
    pub fn into_framed(self) -> Result<Framed, Status> {
        let n = self.len();
        let start = HEADROOM - data_head_len(n);
        let mut buf = self.0;
        put_data_head(&mut &mut buf[start..HEADROOM], n)?;
        Ok(Framed(buf.freeze().slice(start..)))
    }
}

/// A data message in its wire form.
#[derive(Clone, Debug)]
pub struct Framed(Bytes);

/// What an outgoing stream carries: messages, and data messages already in
/// their wire form.
#[derive(Clone, Debug)]
pub enum Out<M> {
    /// Encoded on the way out.
    Message(M),
    /// Sent as it is.
    Framed(Framed),
}

impl<M> From<M> for Out<M> {
    fn from(message: M) -> Self {
        Self::Message(message)
    }
}

type Messages<M> = Pin<Box<dyn Stream<Item = Result<Out<M>, Status>> + Send>>;

/// An outgoing stream of messages as an HTTP/2 body. A server's ends with
/// the call's status in the trailers; a client's simply ends.
pub struct Outgoing<M> {
    messages: Messages<M>,
    chunk: Option<Bytes>,
    trailers: bool,
    done: bool,
}

impl<M: Chunked> Outgoing<M> {
    fn new(messages: impl Stream<Item = Result<Out<M>, Status>> + Send + 'static, trailers: bool) -> Self {
        Self {
            messages: Box::pin(messages),
            chunk: None,
            trailers,
            done: false,
        }
    }

    fn end(&mut self, status: Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.done = true;
        if !self.trailers {
            return Poll::Ready((status.code() != Code::Ok).then_some(Err(status)));
        }
        let mut trailers = http::HeaderMap::new();
        if let Err(bad) = status.add_header(&mut trailers) {
            trailers = http::HeaderMap::new();
            let _ = Status::internal(bad.message().to_owned()).add_header(&mut trailers);
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl<M: Chunked> http_body::Body for Outgoing<M> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(chunk) = this.chunk.take() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.messages.as_mut().poll_next(cx)) {
            Some(Ok(Out::Framed(framed))) => Poll::Ready(Some(Ok(Frame::data(framed.0)))),
            Some(Ok(Out::Message(message))) => match encode(message) {
                Ok((head, chunk)) => {
                    this.chunk = chunk;
                    Poll::Ready(Some(Ok(Frame::data(head))))
                }
                Err(status) => this.end(status),
            },
            Some(Err(status)) => this.end(status),
            None => this.end(Status::new(Code::Ok, "")),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.chunk.is_none()
    }
}

/// An incoming stream of messages read from an HTTP/2 body.
pub struct Incoming<M> {
    body: Body,
    chunks: VecDeque<Bytes>,
    buffered: usize,
    /// Bytes of the current data message not handed over yet.
    data_left: usize,
    /// A client checks the call's status in the trailers at the end.
    trailers: Option<http::HeaderMap>,
    client: bool,
    ended: bool,
    /// The error the stream failed with: every read after it answers the
    /// same, rather than going on behind a bad message or taking a reset
    /// body's end for a good one.
    failed: Option<Status>,
    message: PhantomData<fn() -> M>,
}

impl<M: Chunked> Incoming<M> {
    fn new(body: Body, client: bool) -> Self {
        Self {
            body,
            chunks: VecDeque::new(),
            buffered: 0,
            data_left: 0,
            trailers: None,
            client,
            ended: false,
            failed: None,
            message: PhantomData,
        }
    }

    /// The next message; `None` once the stream has ended well. Once it
    /// has failed, its error again.
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        if let Some(status) = &self.failed {
            return Err(status.clone());
        }
        let read = self.read().await;
        if let Err(status) = &read {
            self.failed = Some(status.clone());
        }
        read
    }

    async fn read(&mut self) -> Result<Option<M>, Status> {
        loop {
            if self.data_left > 0 {
                if let Some(front) = self.chunks.front_mut() {
                    let piece = front.split_to(front.len().min(self.data_left));
                    if front.is_empty() {
                        self.chunks.pop_front();
                    }
                    self.buffered -= piece.len();
                    self.data_left -= piece.len();
                    return Ok(Some(M::data(piece)));
                }
            } else if self.buffered >= PREFIX {
                let mut prefix = [0u8; PREFIX];
                self.peek(&mut prefix);
                let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
                match prefix[0] {
                    0 => {}
                    1 => return Err(Status::unimplemented("compressed tunnel messages are not supported")),
                    flag => return Err(Status::internal(format!("invalid gRPC compression flag {flag}"))),
                }
                if len > MAX_MESSAGE_BYTES {
                    return Err(Status::out_of_range(format!(
                        "a {len}-byte message is over the {MAX_MESSAGE_BYTES}-byte limit"
                    )));
                }
                let head_len = len.min(DATA_HEAD);
                if self.buffered >= PREFIX + head_len {
                    let mut head = [0u8; PREFIX + DATA_HEAD];
                    self.peek(&mut head[..PREFIX + head_len]);
                    if let Some(skip) = data_head(&head[PREFIX..PREFIX + head_len], len) {
                        self.advance(PREFIX + skip);
                        self.data_left = len - skip;
                        if self.data_left == 0 {
                            return Ok(Some(M::data(Bytes::new())));
                        }
                        continue;
                    }
                    if self.buffered >= PREFIX + len {
                        self.advance(PREFIX);
                        let bytes = self.take(len);
                        return M::decode(bytes)
                            .map(Some)
                            .map_err(|e| Status::internal(format!("a tunnel message could not be decoded: {e}")));
                    }
                }
            }
            if !self.fill().await? {
                return self.finish();
            }
        }
    }

    /// Reads the next data frame; `false` once the body has ended.
    async fn fill(&mut self) -> Result<bool, Status> {
        loop {
            if self.ended {
                return Ok(false);
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => {
                    self.ended = true;
                    return Ok(false);
                }
                Some(Err(status)) => return Err(status),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => {
                        self.buffered += data.len();
                        self.chunks.push_back(data);
                        return Ok(true);
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.trailers = Some(trailers);
                        }
                    }
                },
            }
        }
    }

    fn finish(&mut self) -> Result<Option<M>, Status> {
        if self.buffered > 0 || self.data_left > 0 {
            return Err(Status::internal("the tunnel stream ended inside a message"));
        }
        if !self.client {
            return Ok(None);
        }
        match self.trailers.as_ref().and_then(Status::from_header_map) {
            Some(status) if status.code() == Code::Ok => Ok(None),
            Some(status) => Err(status),
            None => Err(Status::internal("the tunnel stream ended without a status")),
        }
    }

    /// Copies the first `out.len()` buffered bytes (a few, for the heads).
    fn peek(&self, out: &mut [u8]) {
        let mut filled = 0;
        for chunk in &self.chunks {
            let n = chunk.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            if filled == out.len() {
                break;
            }
        }
    }

    fn advance(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else { return };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// The next `n` buffered bytes: a slice of one frame when they lie in
    /// one, a copy when a message spans frames.
    fn take(&mut self, n: usize) -> Bytes {
        if let Some(front) = self.chunks.front_mut()
            && front.len() >= n
        {
            let bytes = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            self.buffered -= n;
            return bytes;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let Some(front) = self.chunks.front_mut() else { break };
            let k = front.len().min(n - out.len());
            out.put_slice(&front[..k]);
            front.advance(k);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        self.buffered -= out.len();
        out.freeze()
    }
}

/// When `head` (a message's first bytes) is a data field taking the whole
/// `len`-byte message: how many bytes the key and its length take.
fn data_head(head: &[u8], len: usize) -> Option<usize> {
    let (&key, mut rest) = head.split_first()?;
    if key != DATA_KEY {
        return None;
    }
    let before = rest.len();
    let n = prost::encoding::decode_varint(&mut rest).ok()?;
    let skip = 1 + before - rest.len();
    (usize::try_from(n).ok()? == len.checked_sub(skip)?).then_some(skip)
}

/// The request's metadata and extensions (for authentication) and its messages.
pub fn server_request<M: Chunked>(request: http::Request<Body>) -> (tonic::Request<()>, Incoming<M>) {
    let (parts, body) = request.into_parts();
    let meta = tonic::Request::from_parts(MetadataMap::from_headers(parts.headers), parts.extensions, ());
    (meta, Incoming::new(body, false))
}

/// A client's reader of a response `body`, for the fuzz target: a real call
/// gets one from [`call`].
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn client_response<M: Chunked>(body: Body) -> Incoming<M> {
    Incoming::new(body, true)
}

/// The answer to a streaming call: `messages`, then an OK status, or the
/// call's error as a trailers-only response.
pub fn server_response<M: Chunked>(
    messages: Result<impl Stream<Item = Result<M, Status>> + Send + 'static, Status>,
) -> http::Response<Body> {
    use tokio_stream::StreamExt;
    match messages {
        Ok(messages) => {
            let messages = messages.map(|m| m.map(Out::Message));
            let mut response = http::Response::new(Body::new(Outgoing::new(messages, true)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            response
        }
        Err(status) => status.into_http(),
    }
}

/// What answers a route's calls.
pub type Handler =
    Arc<dyn Fn(http::Request<Body>) -> Pin<Box<dyn Future<Output = http::Response<Body>> + Send>> + Send + Sync>;

/// A generated gRPC service with one streaming method answered by `handler`
/// instead, through this module's framing; every other method as before.
#[derive(Clone)]
pub struct StreamRoute<S> {
    inner: S,
    path: &'static str,
    handler: Handler,
}

impl<S> StreamRoute<S> {
    /// `path` (`/package.Service/Method`) of `inner` answered by `handler`.
    pub fn new(inner: S, path: &'static str, handler: Handler) -> Self {
        Self { inner, path, handler }
    }
}

impl<S> tower::Service<http::Request<Body>> for StreamRoute<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() == self.path {
            let answer = (self.handler)(request);
            Box::pin(async move { Ok(answer.await) })
        } else {
            Box::pin(self.inner.call(request))
        }
    }
}

impl<S: NamedService> NamedService for StreamRoute<S> {
    const NAME: &'static str = S::NAME;
}

/// Calls the streaming method at `path` (`/package.Service/Method`) on
/// `channel` with `metadata` and `requests`; its answers once it is accepted.
pub async fn call<Req: Chunked, Reply: Chunked>(
    channel: &mut tonic::transport::Channel,
    path: &'static str,
    metadata: MetadataMap,
    requests: impl Stream<Item = Out<Req>> + Send + 'static,
) -> Result<Incoming<Reply>, Status> {
    use tokio_stream::StreamExt;
    use tower::{Service, ServiceExt};
    let body = Body::new(Outgoing::new(requests.map(Ok), false));
    let mut request = http::Request::new(body);
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(path);
    let headers = request.headers_mut();
    headers.extend(metadata.into_headers());
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    let unavailable = |e: tonic::transport::Error| {
        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| format!("{e}: {s}"));
        Status::unavailable(why)
    };
    let ready = channel.ready().await.map_err(unavailable)?;
    let response = ready.call(request).await.map_err(unavailable)?;
    if response.status() != http::StatusCode::OK {
        return Err(Status::unknown(format!(
            "the collector answered HTTP {}",
            response.status()
        )));
    }
    // A call answered at once (trailers-only) has its status in the headers.
    let status = Status::from_header_map(response.headers());
    if let Some(status) = &status
        && status.code() != Code::Ok
    {
        return Err(status.clone());
    }
    let (parts, body) = response.into_parts();
    let mut incoming = Incoming::new(body, true);
    if status.is_some() {
        incoming.trailers = Some(parts.headers);
    }
    Ok(incoming)
}

#[cfg(test)]
mod tests;
