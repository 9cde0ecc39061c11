//! ctix: a cyber-threat information exchange daemon for national CERTs.
//!
//! Nodes exchange ed25519-signed indicators over QUIC with mutual TLS, keep them in sled and
//! relay each other's entries. See `ARCHITECTURE.md` for the map of this crate.

pub mod api;
pub mod backup;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod devfed;
pub mod drill;
pub mod interop;
pub mod log;
pub mod model;
pub mod net;
pub mod node;
pub mod par;
pub mod pki;
pub mod roster;
pub mod sim;
pub mod store;
pub mod sync;
pub mod textfile;
pub mod view;
pub mod wire;

/// Milliseconds since the Unix epoch, read from the system clock. Only the IO shells call this;
/// `sync` and `model` take `now` as an argument.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
