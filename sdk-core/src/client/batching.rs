//! Telemetry batches: when one is due, forming it from the outbox,
//! rebuilding the in-flight batch after a restart (same id and sequence, so
//! the service deduplicates), applying the sample-sharing policy, and
//! sealing it into the ingest request (DSSE, or HMAC for down-level agents).

use super::host::{Signing, Step, Who};
use super::requests::{shared_key_headers, Op};
use super::PartnerClient;
use crate::credential::CredentialAuth;
use crate::dsse;
use crate::encoding::{rfc3339, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::http::{HttpRequest, JSON};
use crate::keys::random_id;
use crate::telemetry::{self, Batch, Event};

impl PartnerClient {
    pub(super) fn batch_due(&self, now: UnixSeconds) -> bool {
        let Some(first) = self.outbox.oldest_waiting() else {
            return false;
        };
        let limit = self
            .cred
            .as_ref()
            .map_or(1000, |c| c.policy.max_batch_events as usize);
        self.flush || self.outbox.waiting() >= limit || now >= first + self.cfg.max_batch_delay_secs
    }

    pub(super) fn form_batch(&mut self, now: UnixSeconds) -> Result<()> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let max_events = cred.policy.max_batch_events.max(1) as usize;
        // Leave room for the batch header and base64 growth of the envelope.
        let max_bytes = (cred.policy.max_batch_bytes.saturating_sub(1024) * 3 / 4).max(1);
        let batch_id = random_id(&*self.rng, 16)?;
        if self
            .outbox
            .begin_batch(max_events, max_bytes, batch_id, rfc3339(now))?
            .is_some()
        {
            self.rebuild_inflight()?;
        }
        if self.outbox.waiting() == 0 {
            self.flush = false;
        }
        Ok(())
    }

    /// Builds the in-flight batch from what the outbox recorded (same batch id,
    /// sequence and events as before a restart, so the service deduplicates).
    pub(super) fn rebuild_inflight(&mut self) -> Result<()> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let Some(rec) = self.outbox.inflight().cloned() else {
            return Ok(());
        };
        let mut events = self.outbox.inflight_events()?;
        if cred.policy.file_samples != crate::policy::FileSampleSharing::All {
            // Samples leave the endpoint only when the admin's policy says `all`.
            let before = events.len();
            events.retain(|e| !matches!(e, Event::FileSample(_)));
            if self.samples_counted.as_deref() != Some(rec.batch_id.as_str()) {
                for _ in events.len()..before {
                    self.outbox.record_drop(
                        "samples_not_allowed",
                        crate::telemetry::Category::Telemetry,
                    )?;
                }
                self.samples_counted = Some(rec.batch_id.clone());
            }
        }
        self.inflight = Some(Batch {
            v: 1,
            installation_id: cred.installation_id.clone(),
            session_id: None,
            batch_id: rec.batch_id,
            seq: rec.seq,
            created: rec.created.clone(),
            sent: rec.created,
            policy_version: cred.policy.policy_version,
            events,
        });
        Ok(())
    }

    pub(super) fn ingest_request(&mut self, now: UnixSeconds) -> Result<Option<HttpRequest>> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let inflight = self.inflight.as_mut().expect("caller formed a batch");
        inflight.sent = rfc3339(now);
        match &cred.auth {
            CredentialAuth::Key(k) => {
                inflight.session_id = self.session.as_ref().map(|(s, _)| s.clone());
                let unsigned = telemetry::prepare_batch(inflight, &k.public_key(), self.cfg.gzip)?;
                self.sign_request(Signing {
                    op: Op::Ingest,
                    path: "/v1/ingest",
                    content_type: dsse::ENVELOPE_MEDIA_TYPE,
                    base: None,
                    step: Step::Dsse(unsigned),
                    who: Who::Current,
                })
            }
            CredentialAuth::SharedKey { key, .. } => {
                inflight.session_id = None;
                let body = serde_json::to_vec(&*inflight).expect("serializable");
                // Signed with this agent's own device key, named by its
                // installation id: the workspace key does not ingest.
                let headers = shared_key_headers(
                    &cred.installation_id,
                    key,
                    "/v1/downlevel/ingest",
                    &body,
                    now.saturating_add(self.clock_offset),
                );
                self.request(
                    Op::Ingest,
                    "/v1/downlevel/ingest",
                    JSON,
                    body,
                    headers,
                    None,
                )
                .map(Some)
            }
        }
    }

    /// Makes sure a batch is in flight when one should be: the outbox's
    /// recorded in-flight batch rebuilt, else a new one formed once due.
    /// Returns whether a batch is ready to send.
    pub(super) fn batch_ready(&mut self, now: UnixSeconds) -> Result<bool> {
        if self.inflight.is_none() {
            if self.outbox.inflight().is_some() {
                self.rebuild_inflight()?;
            } else if !self.batch_due(now) {
                return Ok(false);
            } else {
                self.form_batch(now)?;
            }
        }
        Ok(self.inflight.is_some())
    }
}
