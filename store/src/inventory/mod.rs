//! The inventory: every machine the site agents' discovery scans found, per
//! tenant and site, reconciled scan after scan, with a history of what
//! changed.
//!
//! * this module: ids, change kinds, the reconciliation rules below;
//! * [`addr`]: MACs, scan targets, port lists, the address sort key;
//! * [`records`]: reports as the agent port hands them over;
//! * `reconcile`, `scan_end`: applying reports inside a batch's transaction;
//! * [`jobs`]: discovery jobs (what agents scan) and the site credential
//!   profile routers are adopted with;
//! * [`adopt`]: hosts that look like RouterOS, and turning one into a
//!   managed device;
//! * [`scans`], [`views`], [`history`]: what the console and the command
//!   line read.
//!
//! # Tables (migrations `0006_inventory.sql`)
//!
//! `hosts` (one row per machine; its primary address, MAC, facts, state),
//! `host_addresses` (every address it currently answers at), `host_ports`
//! (open ports), `host_changes` (history), `discovery_scans`,
//! `discovery_jobs`, `site_credentials`. Every row carries its tenant, and
//! every query names it.
//!
//! # Reconciliation
//!
//! Each host record of a `DiscoveredHosts` chunk (MAC `M`, address `A`) is
//! matched within the agent's tenant and site, in this order:
//!
//! 1. **By MAC**: the host whose MAC is `M` (at most one: a MAC names one
//!    host per site, a unique index says so), gone or not.
//! 2. **By IP**, when the record has no MAC or no host has `M`: the host
//!    listing `A` among its addresses, live ones before gone ones, the most
//!    recently seen first. It is the same host when the record or the host
//!    has no MAC (a host known only by address learns its MAC here). When
//!    both have MACs and they differ, it is *not* the same host: if that host
//!    is live it gets a `mac_conflict` change and its conflict flag (kept
//!    until an operator clears it: [`crate::Store::clear_host_conflict`]);
//!    either way the record becomes a new host with MAC `M`. (A gone host's address
//!    answering with another MAC is an address reused, not a conflict.)
//! 3. Otherwise a **new host** (`new_host`).
//!
//! On the matched host: `host_back` when it was gone; missed scans reset;
//! last seen advanced (never moved back). An address the host did not have
//! is added (`ip_changed`, "old → new", when it had addresses of that family
//! that this scan has not seen, "also at …" otherwise); every other live host
//! listing that address gets `mac_moved` ("… now answers with M"). Addresses
//! are dropped only by a complete scan (below), so a host seen at a second
//! address in the same scan keeps both. Names and `seen_by` are merged with
//! what earlier chunks of the same scan said and replaced by a later scan.
//! Vendor, OS guess, round trip and MNDP facts are replaced when reported.
//! SNMP facts are replaced when SNMP answered; a changed sysName, sysDescr or
//! sysObjectID of a host that had answered before is `snmp_identity_changed`.
//! What a host new in this scan shows (its other addresses, ports, SNMP
//! identity, reported by later records or chunks of the same scan) is part of
//! its `new_host`, not a change of its own.
//!
//! Ports: a newly open port of a known host is `port_opened`. A stored TCP
//! port in the chunk's `scanned_ports` that the record does not list open,
//! and that no earlier record of the same scan listed, is deleted
//! (`port_closed`); an empty `scanned_ports` (an nmap import) closes nothing.
//! Ports are kept per host, not per address: when a later record of the
//! same scan lists a port an earlier one had closed, it is opened again.
//!
//! A complete `ScanFinished` (`partial = false`), the first time it arrives
//! for a scan: every live host of the site with an address inside the scan's
//! targets that the scan did not see gets one more missed scan, and at
//! [`MISSES_BEFORE_GONE`] it is gone (`host_gone`). "Seen" means reported by
//! this scan, or by any scan since this one started (concurrent jobs; both
//! times on the agent's clock). Hosts
//! the scan did see lose their addresses inside the targets that it did not
//! see (the old address after an `ip_changed`), keeping at least one. A
//! partial scan changes nothing but its own record.
//!
//! Exactly once: reports ride in the batch's transaction, which advances the
//! agent's acknowledged sequence number, so a resent report (sequence number
//! at or below it) is skipped, as for device reports. Chunks of one scan are
//! applied in order, so a host is matched across chunks like across scans.
//!
//! Tenancy: the tenant and site come from the agent's certificate. A report
//! naming a scan or a job that belongs to another tenant or site is refused
//! (in the Ack) and changes nothing.
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::StoreError;

pub mod addr;
pub mod adopt;
pub mod history;
pub mod jobs;
mod reconcile;
pub mod records;
mod scan_end;
pub mod scans;
pub mod views;

