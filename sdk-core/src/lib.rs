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
//! | [`encoding`] | base64 flavours, RFC 3339 times, capped JSON parsing (PROTOCOL §2) |
//! | [`keys`] | Ed25519 keys, key ids, JWKs and keysets, the randomness seam (§3) |
//! | [`jws`] | the strict compact-JWS profile every interactive message uses (§4) |
//! | [`fresh`] | freshness window and nonce shape (§5) |
//! | [`token`] | access tokens (JWT, EdDSA): issue, inspect, verify (§6) |
//! | [`redeem`] | token → installation credential, proof of possession (§7) |
//! | [`handshake`] | signed hello → signed flow decision (open/blocked/revoked) (§8) |
//! | [`telemetry`] + [`dsse`] | typed events, batches, DSSE envelopes (§9) |
//! | [`downlevel`] | onboarding packages, HMAC `SharedKey` signing (§10) |
//! | [`offboard`] | opt-out message, offboarding package (30 days) (§11) |
//! | [`rotate`] | credential rotation, acquire-then-replace (§12) |
//! | [`policy`] | the service-signed policy and its rollback rule (§13) |
//! | [`credential`] | what an endpoint persists, and the host's credential store seam (§14) |
//! | [`health`] | partner health report, portal health classes (§15) |
//! | [`http`] | the sans-IO HTTP request/response model and problem bodies (§16) |
//! | [`error`] | one error type with stable codes (§17) |
//! | [`eicar`] | the EICAR test detection (§20) |
//! | [`service`] | the service role: every partner-API decision |
//! | [`options`] | the one client options schema: names, defaults, limits (every binding) |
//! | [`client`] | the partner role: a sans-IO client (`poll_request`/`handle_response`), its operations (`start`/`op_status`) and events |
//! | [`diag`] | diagnostics: log levels and records the client emits (never a secret) |
//! | [`spool`] | the outbox's bookkeeping: bounds, drops, the in-flight batch |
//! | [`memory_store`] | in-memory outbox and credential storage (tests, wasm hosts) |
//! | `spool_file` (feature `spool`) | the durable on-disk segment log behind the outbox |
//! | `agent` (feature `blocking`) | a blocking driver: threads, files and clocks around the client |
//! | `transport` (feature `http`) | the built-in HTTPS transport (ureq + rustls) |
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "blocking")]
pub mod agent;
pub mod client;
pub mod credential;
pub mod diag;
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
pub mod options;
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
