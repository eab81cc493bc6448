//! `EventService`: live events of the caller's tenants.
//!
//! Each stream follows the store: every [`POLL`] it reads the caller's agents
//! and devices and the host changes after its cursor, and sends what differs
//! from the previous read. Before each read the credential is checked again,
//! so a revoked token or an ended session ends the stream (UNAUTHENTICATED)
//! within one interval. Streams are bounded per collector ([`MAX_STREAMS`]);
//! a stream whose client stops reading is dropped, never buffered without end.
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::event_service_server::EventService;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::ApiState;
use crate::auth::{Caller, Credential, caller};
use crate::convert;

/// How often a stream reads the store.
const POLL: Duration = Duration::from_secs(2);
/// Streams open at once per collector.
pub(crate) const MAX_STREAMS: usize = 256;
/// Events queued for a slow client before the stream is ended.
const QUEUE: usize = 1_024;
/// Host changes read per poll.
const HOST_CHANGES_PER_POLL: u32 = 1_000;

pub(crate) struct Events {
    pub(crate) state: ApiState,
    pub(crate) streams: Arc<Semaphore>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Kinds {
    agent: bool,
    device: bool,
    host: bool,
}

fn kinds(asked: &[String]) -> Result<Kinds, Status> {
    if asked.is_empty() {
        return Ok(Kinds {
            agent: true,
            device: true,
            host: true,
        });
    }
    let mut k = Kinds::default();
    for kind in asked {
        match kind.as_str() {
            "agent" => k.agent = true,
            "device" => k.device = true,
            "host" => k.host = true,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown event kind {other:?}: use agent, device or host"
                )));
            }
        }
    }
    Ok(k)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for Events {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let who = caller(&self.state, &request).await?;
        let kinds = kinds(&request.get_ref().kinds)?;
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted("too many event streams are open on this collector; try again later")
        })?;
        let cursor = self
            .state
            .store
            .host_change_cursor()
            .await
            .map_err(crate::status::store)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = self.state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            follow(state, who, kinds, cursor, tx).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Is the stream's credential still good? Re-checked with the store, as the
/// first call was.
async fn still_valid(state: &ApiState, who: &Caller) -> Result<Caller, Status> {
    let principal = match &who.credential {
        Credential::Session(token) => state
            .store
            .session(token)
            .await
            .map_err(crate::status::store)?
            .map(|s| s.principal),
        Credential::Token(t) => state
            .store
            .api_token_principal_by_id(&t.id)
            .await
            .map_err(crate::status::store)?
            .map(|(p, _)| p),
    };
    match principal {
        Some(principal) => Ok(Caller {
            principal,
            credential: who.credential.clone(),
            source: who.source,
        }),
        None => Err(Status::unauthenticated("the credential is no longer valid")),
    }
}

fn now_ms() -> i64 {
    outpost_store::now_ms()
}

async fn follow(
    state: ApiState,
    mut who: Caller,
    kinds: Kinds,
    mut cursor: i64,
    tx: mpsc::Sender<Result<pb::Event, Status>>,
) {
    let mut agents: Option<HashMap<String, pb::Agent>> = None;
    let mut devices: Option<HashMap<String, pb::Device>> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = tick.tick() => {}
        }
        who = match still_valid(&state, &who).await {
            Ok(w) => w,
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        };
        let viewer = who.principal.viewer();
        let mut out = Vec::new();
        if kinds.agent {
            match state.store.list_agents(&viewer).await {
                Ok(rows) => {
                    let now: HashMap<String, pb::Agent> = rows
                        .into_iter()
                        .map(convert::agent)
                        .map(|a| (a.id.clone(), a))
                        .collect();
                    if let Some(before) = &agents {
                        out.extend(agent_events(before, &now));
                    }
                    agents = Some(now);
                }
                Err(e) => tracing::warn!(error = %e, "API events: reading agents failed"),
            }
        }
        if kinds.device {
            match state.store.list_devices(&viewer).await {
                Ok(rows) => {
                    let now: HashMap<String, pb::Device> = rows
                        .into_iter()
                        .map(convert::device)
                        .map(|d| (d.id.clone(), d))
                        .collect();
                    if let Some(before) = &devices {
                        out.extend(device_events(before, &now));
                    }
                    devices = Some(now);
                }
                Err(e) => tracing::warn!(error = %e, "API events: reading devices failed"),
            }
        }
        if kinds.host {
            match state
                .store
                .host_changes_after(&viewer, cursor, HOST_CHANGES_PER_POLL)
                .await
            {
                Ok(changes) => {
                    for c in changes {
                        cursor = cursor.max(c.id);
                        out.push(pb::event::Event::Host(convert::host_change(c)));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "API events: reading host changes failed"),
            }
        }
        for event in out {
            let event = pb::Event {
                at_ms: now_ms(),
                event: Some(event),
            };
            // A client that does not keep up loses its stream, not the collector its memory.
            if tx.try_send(Ok(event)).is_err() {
                tracing::info!(
                    user = who.principal.username(),
                    "API events: client too slow or gone; stream ended"
                );
                return;
            }
        }
    }
}

