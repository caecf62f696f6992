//! TypeScript shapes of the plain objects crossing the boundary (appended to
//! the generated .d.ts). Field names follow the protocol JSON (snake_case);
//! option bags are camelCase.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_SECTION: &'static str = TS_TYPES;

#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const TS_TYPES: &str = r#"
/** Stable error codes (`EdrlinkError.code`). Only ever added to, never renamed. */
export type ErrorCode =
  | "malformed" | "invalid_argument" | "wrong_type" | "too_large"
  | "bad_signature" | "unknown_key" | "unsupported_algorithm"
  | "token_expired" | "token_not_yet_valid" | "token_revoked" | "token_exhausted"
  | "integration_disabled" | "wrong_region" | "epoch_mismatch" | "possible_clone"
  | "credential_expired"
  | "stale_message" | "replay" | "session_expired" | "unknown_installation" | "unauthorized"
  | "flow_blocked" | "revoked" | "offboarded" | "needs_reenroll"
  | "batch_too_large" | "rate_limited" | "sequence_regression" | "policy_rollback"
  | "package_invalid" | "queue_full"
  | "transport" | "service_unavailable" | "storage" | "invalid_state" | "internal";

/** One entry of `errorCodes()`. */
export interface ErrorCodeInfo {
  /** snake_case name, as in `EdrlinkError.code` and problem details on the wire. */
  name: ErrorCode;
  /** The C API number (grouped by hundreds). */
  number: number;
  /** HTTP status the service answers with. */
  status: number;
}

/** Claims of an access token (as written in the token; trusted only after `verifyToken`). */
export interface AccessTokenClaims {
  iss: string;
  aud: string;
  /** Token id (revocation, use counting). */
  jti: string;
  /** Issued at, Unix seconds. */
  iat: number;
  /** Not before, Unix seconds. */
  nbf: number;
  /** Expires at, Unix seconds. */
  exp: number;
  partner_id: string;
  tenant_id: string;
  /** Data location of the tenant. */
  region: string;
  /** Base URL of the partner API. */
  service_url: string;
  /** Integration epoch (bumped when the admin turns the integration off). */
  epoch: number;
  /** How many endpoints may redeem this token. */
  max_uses: number;
}

/** Validity of a token at a point in time; `expires_soon` = less than an hour left. */
export type TokenStatus = "not_yet_valid" | "valid" | "expires_soon" | "expired";

/** What `inspectToken` returns (the one inspection shape of every binding). No signature was checked. */
export interface TokenInspection {
  /** Signing key id named in the token header. */
  kid: string;
  claims: AccessTokenClaims;
  status: TokenStatus;
  /** Seconds until `exp` at `checked_at` (negative when expired). */
  seconds_left: number;
  /** `exp` as RFC 3339 (UTC). */
  expires_at: string;
  /** Below this many seconds left, `status` is `"expires_soon"`. */
  expiry_warning_secs: number;
  /** The time the status was computed for, Unix seconds. */
  checked_at: number;
  /** Always false: inspection reads, `verifyToken` checks. */
  verified: false;
}

/** An RFC 8037 OKP/Ed25519 public key. */
export interface Jwk {
  kty: "OKP";
  crv: "Ed25519";
  /** base64url public key. */
  x: string;
  kid?: string;
  alg?: "EdDSA";
  /** Not trusted after this Unix time (service key rotation overlap). */
  not_after?: number;
}

/** The service's signing keys (JWKS), current first. */
export interface Keyset {
  keys: Jwk[];
}

/** What `verifyEnvelope` returns. */
export interface EnvelopeContents {
  payload_type: string;
  /** Key id of the signer. */
  keyid: string;
  payload: Uint8Array;
}

/** Facts about the device, reported at redemption (each 1..256 printable characters). */
export interface DeviceFacts {
  device_id: string;
  hostname: string;
  /** `windows`, `macos`, `linux`, `android`, `ios`, `chromeos`, `browser`. */
  os: string;
  os_version: string;
  product: string;
  product_version: string;
}

export type Severity = "informational" | "low" | "medium" | "high" | "critical";
export type DetectionAction = "detected" | "blocked" | "quarantined" | "removed" | "allowed";
export type SensorState = "running" | "stopped";

