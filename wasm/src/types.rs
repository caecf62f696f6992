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
  | "transport" | "service_unavailable" | "storage" | "invalid_state" | "signer_failed" | "internal";

/**
 * The core's error record, the same in every language: `health().last_error`
 * (snake_case, as on the wire) and the properties of `EdrlinkError` (camelCase).
 */
export interface ErrorInfo {
  code: ErrorCode;
  /** The C API number of the code. */
  number: number;
  /** The HTTP status the service answers with for this code. */
  http_status: number;
  /** Seconds to wait before retrying (the service's `Retry-After`), or null. */
  retry_after: number | null;
  /** Human-readable detail (never holds a secret). */
  detail: string;
}

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

/**
 * A public key as a JWK: RFC 8037 OKP/Ed25519 (service and device keys) or RFC 7518
 * EC/P-256 (device keys, e.g. WebCrypto keys where Ed25519 is unavailable).
 */
export interface Jwk {
  kty: "OKP" | "EC";
  crv: "Ed25519" | "P-256";
  /** base64url public key (Ed25519) or x coordinate (P-256). */
  x: string;
  /** base64url y coordinate (P-256 only). */
  y?: string;
  kid?: string;
  alg?: "EdDSA" | "ES256";
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
  /** The last error (typed), or null. */
  last_error: ErrorInfo | null;
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

/** Why a new access token is needed (`needs_new_token` events). */
export type NeedsNewTokenCode = "revoked" | "offboarded" | "epoch_mismatch" | "credential_expired" | "needs_reenroll";

/**
 * State changes the host may act on (see `ClientOptions.onEvent`); the same JSON
 * objects in every language.
 */
export type ClientEvent =
  | { type: "credential_changed" }
  | { type: "credential_removed" }
  | { type: "credential_rotated" }
  | { type: "flow_changed"; flow: FlowState }
  | { type: "delivered"; count: number }
  | { type: "failed"; code: ErrorCode }
  | { type: "needs_new_token"; code: NeedsNewTokenCode }
  | { type: "queue_full" }
  | { type: "events_dropped"; reason: string; count: number };

/** Severity of a diagnostic record (`onLog`), most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug" | "trace";

/** A `fetch`-compatible function (the global `fetch` by default). Every response header is passed to the client. */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: Uint8Array }) => Promise<{
  status: number;
  /** A `Headers` object (or anything iterable over [name, value] pairs). */
  headers: Iterable<[string, string]> | { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

/**
 * Every option of the shared options schema (docs/OPTIONS.md) that applies in JS, by
 * its camelCase name, with its default (`defaultOptions()`). Values are checked by
 * the core: out of range → `invalid_argument` naming the option.
 */
export interface ClientDefaults {
  /** Base URL of the partner API instead of the token's (https; http only to loopback). Default null. */
  serviceUrl: string | null;
  /** Service keyset (JWKS, object or JSON text) pinned out of band. Default null: trust is bound to the token's signer. */
  pinnedKeys: Keyset | string | null;
  /** Compress batches (builds with the `gzip` feature only). Default false. */
  gzip: boolean;
  /** Queue bound in events. Default 100000. */
  maxQueueEvents: number;
  /** Queue bound in bytes. Default 104857600 (100 MiB). */
  maxQueueBytes: number;
  /** Full queue: `refuse_new` (`submit` throws `queue_full`) or `drop_oldest`. Default `refuse_new`. */
  whenFull: "refuse_new" | "drop_oldest";
  /** Oldest queued event kept, seconds. Default 604800 (7 days). */
  maxQueueAgeSecs: number;
  /** Send a partial batch once its oldest event waited this long, seconds. Default 5. */
  maxBatchDelaySecs: number;
  /** Re-handshake period while the flow is blocked, seconds. Default 300. */
  blockedRecheckSecs: number;
  /** Cap of the exponential backoff, seconds. Default 300. */
  maxBackoffSecs: number;
  /** Random wait before draining after an outage, seconds. Default 30. */
  recoveryJitterSecs: number;
  /** Pacing while draining a large queue, batches per second. Default 20. */
  maxBatchesPerSecond: number;
  /** How long enroll, handshake, offboard and rotate keep retrying (and flush's default), seconds. Default 30. */
  opTimeoutSecs: number;
  /** How long one call of the host's `keys` may take before it counts as failed (`signer_failed`), seconds. Default 10. */
  signerTimeoutSecs: number;
}

/**
 * A device key store the host keeps (`ClientOptions.keys`): edrlink never sees the
 * private key. Every call is awaited for at most `signerTimeoutSecs`; a rejection, a
 * timeout or a signature that does not verify with the key's public key fails the
 * operation with `signer_failed` and drops nothing queued (the batch is sealed again
 * on the next attempt). `webCryptoKeys()` is one (the browser default).
 */
export interface HostKeys {
  /**
   * Makes a new key pair (Ed25519 or ECDSA P-256, the host chooses): its handle (the
   * host's own name for it, 1..256 bytes, not secret) and its public key (Ed25519: 32
   * raw bytes; P-256: the 65-byte uncompressed point `04‖x‖y`). Called at enrollment
   * and at every rotation.
   */
  createKey(): Promise<{ handle: string; publicKey: Uint8Array }>;
  /**
   * Signs `message` with the key `handle`. Ed25519: 64 bytes. P-256: ECDSA over
   * SHA-256 of `message`, raw `r‖s` (WebCrypto's form) or DER.
   */
  sign(handle: string, message: Uint8Array): Promise<Uint8Array | ArrayBuffer>;
  /** Deletes a key edrlink no longer uses (after a rotation, after offboarding). Best effort. */
  deleteKey(handle: string): Promise<void>;
}

/**
 * Where the credential JSON lives (`ClientOptions.store`): loaded before the first
 * operation, saved when it changes (enrollment, rotation), deleted at offboarding.
 * A failing call fails the operation with `storage`.
 */
export interface CredentialStore {
  /** The saved credential JSON, or null. */
  load(): Promise<string | null>;
  save(json: string): Promise<void>;
  delete(): Promise<void>;
}

/** Options of `new EdrlinkClient(options)`: `device`, any schema option, and the JS hooks. */
export interface ClientOptions extends Partial<ClientDefaults> {
  /** Facts about this device (required). */
  device: DeviceFacts;
  /** A credential from `exportCredential()` to resume with. */
  credential?: string;
  /** HTTP function to use instead of the global `fetch`. */
  fetch?: FetchLike;
  /** Called synchronously with each state-change event (e.g. persist the credential on `credential_changed`). */
  onEvent?: (event: ClientEvent) => void;
  /**
   * Receives edrlink's diagnostics (never a secret). Default: none. To see them in the
   * console: `onLog: (level, message) => console.log(`[edrlink] ${level}: ${message}`)`.
   */
  onLog?: (level: LogLevel, message: string) => void;
  /** Least severe level passed to `onLog`. Default `info`. */
  logLevel?: LogLevel;
  /**
   * Device keys the host keeps. Default in browsers (the web entry, where `crypto.subtle`
   * and `indexedDB` exist): `webCryptoKeys()`, non-extractable WebCrypto keys in IndexedDB.
   * In Node, or with `"software"`: a software Ed25519 key held in the credential.
   */
  keys?: HostKeys | "software";
  /** Where the credential JSON is kept (loaded, saved and deleted by the client). Default: none (use `onEvent` + `exportCredential()`). */
  store?: CredentialStore;
}
"#;
