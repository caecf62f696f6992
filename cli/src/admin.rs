//! A small client of the reference service's admin API (what the portal does).

use serde_json::Value;
use std::time::Duration;

/// Admin API client.
pub struct Admin {
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Admin {
    /// A client for `base` (e.g. `http://127.0.0.1:PORT`) with the admin key.
    pub fn new(base: &str, key: &str) -> Admin {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Admin {
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            agent,
        }
    }

    /// Performs one call; returns the status and the JSON body (`null` when empty).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.key);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("authorization", &auth)
                .call(),
            ("PUT", b) => self
                .agent
                .put(&url)
                .header("authorization", &auth)
                .send_json(b.unwrap_or(Value::Null)),
            (_, b) => self
                .agent
                .post(&url)
                .header("authorization", &auth)
                .send_json(b.unwrap_or_else(|| serde_json::json!({}))),
        };
        let mut resp = resp.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, v))
    }

    /// Like [`call`](Self::call) but a non-2xx status is an error naming it.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (status, v) = self.call(method, path, body)?;
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(format!("{method} {path} answered {status}: {v}"))
        }
    }
}
