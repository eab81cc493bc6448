//! MikroTik Neighbor Discovery Protocol (MNDP, UDP 5678): RouterOS devices
//! announce their identity, MAC, addresses, version and board on every
//! interface with discovery enabled, periodically and when asked by a
//! refresh request.
//!
//! [`codec`] turns packets into [`Announcement`]s and back; [`listener`]
//! receives them on a socket.

pub mod codec;
pub mod listener;

pub use codec::{Announcement, MndpError, REFRESH_REQUEST, encode, parse};
pub use listener::{DEFAULT_BIND, ListenError, MndpListener, PORT};
