//! RouterOS devices: the agent polls the devices the collector assigned to it,
//! each over one persistent API session.
//!
//! * [`fleet`]: one task per device, following the collector's assignments;
//! * [`device`]: a device's session, schedule, breaker and state reports;
//! * [`poll`]: the poll set and what it reports; [`rates`]: counters → rates;
//! * [`schedule`]: poll slots spread over the interval, backoff on failure;
//! * [`sink`]: reports into the outbox in groups;
//! * [`live`]: live interface traffic for the console, outside the outbox;
//! * [`export`]: configuration export normalisation;
//! * [`backup`]: configuration backups over SSH, sealed for the outbox;
//!   [`backup_memory`]: which backups are due and worth sending.
pub mod backup;
pub mod backup_memory;
pub mod device;
pub mod export;
pub mod fleet;
pub mod live;
pub mod poll;
pub mod probe;
pub mod rates;
pub mod schedule;
pub mod sink;
