//! `TunnelService`: a TCP connection to a device port, through its agent.
//!
//! The first request names the device and port; the caller needs the
//! operator role in the device's tenant (a viewer is PERMISSION_DENIED,
//! another tenant's device NOT_FOUND; both audited as `tunnel.refused`).
//! The collector's tunnel hub checks its
//! policy and limits, opens the tunnel and audits it; this service only
//! moves frames between the call and the hub's pipe, `fin` for `fin`.
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use outpost_console::agent_control::{FromDevice, RefusedAccess, ToDevice, TunnelAsk, TunnelRefused};
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::tunnel_service_server::{TunnelService, TunnelServiceServer};
use outpost_proto::tunnel_wire::{self, Handler, StreamRoute};
use outpost_store::StoreError;
use outpost_store::devices::DeviceId;
use outpost_store::members::{Denied, Role};
use tonic::{Request, Response, Status, Streaming};

use crate::ApiState;
use crate::auth::caller;
use crate::status::{denied, required_id, store};

/// How long the first request (the target) may take to arrive.
const TARGET_WITHIN: Duration = Duration::from_secs(10);

/// The generated service's side (see [`route`]).
pub(crate) struct Tunnels;

type ReplyStream = Pin<Box<dyn Stream<Item = Result<pb::TunnelReply, Status>> + Send + 'static>>;

fn reply(kind: pb::tunnel_reply::Kind) -> Result<pb::TunnelReply, Status> {
    Ok(pb::TunnelReply { kind: Some(kind) })
}

#[tonic::async_trait]
impl TunnelService for Tunnels {
    type OpenStream = ReplyStream;

    /// Never reached: [`route`] answers this method's path in front of the
    /// generated service.
    async fn open(&self, _: Request<Streaming<pb::TunnelRequest>>) -> Result<Response<Self::OpenStream>, Status> {
        Err(Status::internal("tunnel calls are answered by the tunnel route"))
    }
}

/// The path of `TunnelService.Open`.
const OPEN_PATH: &str = "/outpost.api.v1.TunnelService/Open";

/// `TunnelService` with its streams read and written without copying their
/// bytes ([`outpost_proto::tunnel_wire`]).
pub(crate) fn route(state: ApiState) -> StreamRoute<TunnelServiceServer<Tunnels>> {
    let generated = TunnelServiceServer::new(Tunnels);
    let handler: Handler = std::sync::Arc::new(move |request| {
        let state = state.clone();
        Box::pin(async move { tunnel_wire::server_response(open(&state, request).await) })
    });
    StreamRoute::new(generated, OPEN_PATH, handler)
}

async fn open(state: &ApiState, request: http::Request<tonic::body::Body>) -> Result<ReplyStream, Status> {
    let (request, mut requests) = tunnel_wire::server_request::<pb::TunnelRequest>(request);
    let who = caller(state, &request).await?;
    let target = match tokio::time::timeout(TARGET_WITHIN, requests.message()).await {
        Ok(Ok(Some(pb::TunnelRequest {
            kind: Some(pb::tunnel_request::Kind::Target(t)),
        }))) => t,
        Ok(Err(status)) => return Err(status),
        Ok(Ok(_)) => return Err(Status::invalid_argument("the first request must name the target")),
        Err(_) => return Err(Status::deadline_exceeded("no target within 10 s")),
    };
    let device: DeviceId = required_id("device_id", &target.device_id)?;
    let port = u16::try_from(target.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Status::invalid_argument(format!("port {} is not a TCP port", target.port)))?;
    // The device's tenant travels with a refusal only when the caller
    // could see the device (see `RefusedAccess`).
    let authorized = match state.store.device(&who.principal.viewer(), device).await {
        Ok(row) => who
            .principal
            .authorize(row.tenant, Role::Operator)
            .map_err(|d| (matches!(d, Denied::Forbidden).then_some(row.tenant), d)),
        Err(StoreError::NotFound(_)) => Err((None, Denied::NotFound)),
        Err(e) => return Err(store(e)),
    };
    let scope = match authorized {
        Ok(scope) => scope,
        Err((tenant, d)) => {
            let status = denied(d, "device");
            RefusedAccess {
                user: who.principal.username(),
                source: who.source,
                tenant,
                device,
                port: Some(port),
                via: "cli",
                reason: status.message(),
            }
            .audit(&state.store)
            .await;
            return Err(status);
        }
    };
    let control = state
        .control
        .as_ref()
        .ok_or_else(|| Status::unavailable("tunnels are not available on this collector"))?;
    let ask = TunnelAsk {
        scope,
        device,
        port,
        user: who.principal.username().to_owned(),
        source: who.source,
        via: "cli",
    };
    let pipe = control.open_tunnel(ask).await.map_err(|r| match r {
        TunnelRefused::NotFound(m) => Status::not_found(m),
        TunnelRefused::Denied(m) => Status::permission_denied(m),
        TunnelRefused::Limit(m) => Status::resource_exhausted(m),
        TunnelRefused::Unavailable(m) => Status::unavailable(m),
    })?;
    let opened = reply(pb::tunnel_reply::Kind::Opened(pb::TunnelOpened {
        tunnel_id: pipe.id.clone(),
        target: pipe.target.clone(),
    }));
    let to_device = pipe.to_device;
    let from_device = pipe.from_device;
    // Caller → device.
    tokio::spawn(async move {
        loop {
            let next = match requests.message().await {
                Ok(Some(pb::TunnelRequest {
                    kind: Some(pb::tunnel_request::Kind::Data(b)),
                })) => ToDevice::Data(b),
                Ok(Some(pb::TunnelRequest {
                    kind: Some(pb::tunnel_request::Kind::Fin(_)),
                })) => ToDevice::Fin,
                Ok(Some(_)) => continue,
                // The caller half-closed its stream: that is its FIN too.
                Ok(None) => ToDevice::Fin,
                // Gone: dropping the sender ends the tunnel.
                Err(_) => return,
            };
            let fin = next == ToDevice::Fin;
            if to_device.send(next).await.is_err() || fin {
                // Keep the pipe open (not dropped) until the device side ends.
                if fin {
                    to_device.closed().await;
                }
                return;
            }
        }
    });
    // Device → caller: the reply stream reads the pipe itself, with no
    // task in between, so each chunk costs one hand-over fewer.
    let replies = futures::stream::unfold(Some(from_device), |from_device| async move {
        let mut from_device = from_device?;
        let next = match from_device.recv().await? {
            FromDevice::Data(b) => reply(pb::tunnel_reply::Kind::Data(b)),
            FromDevice::Fin => reply(pb::tunnel_reply::Kind::Fin(pb::TunnelFin {})),
            FromDevice::Closed(why) => {
                return Some((Err(Status::aborted(format!("tunnel closed: {why}"))), None));
            }
        };
        Some((next, Some(from_device)))
    });
    let stream = futures::stream::once(std::future::ready(opened)).chain(replies);
    Ok(Box::pin(stream))
}
