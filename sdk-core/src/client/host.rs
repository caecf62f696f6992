//! Host work, sans-IO: when the installation key is kept by the host
//! ([`crate::signer::HostKeys`]), the client does not sign — it asks. A
//! request waiting for a signature is parked with its signing input fixed
//! (nonce, `iat`, batch all decided), [`PartnerClient::poll_host_request`]
//! hands the host what to do, and [`PartnerClient::handle_host_answer`]
//! finishes the request (or fails the operation with `signer_failed`; the
//! batch stays queued and is sealed again on the next attempt).
//!
//! Software keys never pass through here: they sign inline, at no extra cost.

use super::requests::Op;
use super::PartnerClient;
use crate::diag::LogLevel;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::http::HttpRequest;
use crate::keys::VerifyingKey;
use crate::signer::{accept_host_signature, HostKey, InstallationKey};
use crate::{dsse, jws, rotate};

/// What the host is asked to do.
#[derive(Clone, PartialEq, Eq)]
pub enum HostRequestKind {
    /// Create a new key pair (enrollment, rotation); answer [`HostAnswer::Key`].
    CreateKey,
    /// Sign `message` with the key `handle`; answer [`HostAnswer::Signature`].
    Sign {
        /// The host's name for the key.
        handle: String,
        /// The bytes to sign.
        message: Vec<u8>,
    },
    /// Delete the key `handle` (its successor is registered, or the
    /// installation was offboarded). Best effort; any answer is fine.
    DeleteKey {
        /// The host's name for the key.
        handle: String,
    },
}

impl core::fmt::Debug for HostRequestKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostRequestKind::CreateKey => f.write_str("CreateKey"),
            HostRequestKind::Sign { handle, message } => f
                .debug_struct("Sign")
                .field("handle", handle)
                .field("message_len", &message.len())
                .finish(),
            HostRequestKind::DeleteKey { handle } => {
                f.debug_struct("DeleteKey").field("handle", handle).finish()
            }
        }
    }
}

/// One piece of host work, answered by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRequest {
    /// Pass it back to [`PartnerClient::handle_host_answer`].
    pub id: u64,
    /// What to do.
    pub kind: HostRequestKind,
}

/// The host's answer to a [`HostRequest`].
#[derive(Debug, Clone)]
pub enum HostAnswer {
    /// The key [`HostRequestKind::CreateKey`] made.
    Key(HostKey),
    /// The signature [`HostRequestKind::Sign`] asked for (Ed25519: 64
    /// bytes; P-256: DER or raw `r‖s`).
    Signature(Vec<u8>),
    /// The key was deleted.
    Deleted,
}

/// Which key signs the current step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    /// The credential's installation key.
    Current,
    /// The key being enrolled (the pending redemption's).
    Enrolling,
    /// The rotation's new key (in `Op::Rotate`).
    New,
}

/// What a step produces once signed.
#[derive(Debug)]
pub(super) enum Step {
    Jws(jws::Unsigned),
    Dsse(dsse::Unsigned),
    /// The new key's proof; then the JWS the current key signs.
    RotateProof(rotate::Unsigned),
}

impl Step {
    fn message(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Step::Jws(u) => u.message().into(),
            Step::Dsse(u) => u.message().into(),
            Step::RotateProof(u) => u.proof_message().into(),
        }
    }
}

/// A request waiting for its signature(s).
#[derive(Debug)]
pub(super) struct Signing {
    pub(super) op: Op,
    pub(super) path: &'static str,
    pub(super) content_type: &'static str,
    pub(super) base: Option<String>,
    pub(super) step: Step,
    pub(super) who: Who,
}

/// Why the client waits for the host.
#[derive(Debug)]
pub(super) enum Waiting {
    /// A key for the pending redemption.
    EnrollKey,
    /// A key for the next rotation.
    RotationKey,
    /// A signature by `public` for `signing`.
    Signature {
        signing: Box<Signing>,
        public: VerifyingKey,
    },
}

enum Signed {
    Body(Vec<u8>),
    Next(Box<Step>, Who),
}

fn advance(step: Step, sig: &[u8]) -> Result<Signed> {
    Ok(match step {
        Step::Jws(u) => Signed::Body(u.finish(sig).into_bytes()),
        Step::Dsse(u) => Signed::Body(u.finish(sig)?),
        Step::RotateProof(u) => Signed::Next(Box::new(Step::Jws(u.with_proof(sig)?)), Who::Current),
    })
}

impl PartnerClient {
    /// From now on, new installation keys (enrollment, rotation) are
    /// created by the host ([`HostRequestKind::CreateKey`]); the client never
    /// generates or holds a private key for them.
    pub fn use_host_keys(&mut self) {
        self.host_keys = true;
    }

    /// Whether new keys come from the host.
    pub fn uses_host_keys(&self) -> bool {
        self.host_keys
    }

    /// The next piece of work for the host, if any. Drivers call it when
    /// [`poll_request`](Self::poll_request) has nothing to send.
    pub fn poll_host_request(&mut self) -> Option<HostRequest> {
        self.host_queue.pop_front()
    }

