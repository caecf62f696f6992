//! Building the signed interactive requests (redeem, down-level register,
//! hello, rotate, opt-out) and the one gate every request passes
//! (`PartnerClient::request`: URL check, request id, the operation in
//! flight). Bodies and headers carry tokens, keys and MACs, so only method
//! and path are ever logged.

use super::check_service_url;
use super::host::{Signing, Step, Waiting, Who};
use super::HostRequestKind;
use super::PartnerClient;
use crate::diag::LogLevel;
use crate::downlevel::{self, RegisterRequest};
use crate::encoding::{rfc3339, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{self, Hello};
use crate::http::{HttpRequest, JOSE, JSON};
use crate::keys::SigningKey;
use crate::redeem::PendingRedeem;
use crate::signer::InstallationKey;
use crate::{offboard, rotate};

#[derive(Debug)]
pub(super) enum Op {
    Redeem,
    Register,
    Handshake {
        nonce: String,
    },
    Ingest,
    Offboard {
        nonce: String,
    },
    Rotate {
        nonce: String,
        new_key: InstallationKey,
    },
}

impl Op {
    /// The request's path, for diagnostics.
    pub(super) fn path(&self, downlevel: bool) -> &'static str {
        match self {
            Op::Redeem => "/v1/redeem",
            Op::Register => "/v1/downlevel/register",
            Op::Handshake { .. } => "/v1/handshake",
            Op::Ingest if downlevel => "/v1/downlevel/ingest",
            Op::Ingest => "/v1/ingest",
            Op::Offboard { .. } => "/v1/offboard",
            Op::Rotate { .. } => "/v1/rotate",
        }
    }
}

pub(super) fn shared_key_headers(
    workspace_id: &str,
    key: &[u8],
    path: &str,
    body: &[u8],
    now: UnixSeconds,
) -> Vec<(String, String)> {
    let date = rfc3339(now);
    let auth = downlevel::authorization(workspace_id, key, "POST", path, JSON, &date, body);
    vec![
        ("authorization".into(), auth),
        (downlevel::DATE_HEADER.into(), date),
    ]
}

impl PartnerClient {
    pub(super) fn request(
        &mut self,
        op: Op,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        extra: Vec<(String, String)>,
        base: Option<&str>,
    ) -> Result<HttpRequest> {
        // The last gate before the host is asked to send anything.
        let base = self.base_url(base);
        check_service_url(&base)?;
        let id = self.next_id;
        self.next_id += 1;
        self.op = Some((id, op));
        // Method and path only: bodies and headers carry tokens, keys and MACs.
        self.log(LogLevel::Debug, format!("request #{id}: POST {path}"));
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        headers.extend(extra);
        Ok(HttpRequest {
            id,
            method: "POST".into(),
            url: format!("{base}{path}"),
            headers,
            body,
        })
    }

    /// The redemption request for `p` (kept pending until its answer, so a
    /// retry sends the same proof of possession with a fresh signature).
    pub(super) fn redeem_request(
        &mut self,
        mut p: PendingRedeem,
        now: UnixSeconds,
    ) -> Result<Option<HttpRequest>> {
        let url = p.service_url().to_owned();
        let unsigned = p.request_unsigned(self.corrected(now), &*self.rng);
        self.pending_redeem = Some(p);
        self.sign_request(Signing {
            op: Op::Redeem,
            path: "/v1/redeem",
            content_type: JOSE,
            base: Some(url),
            step: Step::Jws(unsigned?),
            who: Who::Enrolling,
        })
    }

    /// The down-level registration request, signed with the package's
    /// workspace key (the only request that key ever signs).
    pub(super) fn register_request(&mut self, now: UnixSeconds) -> Result<Option<HttpRequest>> {
        let Some(p) = &self.pending_register else {
            return Ok(None);
        };
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&RegisterRequest {
                enrollment_id: p.enrollment_id.clone(),
                device: self.cfg.device.clone(),
                device_key: p.device_key.to_b64url().to_string(),
            })
            .expect("serializable"),
        );
        let (ws, key, url) = (
            p.package.workspace_id.clone(),
            p.package.key_bytes()?,
            p.package.service_url.clone(),
        );
        let headers = shared_key_headers(
            &ws,
            &key,
            "/v1/downlevel/register",
            &body,
            self.corrected(now),
        );
        self.request(
            Op::Register,
            "/v1/downlevel/register",
            JSON,
            body.to_vec(),
            headers,
            Some(&url),
        )
        .map(Some)
    }

    /// The signed opt-out.
    pub(super) fn offboard_request(
        &mut self,
        reason: &str,
        now: UnixSeconds,
    ) -> Result<Option<HttpRequest>> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let (unsigned, nonce) =
            offboard::request_unsigned(cred, reason, self.corrected(now), &*self.rng)?;
        self.sign_request(Signing {
            op: Op::Offboard { nonce },
            path: "/v1/offboard",
            content_type: JOSE,
            base: None,
            step: Step::Jws(unsigned),
            who: Who::Current,
        })
    }

    /// The signed hello: sensor state, sequence, queue depth and the drops
    /// it reports (cleared from the outbox once the decision arrives).
    pub(super) fn hello_request(&mut self, now: UnixSeconds) -> Result<Option<HttpRequest>> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let h = Hello {
            installation_id: String::new(),
            nonce: String::new(),
            iat: 0,
            sensor: self.sensor,
            last_seq: self.outbox.next_seq().saturating_sub(1),
            policy_version: cred.policy.policy_version,
            clock_offset: self.clock_offset,
            queued_events: self.outbox.len() as u64,
            drops: self.outbox.drops().clone(),
        };
        let drops = h.drops.clone();
        let (unsigned, nonce) =
            handshake::hello_unsigned(cred, h, self.corrected(now), &*self.rng)?;
        self.reported_drops = drops;
        self.sign_request(Signing {
            op: Op::Handshake { nonce },
            path: "/v1/handshake",
            content_type: JOSE,
            base: None,
            step: Step::Jws(unsigned),
            who: Who::Current,
        })
    }

    /// The rotation request with a fresh key (kept with the operation: it
    /// replaces the old one only once the service answered). The key is
    /// generated here, or made by the host when the host keeps keys. (A key
    /// from a rotation whose answer was lost stays the candidate the client
    /// switches to if the service refuses the old key.)
    pub(super) fn rotate_request(&mut self, now: UnixSeconds) -> Result<Option<HttpRequest>> {
        let new_key = match self.rotation_new.take() {
            Some(k) => k,
            None if self.host_keys => {
                self.ask_host(HostRequestKind::CreateKey, Some(Waiting::RotationKey));
                return Ok(None);
            }
            None => InstallationKey::Software(SigningKey::generate(&*self.rng)?),
        };
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let unsigned =
            rotate::Unsigned::new(cred, &new_key.public_key(), self.corrected(now), &*self.rng)?;
        let nonce = unsigned.nonce().to_owned();
        self.sign_request(Signing {
            op: Op::Rotate { nonce, new_key },
            path: "/v1/rotate",
            content_type: JOSE,
            base: None,
            step: Step::RotateProof(unsigned),
            who: Who::New,
        })
    }
}
