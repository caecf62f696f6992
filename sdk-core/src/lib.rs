//! # edrlink-core
//!
//! The edrlink protocol between partner security products and a cloud EDR
//! service, for **both roles**, as pure state machines over bytes and time
//! (sans-IO): no sockets, files, threads or clocks here. Time is passed in as
//! Unix seconds; randomness comes through [`keys::RandomSource`].
//!
//! docs/PROTOCOL.md is the normative description of every message; the
//! modules map onto its sections:
//!
//! | module | job |
//! |---|---|
//! | [`token`] | access tokens (JWT, EdDSA): issue, inspect, verify |
//! | [`redeem`] | token → installation credential, proof of possession |
//! | [`handshake`] | signed hello → signed flow decision (open/blocked/revoked) |
//! | [`telemetry`] + [`dsse`] | typed events, batches, DSSE envelopes |
//! | [`downlevel`] | onboarding packages, HMAC `SharedKey` signing |
//! | [`offboard`] | opt-out message, offboarding package (30 days) |
//! | [`rotate`] | credential rotation, acquire-then-replace |
//! | [`health`] | partner health report, portal health classes |
//! | [`eicar`] | the EICAR test detection |
//! | [`service`] | the service role: every partner-API decision |
//! | [`client`] | the partner role: a sans-IO client (`poll_request`/`handle_response`) |
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "blocking")]
pub mod agent;
pub mod client;
pub mod credential;
pub mod downlevel;
pub mod dsse;
pub mod eicar;
pub mod encoding;
pub mod error;
pub mod fresh;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod health;
pub mod http;
pub mod jws;
pub mod keys;
pub mod memory_store;
pub mod offboard;
pub mod policy;
pub mod redeem;
pub mod rotate;
pub mod service;
pub mod spool;
#[cfg(feature = "spool")]
pub mod spool_file;
pub mod telemetry;
pub mod token;

#[cfg(test)]
mod hostile_tests;
#[cfg(feature = "http")]
mod tls_probe;
#[cfg(feature = "http")]
pub mod transport;

pub use error::{Error, ErrorCode, Result};

/// Crate version, as the C header's version macros and bindings report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Protocol version spoken (path prefix `/v1`).
pub const PROTOCOL_VERSION: u32 = 1;
