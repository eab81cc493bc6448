//! Logging in, before the session starts multiplexing.
//!
//! Since RouterOS 6.43: `/login =name=U =password=P` and `!done`. Routers
//! older than 6.45.1 may instead answer `!done =ret=<hex challenge>`; then we
//! send `/login =name=U =response=00<hex md5(0x00 ‖ password ‖ challenge)>`.
//! Login runs untagged on the bare connection: nothing else is in flight yet.

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::connection::Connection;
use crate::error::Error;
use crate::sentence::{Reply, Tagged};

/// How the router accepted the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// Post-6.43 plaintext login (inside TLS on API-SSL).
    Plain,
    /// Pre-6.45.1 MD5 challenge-response.
    LegacyChallenge,
}

/// Logs in on a fresh connection.
pub(crate) async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    user: &str,
    password: &str,
) -> Result<LoginKind, Error> {
    let name = format!("=name={user}");
    conn.write_sentence(&["/login", &name, &format!("=password={password}")])
        .await
        .map_err(Error::protocol)?;
    let done = finish(conn).await?;
    let Some(challenge) = done.get("ret") else {
        return Ok(LoginKind::Plain);
    };
    let challenge =
        hex::decode(challenge).map_err(|_| Error::LoginFailed(format!("malformed login challenge {challenge:?}")))?;
    let response = format!("=response={}", challenge_response(password, &challenge));
    conn.write_sentence(&["/login", &name, &response])
        .await
        .map_err(Error::protocol)?;
    finish(conn).await?;
    Ok(LoginKind::LegacyChallenge)
}

/// `00` followed by the hex MD5 of a zero byte, the password and the challenge.
pub(crate) fn challenge_response(password: &str, challenge: &[u8]) -> String {
    let mut md5 = Md5::new();
    md5.update([0u8]);
    md5.update(password.as_bytes());
    md5.update(challenge);
    format!("00{}", hex::encode(md5.finalize()))
}

/// Reads replies up to `!done`, turning a `!trap` or `!fatal` into the login
/// error it means.
async fn finish<S: AsyncRead + Unpin>(conn: &mut Connection<S>) -> Result<crate::Attrs, Error> {
    let mut refused = None;
    loop {
        let words = conn
            .read_sentence()
            .await
            .map_err(Error::protocol)?
            .ok_or_else(|| refused.clone().unwrap_or(Error::Closed))?;
        let Some(reply) = Tagged::parse(&words) else { continue };
        match reply.reply {
            Reply::Done(attrs) => return refused.map_or(Ok(attrs), Err),
            Reply::Trap { message, .. } => refused = Some(refusal(message)),
            Reply::Fatal(reason) => return Err(refusal(reason)),
            other => tracing::debug!(reply = ?other, "ignoring an unexpected reply during login"),
        }
    }
}

fn refusal(message: String) -> Error {
    if message.contains("not allowed") || message.contains("policy") {
        Error::NoApiPolicy
    } else {
        Error::LoginFailed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_response_matches_a_known_md5() {
        // md5(0x00 ‖ "" ‖ "") is md5 of one zero byte.
        assert_eq!(challenge_response("", b""), "0093b885adfe0da089cdf634904fd59f71");
    }
}