/** A malware detection. */
export interface DetectionEvent {
  type: "detection";
  /** RFC 3339 time. */
  time: string;
  threat_name: string;
  /** "" for URL detections. */
  file_path: string;
  /** Lower-case hex SHA-256 of the file, or "". */
  sha256: string;
  severity: Severity;
  action: DetectionAction;
  /** A test detection (EICAR). */
  test?: boolean;
  /** For web-protection detections. */
  url?: string;
}

/** A heartbeat (the client sends these itself). */
export interface HeartbeatEvent {
  type: "heartbeat";
  time: string;
  sensor: SensorState;
}

/** Any other sensor event. */
export interface GenericEvent {
  type: "generic";
  time: string;
  /** e.g. `process_start` (1..128 characters). */
  name: string;
  data?: unknown;
}

/** One telemetry event. */
export type EdrlinkEvent = DetectionEvent | HeartbeatEvent | GenericEvent;

/** The service's flow decision. */
export type FlowState = "open" | "blocked" | "revoked";

/** The partner-side health report. Times are Unix seconds (local clock). */
export interface HealthReport {
  /** Onboarded, flow open, no backoff in progress. */
  healthy: boolean;
  /** Holds a credential. */
  onboarded: boolean;
  installation_id: string | null;
  /** `null` before the first handshake. */
  flow: FlowState | null;
  /** Revoked, offboarded or repeated 401s: an admin must generate a new token. */
  needs_new_token: boolean;
  last_handshake: number | null;
  last_send: number | null;
  queued_events: number;
  queued_bytes: number;
  oldest_queued_age: number | null;
  sent_events: number;
  /** Dropped events by `reason/category`. */
  drops: Record<string, number>;
  /** Service clock minus local clock, seconds. */
  clock_offset: number;
  /** "code: message" of the last error. */
  last_error: string | null;
  /** Next retry time while backing off. */
  next_attempt: number | null;
}

/** What `flush` resolves to. */
export interface FlushOutcome {
  /** Events acknowledged by the service during this flush (heartbeats included). */
  delivered: number;
  /** Events still queued. */
  queued: number;
}

/** Things the host may act on (see `ClientOptions.onEvent`). */
export type ClientEvent =
  | { type: "credential_changed" }
  | { type: "credential_removed" }
  | { type: "flow_changed"; flow: FlowState }
  | { type: "delivered"; count: number }
  | { type: "failed"; code: ErrorCode }
  | { type: "needs_new_token"; code: ErrorCode }
  | { type: "queue_full" }
  | { type: "events_dropped"; reason: string; count: number }
  | { type: "credential_rotated" };

/** A `fetch`-compatible function (the global `fetch` by default). */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: Uint8Array }) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

/** Options of `new EdrlinkClient(options)`. */
export interface ClientOptions {
  /** Facts about this device (required). */
  device: DeviceFacts;
  /** A credential from `exportCredential()` to resume with. */
  credential?: string;
  /** Service keyset pinned out of band (otherwise trust is bound to the token). */
  pinnedKeys?: Keyset | string;
  /** Use this base URL instead of the token's `service_url` (e.g. a same-origin proxy). */
  serviceUrl?: string;
  /** Compress batches (only in builds with the `gzip` feature; otherwise throws `invalid_argument`). */
  gzip?: boolean;
  /** Queue bound in events (default 100000). */
  maxQueueEvents?: number;
  /** Queue bound in bytes (default 100 MiB). */
  maxQueueBytes?: number;
  /** Send a partial batch once its oldest event waited this long (default 5 s). */
  maxBatchDelaySecs?: number;
  /** Full-queue policy (default `refuse_new`: `submit` throws `queue_full`). */
  whenFull?: "refuse_new" | "drop_oldest";
  /** Time limit of `enroll`, `handshake`, `flush`, `offboard` in seconds (default 15). */
  timeoutSecs?: number;
  /** HTTP function to use instead of the global `fetch`. */
  fetch?: FetchLike;
  /** Called synchronously with each client event (e.g. persist the credential on `credential_changed`). */
  onEvent?: (event: ClientEvent) => void;
}
"#;