fn agent_events(before: &HashMap<String, pb::Agent>, now: &HashMap<String, pb::Agent>) -> Vec<pb::event::Event> {
    let mut out = Vec::new();
    for (id, a) in now {
        let change = match before.get(id) {
            None => Some("enrolled"),
            Some(b) if !b.revoked && a.revoked => Some("revoked"),
            Some(b) if !b.online && a.online => Some("online"),
            Some(b) if b.online && !a.online => Some("offline"),
            Some(_) => None,
        };
        if let Some(change) = change {
            out.push(pb::event::Event::Agent(pb::AgentEvent {
                agent: Some(a.clone()),
                change: change.to_owned(),
            }));
        }
    }
    out
}

fn device_events(before: &HashMap<String, pb::Device>, now: &HashMap<String, pb::Device>) -> Vec<pb::event::Event> {
    let mut out = Vec::new();
    for (id, d) in now {
        let change = match before.get(id) {
            None => Some("added"),
            Some(b) if b.state != d.state => Some("state"),
            Some(_) => None,
        };
        if let Some(change) = change {
            out.push(pb::event::Event::Device(pb::DeviceEvent {
                device: Some(d.clone()),
                change: change.to_owned(),
            }));
        }
    }
    for (id, b) in before {
        if !now.contains_key(id) {
            out.push(pb::event::Event::Device(pb::DeviceEvent {
                device: Some(b.clone()),
                change: "removed".to_owned(),
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, online: bool, revoked: bool) -> (String, pb::Agent) {
        (
            id.to_owned(),
            pb::Agent {
                id: id.to_owned(),
                online,
                revoked,
                ..Default::default()
            },
        )
    }

    fn changes(events: Vec<pb::event::Event>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = events
            .into_iter()
            .map(|e| match e {
                pb::event::Event::Agent(a) => (a.agent.map(|a| a.id).unwrap_or_default(), a.change),
                pb::event::Event::Device(d) => (d.device.map(|d| d.id).unwrap_or_default(), d.change),
                pb::event::Event::Host(h) => (h.host_id, h.kind),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn agent_changes_are_named() {
        let before: HashMap<_, _> = [
            agent("a", false, false),
            agent("b", true, false),
            agent("c", true, false),
        ]
        .into();
        let now: HashMap<_, _> = [
            agent("a", true, false),
            agent("b", false, false),
            agent("c", false, true),
            agent("d", false, false),
        ]
        .into();
        assert_eq!(
            changes(agent_events(&before, &now)),
            [("a", "online"), ("b", "offline"), ("c", "revoked"), ("d", "enrolled")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .to_vec()
        );
        assert!(agent_events(&now, &now).is_empty());
    }

    #[test]
    fn device_changes_are_named() {
        let dev = |id: &str, state: &str| {
            (
                id.to_owned(),
                pb::Device {
                    id: id.to_owned(),
                    state: state.to_owned(),
                    ..Default::default()
                },
            )
        };
        let before: HashMap<_, _> = [dev("x", "pending"), dev("y", "up")].into();
        let now: HashMap<_, _> = [dev("x", "up"), dev("z", "pending")].into();
        assert_eq!(
            changes(device_events(&before, &now)),
            [("x", "state"), ("y", "removed"), ("z", "added")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .to_vec()
        );
    }

    #[test]
    fn unknown_kinds_are_refused() {
        assert!(kinds(&["agent".into(), "weather".into()]).is_err());
        let k = kinds(&["host".into()]).expect("host");
        assert!(k.host && !k.agent && !k.device);
    }
}
