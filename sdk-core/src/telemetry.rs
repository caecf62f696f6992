//! Telemetry: typed sensor events, batches, and their sealing into DSSE
//! envelopes (optionally gzip-compressed; verified before decompressing).

use crate::dsse;
use crate::encoding::{parse_json, parse_rfc3339};
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{Signer, VerifyingKey};
use serde::{Deserialize, Serialize};

mod event_de;

/// Payload type of a JSON batch.
pub const BATCH_TYPE: &str = "application/vnd.edrlink.batch.v1+json";
/// Payload type of a gzip-compressed JSON batch.
pub const BATCH_TYPE_GZIP: &str = "application/vnd.edrlink.batch.v1+json+gzip";
/// Largest decompressed batch the service accepts (20 MiB).
pub const MAX_DECOMPRESSED: usize = 20 * 1024 * 1024;
/// Target batch size (~1 MiB) used when the policy does not say otherwise.
pub const TARGET_BATCH_BYTES: usize = 1024 * 1024;

/// Severity of a detection (the portal's alert severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational (the EICAR test).
    Informational,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// What the product did about a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Only detected.
    Detected,
    /// Blocked (e.g. a download or URL).
    Blocked,
    /// Quarantined.
    Quarantined,
    /// Removed.
    Removed,
    /// Allowed by policy.
    Allowed,
}

/// A malware detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// When it was detected (RFC 3339).
    pub time: String,
    /// Threat name.
    pub threat_name: String,
    /// File path ("" for URL detections).
    pub file_path: String,
    /// SHA-256 of the file, lower-case hex ("" when there is no file).
    pub sha256: String,
    /// Severity.
    pub severity: Severity,
    /// Action taken.
    pub action: Action,
    /// Test detection (EICAR).
    #[serde(default)]
    pub test: bool,
    /// URL, for web-protection detections (browser plugins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When (RFC 3339).
    pub time: String,
    /// Sensor service state.
    pub sensor: crate::handshake::SensorState,
}

/// Any other sensor event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenericEvent {
    /// When (RFC 3339).
    pub time: String,
    /// Event name, e.g. `process_start`.
    pub name: String,
    /// Free-form data.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// A copy of a detected file, uploaded only when the policy's
/// `file_samples` is `all` (the client removes samples otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSample {
    /// When it was taken (RFC 3339).
    pub time: String,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// File name (no directories).
    pub file_name: String,
    /// The file, standard base64 (at most [`MAX_SAMPLE_BYTES`] decoded).
    pub content: String,
}

/// Largest file sample, decoded (3 MiB: base64 and the batch stay inside the 5 MiB envelope cap).
pub const MAX_SAMPLE_BYTES: usize = 3 * 1024 * 1024;

/// One telemetry event. Serialized with its `type` tag first; read by
/// `telemetry/event_de.rs` (the derived reader would buffer every event).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A detection.
    Detection(Detection),
    /// A heartbeat.
    Heartbeat(Heartbeat),
    /// Anything else.
    Generic(GenericEvent),
    /// A file sample (policy-gated).
    FileSample(FileSample),
}

/// How important an event is when the queue is full: telemetry is dropped
/// before detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Generic telemetry and heartbeats.
    Telemetry,
    /// Detections and alerts.
    Detection,
}

impl Event {
    /// The event's time.
    pub fn time(&self) -> &str {
        match self {
            Event::Detection(d) => &d.time,
            Event::Heartbeat(h) => &h.time,
            Event::Generic(g) => &g.time,
            Event::FileSample(f) => &f.time,
        }
    }

    /// The drop category.
    pub fn category(&self) -> Category {
        match self {
            Event::Detection(_) => Category::Detection,
            _ => Category::Telemetry,
        }
    }

    /// Checks field shapes (time, digest, sizes).
    pub fn validate(&self) -> Result<()> {
        parse_rfc3339(self.time())?;
        match self {
            Event::Detection(d) => {
                if d.threat_name.is_empty() || d.threat_name.len() > 512 || d.file_path.len() > 4096
                {
                    return Err(Error::malformed(
                        "detection threat_name must be 1..512 characters, file_path ≤ 4096",
                    ));
                }
                if !d.sha256.is_empty()
                    && (d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(Error::malformed(
                        "detection sha256 must be 64 hex characters",
                    ));
                }
                if d.url.as_ref().is_some_and(|u| u.len() > 8192) {
                    return Err(Error::malformed("detection url too long"));
                }
            }
            Event::Generic(g) => {
                if g.name.is_empty() || g.name.len() > 128 {
                    return Err(Error::malformed("event name must be 1..128 characters"));
                }
            }
            Event::FileSample(f) => {
                if f.sha256.len() != 64
                    || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit())
                    || f.file_name.is_empty()
                    || f.file_name.len() > 255
                {
                    return Err(Error::malformed(
                        "file sample needs a 64-hex sha256 and a file name ≤ 255",
                    ));
                }
                if f.content.len() > MAX_SAMPLE_BYTES / 3 * 4 + 4 {
                    return Err(Error::new(ErrorCode::TooLarge, "file sample exceeds 3 MiB"));
                }
                let bytes = crate::encoding::b64_dsse_decode(&f.content)?;
                if crate::encoding::hex(&crate::encoding::sha256(&bytes))
                    != f.sha256.to_ascii_lowercase()
                {
                    return Err(Error::malformed(
                        "file sample content does not match its sha256",
                    ));
                }
            }
            Event::Heartbeat(_) => {}
        }
        Ok(())
    }

    /// Parses one event from JSON (hostile input safe) and validates it.
    pub fn from_json(json: &str) -> Result<Event> {
        let e: Event = parse_json(json.as_bytes(), 1024 * 1024, "event")?;
        e.validate()?;
        Ok(e)
    }
}

