//! The audit log: who did what, from where, to which object, and how it
//! ended, in an append-only, hash-chained table (`audit_log`).
//!
//! # Chain
//!
//! Records are numbered `seq` = 1, 2, 3, … without gaps. Each holds
//!
//! ```text
//! hash = SHA-256(prev_hash || canonical(record))
//! ```
//!
//! where `prev_hash` is the previous record's `hash` as 32 raw bytes (32 zero
//! bytes before record 1) and `hash` is stored as 64 lowercase hex digits.
//! `canonical(record)` is the UTF-8 text of this JSON array, with no
//! whitespace:
//!
//! ```text
//! ["outpost-audit-1",seq,at_ms,tenant,actor,source,action,object,outcome,details]
//! ```
//!
//! `seq` and `at_ms` (Unix milliseconds) are JSON integers; `tenant` (the
//! tenant's UUID) and `source` are strings or `null`; `actor`, `action`,
//! `object` and `outcome` are strings; `details` is a JSON object whose values
//! are strings, integers or booleans, keys sorted by their UTF-8 bytes. Strings
//! are escaped as RFC 8785 (JCS) prescribes (`\"`, `\\`, `\b`, `\f`, `\n`,
//! `\r`, `\t`, other control characters as `\u00xx`, everything else as
//! is), so the whole array is also its own JCS form. `details` is stored
//! exactly as it entered the hash.
//!
//! # Writing
//!
//! A record of a database change is appended in the change's own transaction
//! (the [`AppendAudit`] trait), as its last statement: the record commits with
//! the change or not at all. Events that change nothing (a failed sign-in, a
//! refused enrollment) are appended in a transaction of their own right after
//! ([`Store::record_audit`]). Appends are serialised: on PostgreSQL by
//! `pg_advisory_xact_lock(AUDIT_LOCK)` in the appending transaction, on SQLite
//! by the database's write lock; both then update the one-row `audit_head`
//! (newest seq and hash), read its previous value and insert the records.
//!
//! # What the chain proves
//!
//! [`Store::verify_audit_chain`] recomputes every hash: an edited record, a
//! deleted one (a gap in `seq`, or a tail shorter than `audit_head`) and
//! records moved to other positions are each found and named. Someone who can
//! write the database can still rewrite the whole chain from some point on,
//! head included: keep the head `audit verify` prints somewhere else, and
//! compare.
use std::collections::BTreeMap;
use std::fmt;

use outpost_certs::TenantId;
use sha2::{Digest, Sha256};

mod append;
mod csv;
mod read;
mod verify;

#[cfg(test)]
mod tests;

pub(crate) use append::AppendAudit;
pub use csv::{CSV_HEADER, csv_line, rfc3339};
pub use read::{AuditQuery, AuditRecord};
pub use verify::{ChainBreak, ChainReport};

/// The first element of every canonical encoding; a new encoding gets a new one.
const ENCODING: &str = "outpost-audit-1";

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// PostgreSQL advisory lock key that serialises appends ("AUDITLOG" in ASCII).
const AUDIT_LOCK: i64 = 0x4155_4449_544c_4f47;

/// Who acted, and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    name: String,
    source: Option<String>,
}

impl Actor {
    /// The name recorded for commands run on the collector with its data directory.
    pub const LOCAL_OPERATOR: &'static str = "local operator";

    /// Someone running an administrative command with the data directory.
    pub fn local_operator() -> Self {
        Self {
            name: Self::LOCAL_OPERATOR.into(),
            source: None,
        }
    }

    /// A console user (signed in, or the name typed into a sign-in form),
    /// from a client address.
    pub fn user(name: &str, source: Option<std::net::IpAddr>) -> Self {
        Self {
            name: name.into(),
            source: source.map(|ip| ip.to_string()),
        }
    }

