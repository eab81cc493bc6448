//! What the fuzz target and the seed generator share: how an input's first
//! bytes say how its stream is read.
//!
//! An input is a 3-byte header followed by the stream's bytes (gRPC messages
//! as they arrive in a tunnel's HTTP/2 data frames):
//!
//! - byte 0: bits 0-1 the message type ([`Kind`], 3 reads as 0), bits 2-3 how
//!   the body ends ([`End`]), bit 4 whether a client reads it (which checks the
//!   trailers) rather than a server, bit 5 whether the body answers "not yet"
//!   before each frame (and the reader's pending call is dropped then);
//! - bytes 1 and 2: four nibbles, each a frame length from [`CUTS`]; the
//!   stream is cut into frames of these lengths in turn.

/// The message types read from tunnel streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `outpost.agent.v1.TunnelFrame`, both ways between agent and collector.
    Frame,
    /// `outpost.api.v1.TunnelRequest`, from an API client.
    Request,
    /// `outpost.api.v1.TunnelReply`, to an API client.
    Reply,
}

/// How the body ends after its data frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Trailers with `grpc-status: 0`.
    OkTrailers,
    /// Trailers with [`ERROR_CODE`] and [`ERROR_MESSAGE`].
    ErrorTrailers,
    /// No trailers: the body simply ends.
    Plain,
    /// The body fails (a reset stream) with [`ERROR_CODE`] and [`BODY_ERROR`].
    BodyError,
}

/// The code of the error trailers and of a failing body.
pub const ERROR_CODE: tonic::Code = tonic::Code::Aborted;
/// The message of the error trailers.
pub const ERROR_MESSAGE: &str = "tunnel closed: idle for 300 s";
/// The message of a failing body.
pub const BODY_ERROR: &str = "the stream was reset";

/// Frame lengths a nibble of the header picks: single bytes, pieces of a
/// gRPC prefix or a data head, and frames larger than any seed.
pub const CUTS: [usize; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 16, 64, 300, 4096, 65_536, usize::MAX];

/// How an input's stream is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub kind: Kind,
    pub end: End,
    pub client: bool,
    pub pending: bool,
    /// Frame lengths, used in turn.
    pub cuts: [usize; 4],
}

/// The plan and the stream of `input`; `None` when it is shorter than its
/// header.
pub fn split(input: &[u8]) -> Option<(Plan, &[u8])> {
    let ([flags, a, b], stream) = input.split_first_chunk::<3>().map(|(h, s)| (*h, s))?;
    let kind = match flags & 3 {
        1 => Kind::Request,
        2 => Kind::Reply,
        _ => Kind::Frame,
    };
    let end = match (flags >> 2) & 3 {
        0 => End::OkTrailers,
        1 => End::ErrorTrailers,
        2 => End::Plain,
        _ => End::BodyError,
    };
    let cut = |nibble: u8| CUTS[usize::from(nibble & 15)];
    let plan = Plan {
        kind,
        end,
        client: flags & 16 != 0,
        pending: flags & 32 != 0,
        cuts: [cut(a), cut(a >> 4), cut(b), cut(b >> 4)],
    };
    Some((plan, stream))
}

/// The input reading `stream` as `plan` says (the inverse of [`split`]);
/// frame lengths not in [`CUTS`] are an error.
pub fn join(plan: &Plan, stream: &[u8]) -> Result<Vec<u8>, String> {
    let kind = match plan.kind {
        Kind::Frame => 0,
        Kind::Request => 1,
        Kind::Reply => 2,
    };
    let end = match plan.end {
        End::OkTrailers => 0,
        End::ErrorTrailers => 1,
        End::Plain => 2,
        End::BodyError => 3,
    };
    let flags = kind | end << 2 | u8::from(plan.client) << 4 | u8::from(plan.pending) << 5;
    let mut nibbles = [0u8; 4];
    for (nibble, cut) in nibbles.iter_mut().zip(plan.cuts) {
        let index = CUTS
            .iter()
            .position(|&c| c == cut)
            .ok_or_else(|| format!("{cut} is not a frame length of CUTS"))?;
        *nibble = u8::try_from(index).map_err(|e| e.to_string())?;
    }
    let mut input = vec![flags, nibbles[0] | nibbles[1] << 4, nibbles[2] | nibbles[3] << 4];
    input.extend_from_slice(stream);
    Ok(input)
}
