//! A connection to the collector's API, pinned to its CA.
use std::sync::Arc;

use anyhow::{Context, Result};
use outpost_certs::Fingerprint;
use outpost_proto::dial::{CollectorAddr, chain, channel};
use tonic::Request;
use tonic::transport::Channel;

/// A channel and the bearer token to send on it.
pub(crate) struct Api {
    pub(crate) channel: Channel,
    token: String,
}

/// Connects to `collector`, which must present the CA `ca_fingerprint` names
/// and a certificate from it for the dialled name.
pub(crate) async fn connect(collector: &str, ca_fingerprint: &str) -> Result<Channel> {
    let addr: CollectorAddr = collector.parse().map_err(anyhow::Error::msg)?;
    let fingerprint: Fingerprint = ca_fingerprint
        .parse()
        .with_context(|| format!("CA fingerprint {ca_fingerprint:?}"))?;
    let tls = outpost_certs::tls::enrollment_client_config(fingerprint).context("TLS configuration")?;
    channel(&addr, Arc::new(tls))
        .await
        .map_err(|e| anyhow::anyhow!("{}", chain(&e)))
}

impl Api {
    /// The API with a token.
    pub(crate) fn new(channel: Channel, token: String) -> Self {
        Self { channel, token }
    }

    /// `message` with the bearer token in its metadata.
    pub(crate) fn request<T>(&self, message: T) -> Result<Request<T>> {
        Self::new_request(&self.token, message)
    }

    /// `message` with `token` in its metadata.
    pub(crate) fn new_request<T>(token: &str, message: T) -> Result<Request<T>> {
        let mut req = Request::new(message);
        let value = format!("Bearer {token}")
            .parse()
            .context("the token holds characters that cannot be sent; check it")?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }
}

/// A gRPC error as a message for people.
pub(crate) fn status(what: &str, s: tonic::Status) -> anyhow::Error {
    let hint = match s.code() {
        tonic::Code::Unauthenticated => " (log in again: `outpost login`)",
        tonic::Code::Unavailable if s.message().contains("transport") || s.message().is_empty() => {
            " (is the collector running and reachable?)"
        }
        _ => "",
    };
    anyhow::anyhow!(
        "{what}: {}{hint}",
        if s.message().is_empty() {
            s.code().description()
        } else {
            s.message()
        }
    )
}