/// Complete scans covering a host's address that must miss it in a row
/// before it counts as gone. Three rides out a host that was off for one
/// scan or two (a laptop, a reboot) without keeping the dead for long.
pub const MISSES_BEFORE_GONE: i64 = 3;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A host's id.
    HostId
);
uuid_id!(
    /// A discovery job's id.
    JobId
);

/// A scan's id: chosen by the agent for its own scans, by the collector for
/// the scans it asks for. 1 to 64 characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScanId(String);

impl ScanId {
    /// A fresh id (a UUID), for a scan the collector asks for.
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ScanId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            let shown: String = s.chars().take(64).collect();
            Err(format!(
                "scan id {shown:?} must be 1 to 64 characters of letters, digits and . _ : -"
            ))
        }
    }
}

/// What changed about a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// First seen.
    NewHost,
    /// Missed by [`MISSES_BEFORE_GONE`] complete scans in a row.
    HostGone,
    /// Seen again after being gone.
    HostBack,
    /// Seen (by its MAC) at an address it did not have.
    IpChanged,
    /// Its address now answers with another host's MAC.
    MacMoved,
    /// An unknown MAC answered at its address.
    MacConflict,
    /// A port opened.
    PortOpened,
    /// A scanned port no longer open.
    PortClosed,
    /// sysName, sysDescr or sysObjectID changed.
    SnmpIdentityChanged,
    /// Became a managed device.
    Adopted,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [Self; 10] = [
        Self::NewHost,
        Self::HostGone,
        Self::HostBack,
        Self::IpChanged,
        Self::MacMoved,
        Self::MacConflict,
        Self::PortOpened,
        Self::PortClosed,
        Self::SnmpIdentityChanged,
        Self::Adopted,
    ];

    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewHost => "new_host",
            Self::HostGone => "host_gone",
            Self::HostBack => "host_back",
            Self::IpChanged => "ip_changed",
            Self::MacMoved => "mac_moved",
            Self::MacConflict => "mac_conflict",
            Self::PortOpened => "port_opened",
            Self::PortClosed => "port_closed",
            Self::SnmpIdentityChanged => "snmp_identity_changed",
            Self::Adopted => "adopted",
        }
    }
}

impl FromStr for ChangeKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("host change kind {s:?}")))
    }
}

/// What storing a batch's discovery reports did.
#[derive(Debug, Default)]
pub struct DiscoveryOutcome {
    /// Reports stored.
    pub stored: u64,
    /// Reports skipped because an earlier delivery stored them.
    pub duplicates: u64,
    /// Reports naming another tenant's or site's scan or job: (seq, reason).
    pub refused: Vec<(i64, String)>,
    /// Hosts created.
    pub new_hosts: u64,
    /// Changes recorded (new hosts included).
    pub changes: u64,
}

/// Who the reports are from, as the agent's certificate says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reporter<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) site: &'a str,
    pub(crate) agent: &'a str,
}

/// A boxed, sendable future borrowing for `'a`.
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Reconciles a batch's discovery reports in its transaction, for either engine.
pub(crate) trait ApplyDiscovery: sqlx::Database {
    /// Applies `reports` of an agent whose batches so far were acknowledged
    /// up to `acked_seq`.
    fn apply<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        from: Reporter<'a>,
        acked_seq: i64,
        reports: &'a [records::DiscoveryReport],
    ) -> Boxed<'a, DiscoveryOutcome>;

    /// Appends a host change.
    #[allow(clippy::too_many_arguments)]
    fn change<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        site: &'a str,
        host: &'a str,
        at_ms: i64,
        kind: ChangeKind,
        detail: &'a str,
        scan: &'a str,
    ) -> Boxed<'a, ()>;
}

macro_rules! apply_discovery_for {
    ($db:ty, $module:ident) => {
        impl ApplyDiscovery for $db {
            fn apply<'a, 't: 'a>(
                tx: &'a mut sqlx::Transaction<'t, Self>,
                from: Reporter<'a>,
                acked_seq: i64,
                reports: &'a [records::DiscoveryReport],
            ) -> Boxed<'a, DiscoveryOutcome> {
                Box::pin(reconcile::$module::apply(tx, from, acked_seq, reports))
            }

            fn change<'a, 't: 'a>(
                tx: &'a mut sqlx::Transaction<'t, Self>,
                tenant: &'a str,
                site: &'a str,
                host: &'a str,
                at_ms: i64,
                kind: ChangeKind,
                detail: &'a str,
                scan: &'a str,
            ) -> Boxed<'a, ()> {
                Box::pin(reconcile::$module::change(
                    tx, tenant, site, host, at_ms, kind, detail, scan,
                ))
            }
        }
    };
}

apply_discovery_for!(sqlx::Sqlite, sqlite);
apply_discovery_for!(sqlx::Postgres, postgres);

/// Decodes a JSON text column, naming it when it is damaged.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Encodes a value for a JSON text column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain structs of strings, numbers and lists cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod views_tests;