    /// Feeds the host's answer to request `id`. An error (or an answer of
    /// the wrong kind, or a signature that does not verify) fails the
    /// operation with `signer_failed` and backs off; nothing queued is lost.
    pub fn handle_host_answer(&mut self, id: u64, answer: Result<HostAnswer>, now: UnixSeconds) {
        let waiting = match self.host_waiting.take() {
            Some((w, what)) if w == id => what,
            other => {
                // A delete's answer, or a stale one: nothing waits for it.
                self.host_waiting = other;
                if let Err(e) = answer {
                    self.log(
                        LogLevel::Warn,
                        format!("host request #{id} failed: {}", e.code()),
                    );
                }
                return;
            }
        };
        let r = match (waiting, answer) {
            (_, Err(e)) => return self.signer_failed(e, now),
            (Waiting::EnrollKey, Ok(HostAnswer::Key(k))) => {
                self.log(
                    LogLevel::Debug,
                    format!(
                        "host key created for enrollment ({})",
                        k.public_key.algorithm().name()
                    ),
                );
                if let Some(p) = self.pending_redeem.as_mut() {
                    p.set_host_key(k);
                }
                Ok(())
            }
            (Waiting::RotationKey, Ok(HostAnswer::Key(k))) => {
                self.log(
                    LogLevel::Debug,
                    format!(
                        "host key created for rotation ({})",
                        k.public_key.algorithm().name()
                    ),
                );
                self.rotation_new = Some(InstallationKey::Host(k));
                Ok(())
            }
            (Waiting::Signature { signing, public }, Ok(HostAnswer::Signature(sig))) => {
                match accept_host_signature(&public, &signing.step.message(), &sig) {
                    Ok(raw) => self.continue_signing(*signing, &raw),
                    Err(e) => return self.signer_failed(e, now),
                }
            }
            (_, Ok(_)) => {
                return self.signer_failed(
                    Error::new(
                        ErrorCode::SignerFailed,
                        "the host answered with another kind of result than was asked",
                    ),
                    now,
                )
            }
        };
        // Not the host's doing (e.g. the service URL gate): fails as usual.
        if let Err(e) = r {
            self.fail(e, now);
        }
    }

    /// A host failure: typed `signer_failed` (the host's own code and text
    /// kept in the detail), the operation fails, and the client waits before
    /// asking again. The request is dropped; its batch stays in the outbox.
    fn signer_failed(&mut self, e: Error, now: UnixSeconds) {
        let e = if e.code() == ErrorCode::SignerFailed {
            e
        } else {
            Error::new(
                ErrorCode::SignerFailed,
                format!("host signer: {}: {}", e.code(), e.message()),
            )
        };
        self.log(LogLevel::Warn, "the host signer failed".to_owned());
        self.fail(e.clone(), now);
        self.backoff(e, now);
    }

    /// Asks the host for `kind`, waiting for its answer as `waiting`.
    pub(super) fn ask_host(&mut self, kind: HostRequestKind, waiting: Option<Waiting>) {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(w) = waiting {
            self.host_waiting = Some((id, w));
        }
        self.host_queue.push_back(HostRequest { id, kind });
    }

    /// Whether a request waits for the host.
    pub(super) fn waiting_for_host(&self) -> bool {
        self.host_waiting.is_some()
    }

    /// Asks the host to delete `key` if it keeps it (a replaced or
    /// offboarded installation key).
    pub(super) fn retire_key(&mut self, key: &InstallationKey) {
        if let InstallationKey::Host(h) = key {
            self.ask_host(
                HostRequestKind::DeleteKey {
                    handle: h.handle.clone(),
                },
                None,
            );
        }
    }

    fn key_of<'a>(&'a self, who: Who, op: &'a Op) -> Result<&'a InstallationKey> {
        let missing = || Error::new(ErrorCode::InvalidState, "no key to sign with");
        match who {
            Who::Current => self.cred.as_ref().ok_or_else(missing)?.installation_key(),
            Who::Enrolling => self
                .pending_redeem
                .as_ref()
                .and_then(|p| p.key())
                .ok_or_else(missing),
            Who::New => match op {
                Op::Rotate { new_key, .. } => Ok(new_key),
                _ => Err(missing()),
            },
        }
    }

    /// Signs `s` with software keys inline, or parks it for the host.
    /// `Ok(Some)` is the finished request; `Ok(None)` means the host was asked.
    pub(super) fn sign_request(&mut self, s: Signing) -> Result<Option<HttpRequest>> {
        let sig = match self.key_of(s.who, &s.op)? {
            InstallationKey::Software(k) => k.sign(&s.step.message()),
            InstallationKey::Host(h) => {
                let (handle, public) = (h.handle.clone(), h.public_key);
                let message = s.step.message().into_owned();
                self.ask_host(
                    HostRequestKind::Sign { handle, message },
                    Some(Waiting::Signature {
                        signing: Box::new(s),
                        public,
                    }),
                );
                return Ok(None);
            }
        };
        self.apply_signature(s, &sig)
    }

    /// Puts `sig` into `s`: the finished request, or the next step signed
    /// (the rotation's outer JWS after the new key's proof).
    fn apply_signature(&mut self, mut s: Signing, sig: &[u8]) -> Result<Option<HttpRequest>> {
        match advance(s.step, sig)? {
            Signed::Body(body) => self
                .request(
                    s.op,
                    s.path,
                    s.content_type,
                    body,
                    vec![],
                    s.base.as_deref(),
                )
                .map(Some),
            Signed::Next(step, who) => {
                s.step = *step;
                s.who = who;
                self.sign_request(s)
            }
        }
    }

    /// A host signature arrived for `signing`: the request is kept for the
    /// next [`poll_request`](Self::poll_request), or the next step is asked.
    fn continue_signing(&mut self, signing: Signing, sig: &[u8]) -> Result<()> {
        if let Some(req) = self.apply_signature(signing, sig)? {
            self.ready = Some(req);
        }
        Ok(())
    }
}
