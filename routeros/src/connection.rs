//! Whole sentences over a byte stream (TCP or TLS), either side of the wire.
//!
//! Reads are buffered; the buffer never holds more than one sentence's worth of
//! bytes beyond what the frame limits allow ([`frame::MAX_WORD`] per word), so a
//! peer cannot make us buffer without bound. An incomplete sentence is a normal
//! state: we read more. End of stream between sentences is a clean close; in the
//! middle of one it is an error.
//!
//! An agent keeps thousands of sessions that are idle most of the time, so a
//! drained buffer is freed, and a new one is taken only once the stream has
//! something to read: an idle session holds no read buffer.

use std::pin::Pin;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::frame::{self, FrameError};

/// Read buffer taken when bytes arrive: most replies are a few hundred bytes.
const INITIAL_CAPACITY: usize = 1024;

/// Most bytes one sentence may take on the wire.
pub const MAX_SENTENCE_BYTES: usize = 32 * 1024 * 1024;

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer sent bytes that are not RouterOS API framing.
    #[error("malformed RouterOS API framing: {0}")]
    Frame(#[from] FrameError),
    /// A sentence larger than [`MAX_SENTENCE_BYTES`].
    #[error("sentence exceeds {MAX_SENTENCE_BYTES} bytes")]
    SentenceTooLarge,
    /// The peer closed the stream in the middle of a sentence.
    #[error("connection closed in the middle of a sentence ({0} bytes buffered)")]
    Truncated(usize),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A byte stream that reads and writes sentences.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    buf: BytesMut,
}

impl<S> Connection<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Takes the stream and the bytes read but not yet decoded, e.g. to split
    /// the stream into read and write halves without losing what the peer
    /// already sent.
    pub fn into_parts(self) -> (S, BytesMut) {
        (self.stream, self.buf)
    }

    /// Wraps a stream with bytes already read from it (see [`Self::into_parts`]).
    pub fn from_parts(stream: S, buf: BytesMut) -> Self {
        Self { stream, buf }
    }

    /// The underlying stream, e.g. to shut it down.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Splits off the stream, dropping any buffered bytes.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: AsyncRead + Unpin> Connection<S> {
    /// The next sentence, or `None` when the peer closed cleanly between
    /// sentences. An empty sentence (a lone empty word) comes back as an empty
    /// list; callers decide whether that means anything.
    pub async fn read_sentence(&mut self) -> Result<Option<Vec<Vec<u8>>>, ConnectionError> {
        loop {
            if let Some((words, used)) = frame::decode_sentence(&self.buf)? {
                self.buf.advance(used);
                if self.buf.is_empty() {
                    self.buf = BytesMut::new();
                }
                return Ok(Some(words));
            }
            if self.buf.len() >= MAX_SENTENCE_BYTES {
                return Err(ConnectionError::SentenceTooLarge);
            }
            if self.buf.is_empty() {
                self.readable().await?;
                self.buf.reserve(INITIAL_CAPACITY);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnectionError::Truncated(self.buf.len()))
                };
            }
        }
    }
}

impl<S: AsyncRead + Unpin> Connection<S> {
    /// Waits, without a buffer, until the stream may have bytes (or its end)
    /// to read. A read into an empty buffer waits for readiness on a socket;
    /// a stream that answers it at once just costs the buffer while it waits.
    async fn readable(&mut self) -> std::io::Result<()> {
        std::future::poll_fn(|cx| {
            let mut none = ReadBuf::new(&mut []);
            Pin::new(&mut self.stream).poll_read(cx, &mut none)
        })
        .await
    }
}

impl<S: AsyncWrite + Unpin> Connection<S> {
    /// Writes one sentence and flushes it.
    pub async fn write_sentence<W: AsRef<[u8]>>(&mut self, words: &[W]) -> Result<(), ConnectionError> {
        self.stream.write_all(&frame::encode_sentence(words)).await?;
        self.stream.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sentences_cross_a_duplex_pipe_in_small_pieces() {
        let (a, mut b) = tokio::io::duplex(3);
        let mut conn = Connection::new(a);
        let writer = tokio::spawn(async move {
            let mut bytes = frame::encode_sentence(&["!re", "=name=ether1", ".tag=1"]);
            bytes.extend(frame::encode_sentence(&["!done", ".tag=1"]));
            b.write_all(&bytes).await.expect("write");
        });
        let first = conn.read_sentence().await.expect("read").expect("first");
        assert_eq!(first[1], b"=name=ether1");
        let second = conn.read_sentence().await.expect("read").expect("second");
        assert_eq!(second[0], b"!done");
        writer.await.expect("writer");
        assert!(conn.read_sentence().await.expect("clean close").is_none());
    }

    /// Over TCP, the socket the agent's sessions use (an in-memory pipe
    /// answers a read into an empty buffer at once, so it would hold one).
    #[tokio::test]
    async fn an_idle_connection_holds_no_read_buffer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (a, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let mut b = accepted.expect("accept").0;
        let mut conn = Connection::new(a.expect("connect"));
        b.write_all(&frame::encode_sentence(&["!done", ".tag=1"]))
            .await
            .expect("write");
        let first = conn.read_sentence().await.expect("read").expect("a sentence");
        assert_eq!(first[0], b"!done");
        assert_eq!(conn.buf.capacity(), 0, "a drained buffer is freed");
        // Waiting for the next sentence takes no buffer either.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), conn.read_sentence()).await;
        assert!(waited.is_err(), "nothing was sent");
        assert_eq!(conn.buf.capacity(), 0, "no buffer while waiting");
        // A sentence in pieces still arrives whole.
        let bytes = frame::encode_sentence(&["!re", "=name=ether1", ".tag=2"]);
        let (head, tail) = bytes.split_at(5);
        b.write_all(head).await.expect("write");
        let reading = tokio::spawn(async move {
            let words = conn.read_sentence().await.expect("read").expect("a sentence");
            (words, conn)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        b.write_all(tail).await.expect("write");
        let (words, conn) = reading.await.expect("reader");
        assert_eq!(words[1], b"=name=ether1");
        assert_eq!(conn.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn a_close_in_the_middle_of_a_sentence_is_an_error() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut conn = Connection::new(a);
        b.write_all(&[3, b'!', b'r']).await.expect("write");
        drop(b);
        assert!(matches!(conn.read_sentence().await, Err(ConnectionError::Truncated(3))));
    }

    #[tokio::test]
    async fn control_bytes_are_refused() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut conn = Connection::new(a);
        b.write_all(&[0xF8, 0, 0]).await.expect("write");
        assert!(matches!(
            conn.read_sentence().await,
            Err(ConnectionError::Frame(FrameError::ControlByte(0xF8)))
        ));
    }
}
