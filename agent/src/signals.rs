//! Wake-ups shared between the agent's tasks.
use tokio::sync::Notify;

/// Wake-ups shared between the agent's tasks.
#[derive(Debug, Default)]
pub struct Signals {
    /// New records were appended to the outbox.
    pub new_data: Notify,
    /// Report host facts now.
    pub host_facts_now: Notify,
    /// Renew the certificate now.
    pub renew_now: Notify,
}
