//! Building the signed interactive requests (redeem, down-level register,
//! hello, rotate, opt-out) and the one gate every request passes
//! (`PartnerClient::request`: URL check, request id, the operation in
//! flight). Bodies and headers carry tokens, keys and MACs, so only method
//! and path are ever logged.

use super::check_service_url;
use super::PartnerClient;
use crate::diag::LogLevel;
use crate::downlevel::{self, RegisterRequest};
use crate::encoding::{rfc3339, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{self, Hello};
use crate::http::{HttpRequest, JOSE, JSON};
use crate::keys::SigningKey;
use crate::redeem::PendingRedeem;
use crate::{offboard, rotate};

#[derive(Debug)]
pub(super) enum Op {
    Redeem,
    Register,
    Handshake { nonce: String },
    Ingest,
    Offboard { nonce: String },
    Rotate { nonce: String, new_key: SigningKey },
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
    ) -> Result<HttpRequest> {
        let url = p.service_url().to_owned();
        let body = p.request(self.corrected(now), &*self.rng);
        self.pending_redeem = Some(p);
        self.request(
            Op::Redeem,
            "/v1/redeem",
            JOSE,
            body?.into_bytes(),
            vec![],
            Some(&url),
        )
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
    ) -> Result<HttpRequest> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let (body, nonce) = offboard::request(cred, reason, self.corrected(now), &*self.rng)?;
        self.request(
            Op::Offboard { nonce },
            "/v1/offboard",
            JOSE,
            body.into_bytes(),
            vec![],
            None,
        )
    }

    /// The signed hello: sensor state, sequence, queue depth and the drops
    /// it reports (cleared from the outbox once the decision arrives).
    pub(super) fn hello_request(&mut self, now: UnixSeconds) -> Result<HttpRequest> {
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
        self.reported_drops = h.drops.clone();
        let (body, nonce) = handshake::hello(cred, h, self.corrected(now), &*self.rng)?;
        self.request(
            Op::Handshake { nonce },
            "/v1/handshake",
            JOSE,
            body.into_bytes(),
            vec![],
            None,
        )
    }

    /// The rotation request with a freshly generated key (kept with the
    /// operation: it replaces the old key only once the service answered).
    pub(super) fn rotate_request(&mut self, now: UnixSeconds) -> Result<HttpRequest> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let new_key = SigningKey::generate(&*self.rng)?;
        let (body, nonce) = rotate::request(cred, &new_key, self.corrected(now), &*self.rng)?;
        self.request(
            Op::Rotate { nonce, new_key },
            "/v1/rotate",
            JOSE,
            body.into_bytes(),
            vec![],
            None,
        )
    }
}
