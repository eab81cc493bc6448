//! Open agent-port connections, so the collector can end a *connection*, not
//! only a gRPC stream: a revoked agent's TCP connection is closed, and an
//! anonymous connection can be cut once it has done what it may do.
//!
//! Every accepted connection gets a [`ConnHandle`]; cancelling it makes the
//! connection's next read or write fail, which tears down HTTP/2 and the socket.
//! Verified connections are also registered under their agent id, so
//! [`Connections::close_agent`] and [`Connections::of_revoked`] find them.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use outpost_certs::{AgentId, RevokedAgents};
use tokio_util::sync::CancellationToken;

/// Ends one connection.
#[derive(Clone, Debug, Default)]
pub struct ConnHandle {
    token: CancellationToken,
}

impl ConnHandle {
    /// Closes the connection (idempotent).
    pub fn close(&self) {
        self.token.cancel();
    }

    /// Whether the connection was closed through this handle.
    pub fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// The verified connections of every agent.
#[derive(Debug, Default)]
pub struct Connections {
    next: std::sync::atomic::AtomicU64,
    by_agent: Mutex<HashMap<AgentId, Vec<(u64, ConnHandle)>>>,
}

/// Removes a connection from the registry when the connection is dropped.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Connections>,
    agent: AgentId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if let Some(list) = map.get_mut(&self.agent) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.agent);
            }
        }
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, Vec<(u64, ConnHandle)>>> {
        // The map stays consistent even if a holder panicked: entries are only
        // pushed or removed whole.
        self.by_agent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a verified connection of `agent`.
    pub fn register(self: &Arc<Self>, agent: AgentId, handle: ConnHandle) -> Registration {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().entry(agent).or_default().push((id, handle));
        Registration {
            registry: self.clone(),
            agent,
            id,
        }
    }

    /// Closes every connection of `agent`; returns how many.
    pub fn close_agent(&self, agent: &AgentId) -> usize {
        let map = self.lock();
        let list = map.get(agent).map(Vec::as_slice).unwrap_or_default();
        for (_, h) in list {
            h.close();
        }
        list.len()
    }

    /// The open connections of every revoked agent, not yet closed.
    pub fn of_revoked(&self, revoked: &RevokedAgents) -> Vec<(AgentId, ConnHandle)> {
        let map = self.lock();
        map.iter()
            .filter(|(agent, _)| revoked.contains(agent))
            .flat_map(|(agent, list)| {
                list.iter()
                    .filter(|(_, h)| !h.is_closed())
                    .map(|(_, h)| (*agent, h.clone()))
            })
            .collect()
    }

    /// Open verified connections of `agent`.
    pub fn count(&self, agent: &AgentId) -> usize {
        self.lock().get(agent).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_only_the_revoked_and_forgets_dropped_connections() {
        let reg = Arc::new(Connections::default());
        let (a, b) = (AgentId::random(), AgentId::random());
        let (ha, hb) = (ConnHandle::default(), ConnHandle::default());
        let ra = reg.register(a, ha.clone());
        let _rb = reg.register(b, hb.clone());
        let revoked = RevokedAgents::default();
        revoked.insert(a);
        let found = reg.of_revoked(&revoked);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, a);
        found[0].1.close();
        assert!(ha.is_closed());
        assert!(!hb.is_closed());
        // Already closed: not found again.
        assert!(reg.of_revoked(&revoked).is_empty());
        drop(ra);
        assert_eq!(reg.count(&a), 0);
        assert_eq!(reg.count(&b), 1);
        assert_eq!(reg.close_agent(&b), 1);
        assert!(hb.is_closed());
    }
}
