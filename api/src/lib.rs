//! The public API, `outpost.api.v1` (`proto/outpost/api/v1/api.proto`): what
//! programs and the `outpost` command line use.
//!
//! Every call first turns the `authorization: Bearer …` metadata into a
//! [`Principal`](outpost_store::members::Principal) ([`auth`]): an API token
//! (its creator, cut down to the token's tenant and scope) or a session token
//! from a sign-in. From there the checks are the console's: the store's
//! `Principal::authorize` gives a tenant scope only to a member with a high
//! enough role, another tenant's objects are NOT_FOUND and a too-low role is
//! PERMISSION_DENIED ([`status`]).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

mod agents;
mod audit;
mod auth;
mod convert;
mod devices;
mod events;
mod inventory;
mod session;
mod status;
mod tenants;
mod tokens;
mod tunnels;

use std::sync::Arc;

use outpost_certs::Fingerprint;
use outpost_console::agent_control::AgentControl;
use outpost_console::sign_in::SignIn;
use outpost_proto::api_v1::agent_service_server::AgentServiceServer;
use outpost_proto::api_v1::api_token_service_server::ApiTokenServiceServer;
use outpost_proto::api_v1::audit_service_server::AuditServiceServer;
use outpost_proto::api_v1::device_service_server::DeviceServiceServer;
use outpost_proto::api_v1::event_service_server::EventServiceServer;
use outpost_proto::api_v1::inventory_service_server::InventoryServiceServer;
use outpost_proto::api_v1::session_service_server::SessionServiceServer;
use outpost_proto::api_v1::tenant_service_server::TenantServiceServer;
use outpost_store::Store;
use outpost_vault::Vault;
use tonic::service::Routes;

/// What the API's services share.
#[derive(Clone, Debug)]
pub struct ApiState {
    store: Store,
    ca_fingerprint: Fingerprint,
    vault: Arc<Vault>,
    sign_in: SignIn,
    /// The collector's agents, for tunnels; none in a bare API.
    control: Option<Arc<dyn AgentControl>>,
}

impl ApiState {
    /// The API over `store`; `ca_fingerprint` goes into the enrollment tokens
    /// it makes, `vault` opens configuration backups, `sign_in` is the
    /// console's (its limits are shared).
    pub fn new(store: Store, ca_fingerprint: Fingerprint, vault: Arc<Vault>, sign_in: SignIn) -> Self {
        Self {
            store,
            ca_fingerprint,
            vault,
            sign_in,
            control: None,
        }
    }

    /// Tunnels go through `control` (the collector's agents).
    pub fn with_control(mut self, control: Arc<dyn AgentControl>) -> Self {
        self.control = Some(control);
        self
    }
}

/// Every service of the API, ready to be served (next to the console, see
/// `Routes::into_axum_router`).
pub fn routes(state: ApiState) -> Routes {
    let limit = outpost_proto::MAX_MESSAGE_BYTES;
    Routes::new(SessionServiceServer::new(session::Sessions(state.clone())).max_decoding_message_size(limit))
        .add_service(TenantServiceServer::new(tenants::Tenants(state.clone())).max_decoding_message_size(limit))
        .add_service(AgentServiceServer::new(agents::Agents(state.clone())).max_decoding_message_size(limit))
        .add_service(ApiTokenServiceServer::new(tokens::Tokens(state.clone())).max_decoding_message_size(limit))
        .add_service(DeviceServiceServer::new(devices::Devices(state.clone())).max_decoding_message_size(limit))
        .add_service(InventoryServiceServer::new(inventory::Inventory(state.clone())).max_decoding_message_size(limit))
        .add_service(AuditServiceServer::new(audit::Audit(state.clone())).max_decoding_message_size(limit))
        .add_service(tunnels::route(state.clone()))
        .add_service(EventServiceServer::new(events::Events {
            state,
            streams: std::sync::Arc::new(tokio::sync::Semaphore::new(events::MAX_STREAMS)),
        }))
}
