//! # edrlink-core
//!
//! The edrlink protocol between partner security products and a cloud EDR
//! service, for **both roles**, as pure state machines over bytes and time
//! (sans-IO): no sockets, files, threads or clocks here. Time is passed in as
//! Unix seconds; randomness comes through [`keys::RandomSource`].
//!
//! docs/PROTOCOL.md is the normative description of every message; the
//! modules map onto its sections. Every module of the crate, with the Cargo
//! feature that gates it (each feature is named after its module; `gzip`
//! only adds compression):
//!
//! | module | feature | job |
//! |---|---|---|
//! | [`encoding`] | — | base64 flavours, RFC 3339 times, capped JSON parsing (PROTOCOL §2) |
//! | [`keys`] | — (`p256` verifies P-256) | Ed25519 and P-256 keys, key ids, JWKs and keysets, the randomness seam (§3) |
//! | [`jws`] | — | the strict compact-JWS profile every interactive message uses (§4) |
//! | [`fresh`] | — | freshness window and nonce shape (§5) |
//! | [`token`] | — | access tokens (JWT, EdDSA): issue, inspect, verify (§6) |
//! | [`redeem`] | — | token → installation credential, proof of possession (§7) |
//! | [`handshake`] | — | signed hello → signed flow decision (open/blocked/revoked) (§8) |
//! | [`telemetry`] + [`dsse`] | — (`gzip` compresses) | typed events (read by `telemetry/event_de.rs` without serde's tagged-enum buffering), batches, DSSE envelopes (§9) |
//! | [`downlevel`] | — | onboarding packages, HMAC `SharedKey` signing (§10) |
//! | [`offboard`] | — | opt-out message, offboarding package (30 days) (§11) |
//! | [`rotate`] | — | credential rotation, acquire-then-replace (§12) |
//! | [`policy`] | — | the service-signed policy and its rollback rule (§13) |
//! | [`credential`] | — | what an endpoint persists, and the host's credential store seam (§14) |
//! | [`health`] | — | partner health report, portal health classes (§15) |
//! | [`http`] | — | the sans-IO HTTP request/response model and problem bodies (§16); not an HTTP stack |
//! | [`error`] | — | one error type with stable codes (§17) |
//! | [`eicar`] | — | the EICAR test detection (§20) |
//! | [`signer`] | — | device keys the host keeps ([`signer::HostKeys`]): host key handles, signature checks, software test keys |
//! | `client/host.rs` | — | the sans-IO host requests (create a key, sign, delete a key) and their answers |
//! | [`service`] | — | the service role: every partner-API decision |
//! | [`options`] | — | the one client options schema: names, defaults, limits (every binding; docs/OPTIONS.md is generated from it) |
//! | [`client`] | — | the partner role: a sans-IO client (`poll_request`/`handle_response`), its operations (`start`/`op_status`) and events |
//! | `client/url.rs` | — | the service URL rule (https, or http to loopback) |
//! | `client/events.rs` | — | [`client::ClientEvent`] and its canonical JSON, log records, drop reports |
//! | `client/ops.rs` | — | [`client::Operation`]s and their status |
//! | `client/schedule.rs` | — | what is due when: handshakes, rotation, heartbeats, pacing, backoff, jitter |
//! | `client/requests.rs` | — | the signed requests and the gate every request passes |
//! | `client/batching.rs` | — | forming, rebuilding and sealing batches; the ingest request |
//! | `client/answers.rs` | — | success and refusal answers, auth failures, the rotation candidate |
//! | [`diag`] | — | diagnostics: log levels and records the client emits (never a secret) |
//! | [`spool`] | — | the outbox's bookkeeping: bounds, drops, the in-flight batch (always built) |
//! | [`memory_store`] | — | in-memory outbox and credential storage (tests, wasm hosts) |
//! | `spool_file` | `spool-file` | the durable on-disk segment log behind the outbox |
//! | `strict_json` (private) | — | the reader of the fixed shapes checked offline (JWS header, token claims, keyset, envelope), without serde_json |
//! | `agent` | `agent` (adds `spool-file`) | a blocking driver: threads, files and clocks around the client |
//! | `transport` | `transport` (adds `agent`) | the built-in HTTPS transport (ureq + rustls) |
//! | `tls_probe` (private) | `transport` | after a certificate error, names the certificate the server presented (spots TLS-inspecting proxies) |
//! | `fuzzing` (hidden) | — | one entry point feeding bytes to every parser, shared by `fuzz/` and `hostile_tests`; not a public API |
//! | `hostile_tests` (`cfg(test)`) | — | deterministic hostile-input tests: random and mutated messages through every parser |
//!
//! The feature names `http`, `spool` and `blocking` are deprecated aliases of
//! `transport`, `spool-file` and `agent`.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "agent")]
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
pub mod signer;
pub mod spool;
#[cfg(feature = "spool-file")]
pub mod spool_file;
mod strict_json;
pub mod telemetry;
pub mod token;

#[cfg(test)]
mod hostile_tests;
#[cfg(feature = "transport")]
mod tls_probe;
#[cfg(feature = "transport")]
pub mod transport;

pub use error::{Error, ErrorCode, Result};

/// Crate version, as the C header's version macros and bindings report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Protocol version spoken (path prefix `/v1`).
pub const PROTOCOL_VERSION: u32 = 1;
