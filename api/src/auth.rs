//! Who is calling: the bearer credential in a call's metadata, checked
//! against the store, as a [`Principal`].
use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use outpost_store::api_tokens::{PREFIX, TokenCheckError, VerifiedApiToken};
use outpost_store::audit::Actor;
use outpost_store::members::Principal;
use tonic::{Request, Status};

use crate::ApiState;
use crate::status::internal;

/// The credential a call was made with.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// A session token from a sign-in (the command line's).
    Session(String),
    /// An API token.
    Token(VerifiedApiToken),
}

/// A checked caller.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    pub(crate) credential: Credential,
    /// The client's address, as the console port determined it (trusted
    /// proxies' `X-Forwarded-For` included).
    pub(crate) source: Option<IpAddr>,
}

impl Caller {
    /// Who the audit log says acted.
    pub(crate) fn actor(&self) -> Actor {
        Actor::user(self.principal.username(), self.source)
    }
}

/// The client address the listener recorded on the request.
pub(crate) fn source<T>(request: &Request<T>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| request.remote_addr().map(|a| a.ip()))
}

/// The bearer token of a call, if it has one of the right form.
pub(crate) fn bearer<T>(request: &Request<T>) -> Result<&str, Status> {
    let value = request
        .metadata()
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("no credentials: send `authorization: Bearer <token>`"))?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization metadata is not text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Status::unauthenticated("the authorization metadata must read `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Status::unauthenticated(
            "the authorization metadata must read `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// Checks the call's credential. Every refusal is the same
/// UNAUTHENTICATED to the caller; the log says which.
pub(crate) async fn caller<T>(state: &ApiState, request: &Request<T>) -> Result<Caller, Status> {
    let token = bearer(request)?;
    if token.starts_with(PREFIX) {
        return match state.store.api_token_principal(token).await {
            Ok((principal, verified)) => Ok(Caller {
                principal,
                credential: Credential::Token(verified),
                source: source(request),
            }),
            Err(TokenCheckError::Refused(why)) => {
                tracing::info!(peer = ?request.remote_addr(), "API: token refused: {why}");
                Err(Status::unauthenticated("invalid credentials"))
            }
            Err(TokenCheckError::Store(e)) => Err(internal("checking an API token", &e)),
        };
    }
    match state.store.session(token).await {
        Ok(Some(session)) => Ok(Caller {
            principal: session.principal,
            credential: Credential::Session(token.to_owned()),
            source: source(request),
        }),
        Ok(None) => {
            tracing::info!(peer = ?request.remote_addr(), "API: unknown or expired session token");
            Err(Status::unauthenticated("invalid credentials"))
        }
        Err(e) => Err(internal("checking a session", &e)),
    }
}