    /// An agent (by id) or a client of the agent port (described), from a
    /// peer address.
    pub fn agent(name: &str, source: Option<std::net::SocketAddr>) -> Self {
        Self {
            name: name.into(),
            source: source.map(|a| a.ip().to_string()),
        }
    }

    /// The recorded name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was refused (wrong password, bad token, …).
    Failure,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// The `details` of a record: a flat JSON object of strings, integers and
/// booleans, always serialised with sorted keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details(BTreeMap<String, serde_json::Value>);

impl Details {
    /// No details.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a text value.
    pub fn text(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), serde_json::Value::String(value.into()));
        self
    }

    /// Adds an integer.
    pub fn number(mut self, key: &str, value: i64) -> Self {
        self.0.insert(key.into(), serde_json::Value::from(value));
        self
    }

    /// Adds a boolean.
    pub fn flag(mut self, key: &str, value: bool) -> Self {
        self.0.insert(key.into(), serde_json::Value::Bool(value));
        self
    }

    /// The canonical JSON text.
    pub fn canonical(&self) -> String {
        // A BTreeMap of scalars: sorted keys, no whitespace, JCS string escapes.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }
}

/// One action to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// The tenant whose object it concerns; `None` for MSP-wide events.
    pub tenant: Option<TenantId>,
    /// What was done, dotted (`device.add`, `console.login`, …).
    pub action: &'static str,
    /// What it was done to (`device <id>`, `agent <id>`, `user <name>`, …).
    pub object: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Anything else worth keeping.
    pub details: Details,
}

impl AuditEvent {
    /// A successful action on `object`.
    pub fn success(tenant: Option<TenantId>, action: &'static str, object: impl Into<String>) -> Self {
        Self {
            tenant,
            action,
            object: object.into(),
            outcome: Outcome::Success,
            details: Details::new(),
        }
    }

    /// A refused action on `object`.
    pub fn failure(tenant: Option<TenantId>, action: &'static str, object: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Failure,
            ..Self::success(tenant, action, object)
        }
    }

    /// With `details`.
    pub fn with(mut self, details: Details) -> Self {
        self.details = details;
        self
    }

    /// With one more text detail.
    pub fn with_detail(mut self, key: &str, value: &str) -> Self {
        self.details = self.details.text(key, value);
        self
    }
}

/// The stored fields that enter a record's hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'a> {
    pub(crate) seq: i64,
    pub(crate) at_ms: i64,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) actor: &'a str,
    pub(crate) source: Option<&'a str>,
    pub(crate) action: &'a str,
    pub(crate) object: &'a str,
    pub(crate) outcome: &'a str,
    /// Stored text, used as is.
    pub(crate) details: &'a str,
}

fn json_str(s: &str) -> String {
    // serde_json escapes exactly as JCS does; a &str always serialises.
    serde_json::to_string(s).unwrap_or_default()
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".into(), json_str)
}

/// The canonical encoding of a record (see the module documentation).
pub(crate) fn canonical(f: &Fields<'_>) -> String {
    format!(
        "[{},{},{},{},{},{},{},{},{},{}]",
        json_str(ENCODING),
        f.seq,
        f.at_ms,
        json_opt(f.tenant),
        json_str(f.actor),
        json_opt(f.source),
        json_str(f.action),
        json_str(f.object),
        json_str(f.outcome),
        f.details,
    )
}

/// `SHA-256(prev || canonical(fields))` in lowercase hex; `None` when `prev`
/// is not 64 hex digits.
pub(crate) fn chain_hash(prev_hex: &str, f: &Fields<'_>) -> Option<String> {
    let prev = hex::decode(prev_hex).ok().filter(|b| b.len() == 32)?;
    let mut h = Sha256::new();
    h.update(&prev);
    h.update(canonical(f).as_bytes());
    Some(hex::encode(h.finalize()))
}

/// A position in the chain an operator can keep elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The newest record's seq (0 when the log is empty).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {} hash {}", self.seq, self.hash)
    }
}
