//! The `Connect` streams open on this collector, one per agent at most.
//!
//! An agent id streams from one outbox instance at a time. When the *same*
//! instance opens a new stream (it reconnected before the collector noticed
//! the old connection was dead), the old stream is ended with a status saying
//! so, and its connection closed a moment later: the newer one wins. A *different* instance is refused while the
//! first streams (see `Store::agent_connected`, which also covers streams held
//! by other collectors sharing the database).
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use outpost_certs::AgentId;
use outpost_proto::agent_v1::{CollectorMessage, Command, collector_message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Entry {
    id: u64,
    instance: String,
    replaced: CancellationToken,
    /// The stream's queue towards its agent, for commands from elsewhere in
    /// the collector (live traffic).
    commands: Outbound,
}

/// A session's queue of messages to its agent.
pub type Outbound = mpsc::Sender<Result<CollectorMessage, tonic::Status>>;

/// Live sessions by agent.
#[derive(Default)]
pub struct LiveSessions {
    next: AtomicU64,
    map: Mutex<HashMap<AgentId, Entry>>,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSessions").finish_non_exhaustive()
    }
}

/// A session's place in [`LiveSessions`].
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    /// Cancelled when a newer stream of the same instance replaces this one.
    pub replaced: CancellationToken,
}

impl LiveSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, Entry>> {
        // Entries are inserted and removed whole; a panic elsewhere cannot
        // leave one half-written.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many agents stream to this collector now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no agent streams to this collector.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The instance streaming for `agent` on this collector, if any.
    pub fn instance_of(&self, agent: &AgentId) -> Option<String> {
        self.lock().get(agent).map(|e| e.instance.clone())
    }

    /// Registers the session that was just admitted, ending any older session
    /// of the agent on this collector (the store admitted this one, so an older
    /// one is the same instance, or a stale one).
    pub fn admit(&self, agent: AgentId, instance: &str, commands: Outbound) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let replaced = CancellationToken::new();
        let old = self.lock().insert(
            agent,
            Entry {
                id,
                instance: instance.to_owned(),
                replaced: replaced.clone(),
                commands,
            },
        );
        if let Some(old) = old {
            // The old session tells its agent why and then closes its own
            // connection (closing it here could cut that status short).
            old.replaced.cancel();
        }
        Ticket { id, replaced }
    }

    /// Queues a command for `agent` if it streams to this collector; false
    /// when it does not, or its queue is full.
    pub fn send_command(&self, agent: &AgentId, command: Command) -> bool {
        let Some(tx) = self.lock().get(agent).map(|e| e.commands.clone()) else {
            return false;
        };
        tx.try_send(Ok(CollectorMessage {
            kind: Some(collector_message::Kind::Command(command)),
        }))
        .is_ok()
    }

    /// Removes the session, unless a newer one already took its place.
    pub fn leave(&self, agent: &AgentId, ticket: &Ticket) {
        let mut map = self.lock();
        if map.get(agent).is_some_and(|e| e.id == ticket.id) {
            map.remove(agent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_session_replaces_the_older_and_survives_its_exit() {
        let live = LiveSessions::default();
        let agent = AgentId::random();
        let (tx, _rx) = mpsc::channel(1);
        let first = live.admit(agent, "i1", tx.clone());
        assert_eq!(live.instance_of(&agent).as_deref(), Some("i1"));
        let second = live.admit(agent, "i1", tx);
        assert!(first.replaced.is_cancelled());
        assert!(!second.replaced.is_cancelled());
        // The old session leaving does not remove the new one.
        live.leave(&agent, &first);
        assert_eq!(live.instance_of(&agent).as_deref(), Some("i1"));
        live.leave(&agent, &second);
        assert_eq!(live.instance_of(&agent), None);
    }
}