/// The signed batch: the DSSE payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Format version (1).
    pub v: u32,
    /// Installation id.
    pub installation_id: String,
    /// Flow session id (absent for down-level ingest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Unique batch id (deduplication key).
    pub batch_id: String,
    /// Per-installation, strictly increasing sequence number (from 1).
    pub seq: u64,
    /// When the batch was formed (RFC 3339).
    pub created: String,
    /// When this copy was sealed and sent (RFC 3339).
    pub sent: String,
    /// Policy version the endpoint applied.
    pub policy_version: u64,
    /// Events.
    pub events: Vec<Event>,
}

impl Batch {
    /// Checks the header and every event.
    pub fn validate(&self) -> Result<()> {
        if self.v != 1 {
            return Err(Error::malformed("unsupported batch version"));
        }
        if self.installation_id.is_empty()
            || self.batch_id.is_empty()
            || self.batch_id.len() > 128
            || self.seq == 0
        {
            return Err(Error::malformed(
                "batch header needs installation_id, batch_id (≤128) and seq ≥ 1",
            ));
        }
        parse_rfc3339(&self.created)?;
        parse_rfc3339(&self.sent)?;
        self.events.iter().try_for_each(Event::validate)
    }
}

/// Serializes and seals a batch. With `gzip`, the payload is compressed first
/// (and the `+gzip` payload type is used).
pub fn seal_batch(batch: &Batch, key: &dyn Signer, gzip: bool) -> Result<Vec<u8>> {
    prepare_batch(batch, &key.public_key(), gzip)?.sign(key)
}

/// [`seal_batch`] up to the signature: the envelope waiting for `public`'s
/// key to sign its PAE (a host signer may answer later).
pub fn prepare_batch(batch: &Batch, public: &VerifyingKey, gzip: bool) -> Result<dsse::Unsigned> {
    let json =
        serde_json::to_vec(batch).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    if gzip {
        let z = gzip_compress(&json)?;
        dsse::prepare(BATCH_TYPE_GZIP, &z, public)
    } else {
        dsse::prepare(BATCH_TYPE, &json, public)
    }
}

/// Verifies an envelope with `key`, then decompresses (capped) and parses the batch.
pub fn open_batch(parsed: &dsse::Parsed, key: &VerifyingKey) -> Result<Batch> {
    parsed.verify(key)?;
    let json = match parsed.payload_type.as_str() {
        BATCH_TYPE => std::borrow::Cow::Borrowed(parsed.payload.as_slice()),
        BATCH_TYPE_GZIP => {
            std::borrow::Cow::Owned(gzip_decompress(&parsed.payload, MAX_DECOMPRESSED)?)
        }
        other => {
            return Err(Error::new(
                ErrorCode::WrongType,
                format!("unexpected payloadType {other}"),
            ))
        }
    };
    let batch: Batch = parse_json(&json, MAX_DECOMPRESSED, "batch")?;
    batch.validate()?;
    Ok(batch)
}

#[cfg(feature = "gzip")]
fn gzip_compress(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)
        .and_then(|_| enc.finish())
        .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))
}

#[cfg(feature = "gzip")]
fn gzip_decompress(data: &[u8], cap: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(data).take(cap as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|_| Error::malformed("invalid gzip payload"))?;
    if out.len() > cap {
        return Err(Error::new(
            ErrorCode::TooLarge,
            "decompressed batch exceeds 20 MiB",
        ));
    }
    Ok(out)
}

#[cfg(not(feature = "gzip"))]
fn gzip_compress(_: &[u8]) -> Result<Vec<u8>> {
    Err(Error::new(
        ErrorCode::InvalidArgument,
        "built without the gzip feature",
    ))
}

#[cfg(not(feature = "gzip"))]
fn gzip_decompress(_: &[u8], _: usize) -> Result<Vec<u8>> {
    Err(Error::new(
        ErrorCode::WrongType,
        "built without the gzip feature",
    ))
}

/// Estimated serialized size of an event (for batching by bytes).
pub fn event_size(e: &Event) -> usize {
    serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0) + 1
}
