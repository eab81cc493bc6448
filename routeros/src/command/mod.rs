//! One module per polled command. Each builds its [`Command`](crate::Command)
//! with `.proplist` set (printing every property can cost a router megabytes
//! and slow fields), parses rows into a typed struct with `parse`, and offers
//! `fetch` to do both on a [`Client`](crate::Client).
//!
//! Parsing never fails: a missing field is `None`, a malformed one is `None`
//! too, and the rest of the row is kept. Only the command itself failing
//! (`!trap`, timeout, lost session) is an error.

pub mod addresses;
pub mod dhcp_leases;
pub mod health;
pub mod identity;
pub mod interfaces;
pub mod log;
pub mod monitor_traffic;
pub mod neighbors;
pub mod package_update;
pub mod resource;
pub mod routerboard;
pub mod wifi_registrations;
pub mod wireless_registrations;

use crate::sentence::Attrs;
use crate::values;

/// A text field, `None` when absent.
fn text(row: &Attrs, key: &str) -> Option<String> {
    row.get(key).map(str::to_owned)
}

/// A count field (bytes, packets, percent).
fn count(row: &Attrs, key: &str) -> Option<u64> {
    row.get(key).and_then(values::count)
}

/// A boolean field.
fn flag(row: &Attrs, key: &str) -> Option<bool> {
    row.get(key).and_then(values::boolean)
}

/// A duration field.
fn duration(row: &Attrs, key: &str) -> Option<std::time::Duration> {
    row.get(key).and_then(values::duration)
}

/// A rate field, in bits per second.
fn rate(row: &Attrs, key: &str) -> Option<u64> {
    row.get(key).and_then(values::rate)
}
