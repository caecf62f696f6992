/* tslint:disable */
/* eslint-disable */

/** Stable error codes (`EdrlinkError.code`). Only ever added to, never renamed. */
export type ErrorCode =
| "malformed" | "invalid_argument" | "wrong_type" | "too_large"
| "bad_signature" | "unknown_key" | "unsupported_algorithm"
| "token_expired" | "token_not_yet_valid" | "token_revoked" | "token_exhausted"
| "integration_disabled" | "wrong_region" | "epoch_mismatch" | "possible_clone"
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

/** What `inspectToken` returns. No signature was checked. */
export interface TokenInspection {
    /** Signing key id named in the token header. */
    kid: string;
    claims: AccessTokenClaims;
    status: TokenStatus;
    /** Seconds until `exp` at `checked_at` (negative when expired). */
    seconds_left: number;
    /** The time the status was computed for, Unix seconds. */
    checked_at: number;
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
| { type: "failed"; code: ErrorCode };

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



/** The batch in flight (`EdrlinkClient.pendingBatch`): re-sent with the same id after a restore. */
export interface PendingBatch {
    batch_id: string;
    seq: number;
    /** Events in the batch. */
    events: number;
}



/**
 * The partner client for one endpoint (a browser extension, a web app, a
 * Node service). Construct with `new EdrlinkClient({ device, ... })`.
 *
 * Credential storage is the host's job: persist `exportCredential()` when the
 * `credential_changed` event fires (or after `enroll`), restore with
 * `importCredential()` / the `credential` option. The token itself is never kept.
 */
export class EdrlinkClient {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Applies an admin-issued offboarding package (JSON string): verifies it
     * and wipes the credential. Throws `package_invalid`, `bad_signature`, …
     */
    applyOffboardingPackage(packageJson: string): void;
    /**
     * Redeems an access token and performs the first handshake. Resolves to
     * the health report (its `flow` says whether data may flow). Rejects with
     * the service's refusal (`token_expired`, `token_revoked`,
     * `integration_disabled`, `wrong_region`, …) or `transport` /
     * `service_unavailable` when the service cannot be reached in time.
     */
    enroll(token: string): Promise<HealthReport>;
    /**
     * The credential as a JSON string (**holds the installation's private
     * key**), or `undefined` before enrollment. Store it where only this
     * product can read it (extension storage, IndexedDB, a 0600 file).
     */
    exportCredential(): string | undefined;
    /**
     * The client's durable state as a JSON string: `{ v, credential, outbox }`
     * (credential as `exportCredential()` gives it, or `null`; the outbox
     * snapshot with queued events and the in-flight batch). **Holds the private
     * key**: keep it where only the product can read it (`chrome.storage.local`).
     * Save it after every state-changing call and before each batch is sent;
     * restore with `EdrlinkClient.restore(options, state)`.
     * Throws `invalid_state` if called re-entrantly while the client is busy.
     */
    exportState(): string;
    /**
     * Delivers everything queued (handshaking first if needed). Resolves to
     * `{ delivered, queued }`. Rejects with `flow_blocked` when the integration
     * is turned off (events stay queued), `revoked` / `needs_reenroll` when a
     * new token is needed, or the last error when `timeoutSecs` passes.
     */
    flush(timeoutSecs?: number | null): Promise<FlushOutcome>;
    /**
     * Asks the service for a fresh flow decision now. Resolves to the flow
     * state: `"open"`, `"blocked"` (integration turned off: data is kept) or
     * `"revoked"` (a new token is needed).
     */
    handshake(): Promise<FlowState>;
    /**
     * The health report (plain object; times are Unix seconds).
     */
    health(): HealthReport;
    /**
     * Restores a credential exported earlier. Throws `malformed` when it does
     * not parse. The next operation re-handshakes.
     */
    importCredential(json: string): void;
    /**
     * Creates a client. `options.device` is required; see `ClientOptions`.
     * Throws `invalid_argument` for bad options and `malformed` for a bad
     * `credential` / `pinnedKeys`.
     */
    constructor(options: ClientOptions);
    /**
     * Partner-initiated offboarding (opt-out): tells the service, then wipes
     * the credential (`credential_removed` event).
     */
    offboard(reason?: string | null): Promise<void>;
    /**
     * A client rebuilt from `exportState()` output: same options as the
     * constructor, the credential and the outbox (queued events, sequence
     * numbers, the in-flight batch with its id) taken from `state`. The next
     * operation handshakes again and re-sends the in-flight batch first.
     * Throws `malformed` when `state` does not parse (nothing is lost: the
     * caller still holds the string), plus the constructor's errors.
     */
    static restore(options: ClientOptions, state: string): EdrlinkClient;
    /**
     * Queues the EICAR test detection (see `eicarTestEvent`); `flush()` sends it.
     */
    sendTestDetection(filePath?: string | null): void;
    /**
     * Queues a telemetry event (plain object or JSON string). Throws
     * `malformed` for an invalid event and `queue_full` when the queue is full.
     * Call `flush()` to deliver now; otherwise events wait for the batch delay
     * and the next operation that drives the client.
     */
    submit(event: EdrlinkEvent | string): void;
    /**
     * The last flow decision, or `null` before the first handshake.
     */
    readonly flow: FlowState | null;
    /**
     * Installation id assigned by the service, once enrolled.
     */
    readonly installationId: string | undefined;
    /**
     * Whether nothing is queued or in flight.
     */
    readonly isIdle: boolean;
    /**
     * The batch in flight (formed, possibly sent, not yet acknowledged) as
     * `{ batch_id, seq, events }`, or `null`. A restored client re-sends it first.
     */
    readonly pendingBatch: PendingBatch | null;
}

/**
 * An Ed25519 private key (RFC 8032), held inside the module. Its seed never
 * leaves wasm memory except through `EdrlinkClient.exportCredential()`.
 * Call `free()` when done to zeroize it early (otherwise the finalizer does).
 */
export class SigningKey {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * A key from a 32-byte seed. Throws `malformed` for any other length.
     */
    static fromSeed(seed: Uint8Array | number[]): SigningKey;
    /**
     * A fresh key from the platform CSPRNG (`crypto.getRandomValues`).
     */
    static generate(): SigningKey;
    /**
     * Seals `payload` into a DSSE envelope (JSON bytes); same as `sealEnvelope`.
     */
    seal(payloadType: string, payload: Uint8Array | number[]): Uint8Array;
    /**
     * A raw Ed25519 signature (64 bytes) over `message`.
     */
    sign(message: Uint8Array | number[]): Uint8Array;
    /**
     * The derived key id (base64url of the first 16 bytes of SHA-256(public key)).
     */
    readonly keyId: string;
    /**
     * The raw 32-byte public key.
     */
    readonly publicKey: Uint8Array;
}

/**
 * The EICAR test detection event (`test: true`, SHA-256 of the EICAR file,
 * Informational), as the portal's detection test expects it. Submit it with
 * `client.submit(...)` or use `client.sendTestDetection()`.
 */
export function eicarTestEvent(filePath?: string | null, now?: number | null): DetectionEvent;

/**
 * Every stable error code with its number and the HTTP status the service uses.
 */
export function errorCodes(): ErrorCodeInfo[];

/**
 * Decodes an access token for display **without** checking its signature:
 * claims, key id, validity status and seconds left at `now` (default: now).
 * `status` is `"expires_soon"` when fewer than an hour is left.
 * Throws `malformed` / `wrong_type` for anything that is not an access token.
 */
export function inspectToken(token: string, now?: number | null): TokenInspection;

/**
 * The key id of a raw 32-byte Ed25519 public key.
 */
export function keyIdOf(publicKey: Uint8Array | number[]): string;

/**
 * Verifies an envelope with a raw 32-byte public key, checks its payload
 * type equals `expectedType`, and returns the payload bytes.
 * Throws `malformed`, `wrong_type`, `unknown_key` (keyid names another key) or `bad_signature`.
 */
export function openEnvelope(envelope: Uint8Array | number[], expectedType: string, publicKey: Uint8Array | number[]): Uint8Array;

/**
 * The DSSE pre-authentication encoding (the bytes an envelope signature covers):
 * `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
 */
export function pae(payloadType: string, payload: Uint8Array | number[]): Uint8Array;

/**
 * Random bytes from the platform CSPRNG, as base64url (ids, nonces).
 */
export function randomId(bytes?: number | null): string;

/**
 * Seals `payload` with `key` into a DSSE envelope (edrlink profile: one
 * Ed25519 signature with `keyid`) and returns the envelope's JSON bytes.
 * Throws `malformed` when `payloadType` is not 1..128 printable ASCII characters.
 */
export function sealEnvelope(payloadType: string, payload: Uint8Array | number[], key: SigningKey): Uint8Array;

/**
 * A web-protection detection: the core's detection event with `url` set,
 * action `blocked`, no file (`file_path` and `sha256` empty), `test: false`.
 * `severity` is `"informational" | "low" | "medium" | "high" | "critical"`
 * (default `"high"`). Submit it with `client.submit(...)`.
 * Throws `invalid_argument` for an unknown severity, `malformed` when the
 * event does not validate (e.g. an empty URL or threat name).
 */
export function urlDetectionEvent(url: string, threat_name: string, severity: Severity, now?: number | null): DetectionEvent;

/**
 * Parses and validates one telemetry event (object or JSON string) the way
 * `client.submit` does, and returns it normalized. Throws `malformed`.
 */
export function validateEvent(event: EdrlinkEvent | string): EdrlinkEvent;

/**
 * Verifies an envelope with a raw 32-byte public key whatever its payload
 * type, and returns `{ payload_type, keyid, payload }` (payload as `Uint8Array`).
 * Throws like `openEnvelope` except for `wrong_type`.
 */
export function verifyEnvelope(envelope: Uint8Array | number[], publicKey: Uint8Array | number[]): EnvelopeContents;

/**
 * Checks a raw Ed25519 signature. Returns `false` when it does not verify;
 * throws `malformed` when the public key is not 32 bytes.
 */
export function verifySignature(publicKey: Uint8Array | number[], message: Uint8Array | number[], signature: Uint8Array | number[]): boolean;

/**
 * Verifies an access token against a pinned service keyset (JWKS object or
 * JSON string): signature, type, audience and validity window with a clock
 * skew allowance (`skewSecs`, default 60, clamped to 300). Returns the claims.
 * Throws `bad_signature`, `unknown_key`, `token_expired`, `token_not_yet_valid`, …
 */
export function verifyToken(token: string, keyset: Keyset | string, now?: number | null, skewSecs?: number | null): AccessTokenClaims;

/**
 * The SDK version (the `edrlink-core` crate version).
 */
export function version(): string;
