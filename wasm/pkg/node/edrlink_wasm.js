/* @ts-self-types="./edrlink_wasm.d.ts" */

/**
 * The partner client for one endpoint (a browser extension, a web app, a
 * Node service). Construct with `new EdrlinkClient({ device, ... })`.
 *
 * Credential storage is the host's job: persist `exportCredential()` when the
 * `credential_changed` event fires (or after `enroll`), restore with
 * `importCredential()` / the `credential` option. The token itself is never kept.
 */
class EdrlinkClient {
    static __wrap(ptr) {
        const obj = Object.create(EdrlinkClient.prototype);
        obj.__wbg_ptr = ptr;
        EdrlinkClientFinalization.register(obj, obj.__wbg_ptr, obj);
        return obj;
    }
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        EdrlinkClientFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_edrlinkclient_free(ptr, 0);
    }
    /**
     * Applies an admin-issued offboarding package (JSON string): verifies it
     * and wipes the credential. Throws `package_invalid`, `bad_signature`, …
     * @param {string} packageJson
     */
    applyOffboardingPackage(packageJson) {
        const ptr0 = passStringToWasm0(packageJson, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.edrlinkclient_applyOffboardingPackage(this.__wbg_ptr, ptr0, len0);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * Redeems an access token and performs the first handshake. Resolves to
     * the health report (its `flow` says whether data may flow). Rejects with
     * the service's refusal (`token_expired`, `token_revoked`,
     * `integration_disabled`, `wrong_region`, …) or `transport` /
     * `service_unavailable` when the service cannot be reached in time.
     * @param {string} token
     * @returns {Promise<HealthReport>}
     */
    enroll(token) {
        const ptr0 = passStringToWasm0(token, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.edrlinkclient_enroll(this.__wbg_ptr, ptr0, len0);
        return ret;
    }
    /**
     * The credential as a JSON string (**holds the installation's private
     * key**), or `undefined` before enrollment. Store it where only this
     * product can read it (extension storage, IndexedDB, a 0600 file).
     * @returns {string | undefined}
     */
    exportCredential() {
        const ret = wasm.edrlinkclient_exportCredential(this.__wbg_ptr);
        let v1;
        if (ret[0] !== 0) {
            v1 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v1;
    }
    /**
     * The client's durable state as a JSON string: `{ v, credential, outbox }`
     * (credential as `exportCredential()` gives it, or `null`; the outbox
     * snapshot with queued events and the in-flight batch). **Holds the private
     * key**: keep it where only the product can read it (`chrome.storage.local`).
     * Save it after every state-changing call and before each batch is sent;
     * restore with `EdrlinkClient.restore(options, state)`.
     * Throws `invalid_state` if called re-entrantly while the client is busy.
     * @returns {string}
     */
    exportState() {
        let deferred2_0;
        let deferred2_1;
        try {
            const ret = wasm.edrlinkclient_exportState(this.__wbg_ptr);
            var ptr1 = ret[0];
            var len1 = ret[1];
            if (ret[3]) {
                ptr1 = 0; len1 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred2_0 = ptr1;
            deferred2_1 = len1;
            return getStringFromWasm0(ptr1, len1);
        } finally {
            wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
        }
    }
    /**
     * The last flow decision, or `null` before the first handshake.
     * @returns {FlowState | null}
     */
    get flow() {
        const ret = wasm.edrlinkclient_flow(this.__wbg_ptr);
        return ret;
    }
    /**
     * Delivers everything queued (handshaking first if needed). Resolves to
     * `{ delivered, queued }`. Rejects with `flow_blocked` when the integration
     * is turned off (events stay queued), `revoked` / `needs_reenroll` when a
     * new token is needed, or the last error when `timeoutSecs` passes.
     * @param {number | null} [timeoutSecs]
     * @returns {Promise<FlushOutcome>}
     */
    flush(timeoutSecs) {
        const ret = wasm.edrlinkclient_flush(this.__wbg_ptr, !isLikeNone(timeoutSecs), isLikeNone(timeoutSecs) ? 0 : timeoutSecs);
        return ret;
    }
    /**
     * Asks the service for a fresh flow decision now. Resolves to the flow
     * state: `"open"`, `"blocked"` (integration turned off: data is kept) or
     * `"revoked"` (a new token is needed).
     * @returns {Promise<FlowState>}
     */
    handshake() {
        const ret = wasm.edrlinkclient_handshake(this.__wbg_ptr);
        return ret;
    }
    /**
     * The health report (plain object; times are Unix seconds).
     * @returns {HealthReport}
     */
    health() {
        const ret = wasm.edrlinkclient_health(this.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * Restores a credential exported earlier. Throws `malformed` when it does
     * not parse. The next operation re-handshakes.
     * @param {string} json
     */
    importCredential(json) {
        const ptr0 = passStringToWasm0(json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.edrlinkclient_importCredential(this.__wbg_ptr, ptr0, len0);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * Installation id assigned by the service, once enrolled.
     * @returns {string | undefined}
     */
    get installationId() {
        const ret = wasm.edrlinkclient_installationId(this.__wbg_ptr);
        let v1;
        if (ret[0] !== 0) {
            v1 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v1;
    }
    /**
     * Whether nothing is queued or in flight.
     * @returns {boolean}
     */
    get isIdle() {
        const ret = wasm.edrlinkclient_isIdle(this.__wbg_ptr);
        return ret !== 0;
    }
    /**
     * Creates a client. `options.device` is required; see `ClientOptions`.
     * Throws `invalid_argument` for bad options and `malformed` for a bad
     * `credential` / `pinnedKeys`.
     * @param {ClientOptions} options
     */
    constructor(options) {
        const ret = wasm.edrlinkclient_new(options);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        EdrlinkClientFinalization.register(this, this.__wbg_ptr, this);
        return this;
    }
    /**
     * Partner-initiated offboarding (opt-out): tells the service, then wipes
     * the credential (`credential_removed` event).
     * @param {string | null} [reason]
     * @returns {Promise<void>}
     */
    offboard(reason) {
        var ptr0 = isLikeNone(reason) ? 0 : passStringToWasm0(reason, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        const ret = wasm.edrlinkclient_offboard(this.__wbg_ptr, ptr0, len0);
        return ret;
    }
    /**
     * The batch in flight (formed, possibly sent, not yet acknowledged) as
     * `{ batch_id, seq, events }`, or `null`. A restored client re-sends it first.
     * @returns {PendingBatch | null}
     */
    get pendingBatch() {
        const ret = wasm.edrlinkclient_pendingBatch(this.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * A client rebuilt from `exportState()` output: same options as the
     * constructor, the credential and the outbox (queued events, sequence
     * numbers, the in-flight batch with its id) taken from `state`. The next
     * operation handshakes again and re-sends the in-flight batch first.
     * Throws `malformed` when `state` does not parse (nothing is lost: the
     * caller still holds the string), plus the constructor's errors.
     * @param {ClientOptions} options
     * @param {string} state
     * @returns {EdrlinkClient}
     */
    static restore(options, state) {
        const ptr0 = passStringToWasm0(state, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.edrlinkclient_restore(options, ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return EdrlinkClient.__wrap(ret[0]);
    }
    /**
     * Queues the EICAR test detection (see `eicarTestEvent`); `flush()` sends it.
     * @param {string | null} [filePath]
     */
    sendTestDetection(filePath) {
        var ptr0 = isLikeNone(filePath) ? 0 : passStringToWasm0(filePath, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        const ret = wasm.edrlinkclient_sendTestDetection(this.__wbg_ptr, ptr0, len0);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * Queues a telemetry event (plain object or JSON string). Throws
     * `malformed` for an invalid event and `queue_full` when the queue is full.
     * Call `flush()` to deliver now; otherwise events wait for the batch delay
     * and the next operation that drives the client.
     * @param {EdrlinkEvent | string} event
     */
    submit(event) {
        const ret = wasm.edrlinkclient_submit(this.__wbg_ptr, event);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
}
if (Symbol.dispose) EdrlinkClient.prototype[Symbol.dispose] = EdrlinkClient.prototype.free;
exports.EdrlinkClient = EdrlinkClient;

/**
 * An Ed25519 private key (RFC 8032), held inside the module. Its seed never
 * leaves wasm memory except through `EdrlinkClient.exportCredential()`.
 * Call `free()` when done to zeroize it early (otherwise the finalizer does).
 */
class SigningKey {
    static __wrap(ptr) {
        const obj = Object.create(SigningKey.prototype);
        obj.__wbg_ptr = ptr;
        SigningKeyFinalization.register(obj, obj.__wbg_ptr, obj);
        return obj;
    }
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        SigningKeyFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_signingkey_free(ptr, 0);
    }
    /**
     * A key from a 32-byte seed. Throws `malformed` for any other length.
     * @param {Uint8Array | number[]} seed
     * @returns {SigningKey}
     */
    static fromSeed(seed) {
        const ptr0 = passArray8ToWasm0(seed, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.signingkey_fromSeed(ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return SigningKey.__wrap(ret[0]);
    }
    /**
     * A fresh key from the platform CSPRNG (`crypto.getRandomValues`).
     * @returns {SigningKey}
     */
    static generate() {
        const ret = wasm.signingkey_generate();
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return SigningKey.__wrap(ret[0]);
    }
    /**
     * The derived key id (base64url of the first 16 bytes of SHA-256(public key)).
     * @returns {string}
     */
    get keyId() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.signingkey_keyId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The raw 32-byte public key.
     * @returns {Uint8Array}
     */
    get publicKey() {
        const ret = wasm.signingkey_publicKey(this.__wbg_ptr);
        var v1 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
        wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        return v1;
    }
    /**
     * Seals `payload` into a DSSE envelope (JSON bytes); same as `sealEnvelope`.
     * @param {string} payloadType
     * @param {Uint8Array | number[]} payload
     * @returns {Uint8Array}
     */
    seal(payloadType, payload) {
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passStringToWasm0(payloadType, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passArray8ToWasm0(payload, wasm.__wbindgen_malloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        const ret = wasm.signingkey_seal(this.__wbg_ptr, ptr0, len0, ptr1, len1);
        if (ret[3]) {
            throw takeFromExternrefTable0(ret[2]);
        }
        var v3 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
        wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        return v3;
    }
    /**
     * A raw Ed25519 signature (64 bytes) over `message`.
     * @param {Uint8Array | number[]} message
     * @returns {Uint8Array}
     */
    sign(message) {
        const ptr0 = passArray8ToWasm0(message, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.signingkey_sign(this.__wbg_ptr, ptr0, len0);
        var v2 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
        wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        return v2;
    }
}
if (Symbol.dispose) SigningKey.prototype[Symbol.dispose] = SigningKey.prototype.free;
exports.SigningKey = SigningKey;

/**
 * Registers the `EdrlinkError` class errors are constructed with. Called once
 * by the package's ESM wrapper; without it errors are plain `Error`s named
 * `EdrlinkError` carrying the same properties.
 * @param {Function} ctor
 */
function __registerErrorClass(ctor) {
    wasm.__registerErrorClass(ctor);
}
exports.__registerErrorClass = __registerErrorClass;

/**
 * The EICAR test detection event (`test: true`, SHA-256 of the EICAR file,
 * Informational), as the portal's detection test expects it. Submit it with
 * `client.submit(...)` or use `client.sendTestDetection()`.
 * @param {string | null} [filePath]
 * @param {number | null} [now]
 * @returns {DetectionEvent}
 */
function eicarTestEvent(filePath, now) {
    const val2 = +(isLikeNone(now) ? 0 : now);
    var ptr0 = isLikeNone(filePath) ? 0 : passStringToWasm0(filePath, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
    var len0 = WASM_VECTOR_LEN;
    const ret = wasm.eicarTestEvent(ptr0, len0, !isLikeNone(now), val2);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.eicarTestEvent = eicarTestEvent;

/**
 * Every stable error code with its number and the HTTP status the service uses.
 * @returns {ErrorCodeInfo[]}
 */
function errorCodes() {
    const ret = wasm.errorCodes();
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.errorCodes = errorCodes;

/**
 * Decodes an access token for display **without** checking its signature:
 * claims, key id, validity status and seconds left at `now` (default: now).
 * `status` is `"expires_soon"` when fewer than an hour is left.
 * Throws `malformed` / `wrong_type` for anything that is not an access token.
 * @param {string} token
 * @param {number | null} [now]
 * @returns {TokenInspection}
 */
function inspectToken(token, now) {
    const val2 = +(isLikeNone(now) ? 0 : now);
    const ptr0 = passStringToWasm0(token, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
    const len0 = WASM_VECTOR_LEN;
    const ret = wasm.inspectToken(ptr0, len0, !isLikeNone(now), val2);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.inspectToken = inspectToken;

/**
 * The key id of a raw 32-byte Ed25519 public key.
 * @param {Uint8Array | number[]} publicKey
 * @returns {string}
 */
function keyIdOf(publicKey) {
    let deferred3_0;
    let deferred3_1;
    try {
        const ptr0 = passArray8ToWasm0(publicKey, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.keyIdOf(ptr0, len0);
        var ptr2 = ret[0];
        var len2 = ret[1];
        if (ret[3]) {
            ptr2 = 0; len2 = 0;
            throw takeFromExternrefTable0(ret[2]);
        }
        deferred3_0 = ptr2;
        deferred3_1 = len2;
        return getStringFromWasm0(ptr2, len2);
    } finally {
        wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
    }
}
exports.keyIdOf = keyIdOf;

/**
 * Verifies an envelope with a raw 32-byte public key, checks its payload
 * type equals `expectedType`, and returns the payload bytes.
 * Throws `malformed`, `wrong_type`, `unknown_key` (keyid names another key) or `bad_signature`.
 * @param {Uint8Array | number[]} envelope
 * @param {string} expectedType
 * @param {Uint8Array | number[]} publicKey
 * @returns {Uint8Array}
 */
function openEnvelope(envelope, expectedType, publicKey) {
    let ptr0, len0, ptr1, len1, ptr2, len2;
    try {
        ptr0 = passArray8ToWasm0(envelope, wasm.__wbindgen_malloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passStringToWasm0(expectedType, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len1 = WASM_VECTOR_LEN;
        ptr2 = passArray8ToWasm0(publicKey, wasm.__wbindgen_malloc);
        len2 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    const ret = wasm.openEnvelope(ptr0, len0, ptr1, len1, ptr2, len2);
    if (ret[3]) {
        throw takeFromExternrefTable0(ret[2]);
    }
    var v4 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
    wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
    return v4;
}
exports.openEnvelope = openEnvelope;

/**
 * The DSSE pre-authentication encoding (the bytes an envelope signature covers):
 * `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
 * @param {string} payloadType
 * @param {Uint8Array | number[]} payload
 * @returns {Uint8Array}
 */
function pae(payloadType, payload) {
    let ptr0, len0, ptr1, len1;
    try {
        ptr0 = passStringToWasm0(payloadType, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passArray8ToWasm0(payload, wasm.__wbindgen_malloc);
        len1 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    const ret = wasm.pae(ptr0, len0, ptr1, len1);
    var v3 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
    wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
    return v3;
}
exports.pae = pae;

/**
 * Random bytes from the platform CSPRNG, as base64url (ids, nonces).
 * @param {number | null} [bytes]
 * @returns {string}
 */
function randomId(bytes) {
    let deferred2_0;
    let deferred2_1;
    try {
        const ret = wasm.randomId(isLikeNone(bytes) ? Number.MAX_SAFE_INTEGER : (bytes) >>> 0);
        var ptr1 = ret[0];
        var len1 = ret[1];
        if (ret[3]) {
            ptr1 = 0; len1 = 0;
            throw takeFromExternrefTable0(ret[2]);
        }
        deferred2_0 = ptr1;
        deferred2_1 = len1;
        return getStringFromWasm0(ptr1, len1);
    } finally {
        wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
    }
}
exports.randomId = randomId;

/**
 * Seals `payload` with `key` into a DSSE envelope (edrlink profile: one
 * Ed25519 signature with `keyid`) and returns the envelope's JSON bytes.
 * Throws `malformed` when `payloadType` is not 1..128 printable ASCII characters.
 * @param {string} payloadType
 * @param {Uint8Array | number[]} payload
 * @param {SigningKey} key
 * @returns {Uint8Array}
 */
function sealEnvelope(payloadType, payload, key) {
    _assertClass(key, SigningKey);
    let ptr0, len0, ptr1, len1;
    try {
        ptr0 = passStringToWasm0(payloadType, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passArray8ToWasm0(payload, wasm.__wbindgen_malloc);
        len1 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    const ret = wasm.sealEnvelope(ptr0, len0, ptr1, len1, key.__wbg_ptr);
    if (ret[3]) {
        throw takeFromExternrefTable0(ret[2]);
    }
    var v3 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
    wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
    return v3;
}
exports.sealEnvelope = sealEnvelope;

/**
 * A web-protection detection: the core's detection event with `url` set,
 * action `blocked`, no file (`file_path` and `sha256` empty), `test: false`.
 * `severity` is `"informational" | "low" | "medium" | "high" | "critical"`
 * (default `"high"`). Submit it with `client.submit(...)`.
 * Throws `invalid_argument` for an unknown severity, `malformed` when the
 * event does not validate (e.g. an empty URL or threat name).
 * @param {string} url
 * @param {string} threat_name
 * @param {Severity} severity
 * @param {number | null} [now]
 * @returns {DetectionEvent}
 */
function urlDetectionEvent(url, threat_name, severity, now) {
    const val4 = +(isLikeNone(now) ? 0 : now);
    let ptr0, len0, ptr1, len1, ptr2, len2;
    try {
        ptr0 = passStringToWasm0(url, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passStringToWasm0(threat_name, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len1 = WASM_VECTOR_LEN;
        ptr2 = isLikeNone(severity) ? 0 : passStringToWasm0(severity, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len2 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    const ret = wasm.urlDetectionEvent(ptr0, len0, ptr1, len1, ptr2, len2, !isLikeNone(now), val4);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.urlDetectionEvent = urlDetectionEvent;

/**
 * Parses and validates one telemetry event (object or JSON string) the way
 * `client.submit` does, and returns it normalized. Throws `malformed`.
 * @param {EdrlinkEvent | string} event
 * @returns {EdrlinkEvent}
 */
function validateEvent(event) {
    const ret = wasm.validateEvent(event);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.validateEvent = validateEvent;

/**
 * Verifies an envelope with a raw 32-byte public key whatever its payload
 * type, and returns `{ payload_type, keyid, payload }` (payload as `Uint8Array`).
 * Throws like `openEnvelope` except for `wrong_type`.
 * @param {Uint8Array | number[]} envelope
 * @param {Uint8Array | number[]} publicKey
 * @returns {EnvelopeContents}
 */
function verifyEnvelope(envelope, publicKey) {
    let ptr0, len0, ptr1, len1;
    try {
        ptr0 = passArray8ToWasm0(envelope, wasm.__wbindgen_malloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passArray8ToWasm0(publicKey, wasm.__wbindgen_malloc);
        len1 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    const ret = wasm.verifyEnvelope(ptr0, len0, ptr1, len1);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.verifyEnvelope = verifyEnvelope;

/**
 * Checks a raw Ed25519 signature. Returns `false` when it does not verify;
 * throws `malformed` when the public key is not 32 bytes.
 * @param {Uint8Array | number[]} publicKey
 * @param {Uint8Array | number[]} message
 * @param {Uint8Array | number[]} signature
 * @returns {boolean}
 */
function verifySignature(publicKey, message, signature) {
    let ptr0, len0, ptr1, len1, ptr2, len2;
    try {
        ptr0 = passArray8ToWasm0(publicKey, wasm.__wbindgen_malloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passArray8ToWasm0(message, wasm.__wbindgen_malloc);
        len1 = WASM_VECTOR_LEN;
        ptr2 = passArray8ToWasm0(signature, wasm.__wbindgen_malloc);
        len2 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    const ret = wasm.verifySignature(ptr0, len0, ptr1, len1, ptr2, len2);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return ret[0] !== 0;
}
exports.verifySignature = verifySignature;

/**
 * Verifies an access token against a pinned service keyset (JWKS object or
 * JSON string): signature, type, audience and validity window with a clock
 * skew allowance (`skewSecs`, default 60, clamped to 300). Returns the claims.
 * Throws `bad_signature`, `unknown_key`, `token_expired`, `token_not_yet_valid`, …
 * @param {string} token
 * @param {Keyset | string} keyset
 * @param {number | null} [now]
 * @param {number | null} [skewSecs]
 * @returns {AccessTokenClaims}
 */
function verifyToken(token, keyset, now, skewSecs) {
    const val2 = +(isLikeNone(now) ? 0 : now);
    const val3 = +(isLikeNone(skewSecs) ? 0 : skewSecs);
    const ptr0 = passStringToWasm0(token, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
    const len0 = WASM_VECTOR_LEN;
    const ret = wasm.verifyToken(ptr0, len0, keyset, !isLikeNone(now), val2, !isLikeNone(skewSecs), val3);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}
exports.verifyToken = verifyToken;

/**
 * The SDK version (the `edrlink-core` crate version).
 * @returns {string}
 */
function version() {
    let deferred1_0;
    let deferred1_1;
    try {
        const ret = wasm.version();
        deferred1_0 = ret[0];
        deferred1_1 = ret[1];
        return getStringFromWasm0(ret[0], ret[1]);
    } finally {
        wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
    }
}
exports.version = version;
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        __wbg___wbindgen_boolean_get_4f1baf9a00be3c74: function(arg0) {
            const v = arg0;
            const ret = typeof(v) === 'boolean' ? v : undefined;
            return isLikeNone(ret) ? 0xFFFFFF : ret ? 1 : 0;
        },
        __wbg___wbindgen_is_function_741ff2bb612836f5: function(arg0) {
            const ret = typeof(arg0) === 'function';
            return ret;
        },
        __wbg___wbindgen_is_null_c22311b1cc228e3a: function(arg0) {
            const ret = arg0 === null;
            return ret;
        },
        __wbg___wbindgen_is_object_8b968c3ab8e96595: function(arg0) {
            const val = arg0;
            const ret = typeof(val) === 'object' && val !== null;
            return ret;
        },
        __wbg___wbindgen_is_string_fc456fee5d3317de: function(arg0) {
            const ret = typeof(arg0) === 'string';
            return ret;
        },
        __wbg___wbindgen_is_undefined_be5b34249ff1fc15: function(arg0) {
            const ret = arg0 === undefined;
            return ret;
        },
        __wbg___wbindgen_number_get_934b640d0889af78: function(arg0, arg1) {
            const obj = arg1;
            const ret = typeof(obj) === 'number' ? obj : undefined;
            getDataViewMemory0().setFloat64((arg0 >>> 0) + 8 * 1, isLikeNone(ret) ? 0 : ret, true);
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 0, !isLikeNone(ret), true);
        },
        __wbg___wbindgen_string_get_7ce8eee7fd327545: function(arg0, arg1) {
            const obj = arg1;
            const ret = typeof(obj) === 'string' ? obj : undefined;
            var ptr1 = isLikeNone(ret) ? 0 : passStringToWasm0(ret, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            var len1 = WASM_VECTOR_LEN;
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 1, len1, true);
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 0, ptr1, true);
        },
        __wbg___wbindgen_throw_4c88d8bf264fd984: function(arg0, arg1) {
            throw new Error(getStringFromWasm0(arg0, arg1));
        },
        __wbg__wbg_cb_unref_09736879a3f67559: function(arg0) {
            arg0._wbg_cb_unref();
        },
        __wbg_call_40b008ba32f73991: function() { return handleError(function (arg0, arg1) {
            const ret = arg0.call(arg1);
            return ret;
        }, arguments); },
        __wbg_call_a410eb4b59ed5965: function() { return handleError(function (arg0, arg1, arg2) {
            const ret = arg0.call(arg1, arg2);
            return ret;
        }, arguments); },
        __wbg_call_fc92fee6137d452d: function() { return handleError(function (arg0, arg1, arg2, arg3) {
            const ret = arg0.call(arg1, arg2, arg3);
            return ret;
        }, arguments); },
        __wbg_construct_8670bb4c2b062969: function() { return handleError(function (arg0, arg1) {
            const ret = Reflect.construct(arg0, arg1);
            return ret;
        }, arguments); },
        __wbg_crypto_23f565a907d30078: function(arg0) {
            const ret = arg0.crypto;
            return ret;
        },
        __wbg_getRandomValues_d2908e0b99612b91: function() { return handleError(function (arg0, arg1) {
            arg0.getRandomValues(arg1);
        }, arguments); },
        __wbg_get_2080c49015e35254: function() { return handleError(function (arg0, arg1) {
            const ret = Reflect.get(arg0, arg1);
            return ret;
        }, arguments); },
        __wbg_instanceof_Error_74e3cca0c4a69161: function(arg0) {
            let result;
            try {
                result = arg0 instanceof Error;
            } catch (_) {
                result = false;
            }
            const ret = result;
            return ret;
        },
        __wbg_length_186163212ffe79c3: function(arg0) {
            const ret = arg0.length;
            return ret;
        },
        __wbg_message_43d8c8f1d543a349: function(arg0) {
            const ret = arg0.message;
            return ret;
        },
        __wbg_msCrypto_d5f06fad6bf1409b: function(arg0) {
            const ret = arg0.msCrypto;
            return ret;
        },
        __wbg_new_13de428334042d26: function(arg0) {
            const ret = new Uint8Array(arg0);
            return ret;
        },
        __wbg_new_787b9fb330d55d78: function(arg0, arg1) {
            const ret = new Error(getStringFromWasm0(arg0, arg1));
            return ret;
        },
        __wbg_new_ba40181b3f24ac80: function(arg0, arg1) {
            try {
                var state0 = {a: arg0, b: arg1};
                var cb0 = (arg0, arg1) => {
                    const a = state0.a;
                    state0.a = 0;
                    try {
                        return wasm_bindgen__convert__closures_____invoke__hb98d63cc49481475(a, state0.b, arg0, arg1);
                    } finally {
                        state0.a = a;
                    }
                };
                const ret = new Promise(cb0);
                return ret;
            } finally {
                state0.a = 0;
            }
        },
        __wbg_new_cd4348290afae586: function() {
            const ret = new Object();
            return ret;
        },
        __wbg_new_from_slice_b8daf545a41c6aa0: function(arg0, arg1) {
            const ret = new Uint8Array(getArrayU8FromWasm0(arg0, arg1));
            return ret;
        },
        __wbg_new_typed_e09da9dae6ee5935: function(arg0, arg1) {
            try {
                var state0 = {a: arg0, b: arg1};
                var cb0 = (arg0, arg1) => {
                    const a = state0.a;
                    state0.a = 0;
                    try {
                        return wasm_bindgen__convert__closures_____invoke__hb98d63cc49481475(a, state0.b, arg0, arg1);
                    } finally {
                        state0.a = a;
                    }
                };
                const ret = new Promise(cb0);
                return ret;
            } finally {
                state0.a = 0;
            }
        },
        __wbg_new_with_length_01b143a7e5dd5a3e: function(arg0) {
            const ret = new Uint8Array(arg0 >>> 0);
            return ret;
        },
        __wbg_node_86166ff8ce1f2002: function(arg0) {
            const ret = arg0.node;
            return ret;
        },
        __wbg_now_463ac581d2fc7ea3: function() {
            const ret = Date.now();
            return ret;
        },
        __wbg_of_027eb15371aac932: function(arg0) {
            const ret = Array.of(arg0);
            return ret;
        },
        __wbg_parse_c3f72b5a24f83c01: function() { return handleError(function (arg0, arg1) {
            const ret = JSON.parse(getStringFromWasm0(arg0, arg1));
            return ret;
        }, arguments); },
        __wbg_process_91f425a63f58e399: function(arg0) {
            const ret = arg0.process;
            return ret;
        },
        __wbg_prototypesetcall_13162965d1fe7aa3: function(arg0, arg1, arg2) {
            Uint8Array.prototype.set.call(getArrayU8FromWasm0(arg0, arg1), arg2);
        },
        __wbg_queueMicrotask_1e8503a8a690f0a3: function(arg0) {
            const ret = arg0.queueMicrotask;
            return ret;
        },
        __wbg_queueMicrotask_4a1a4d8dd332373b: function(arg0) {
            queueMicrotask(arg0);
        },
        __wbg_randomFillSync_34b023059e3363de: function() { return handleError(function (arg0, arg1) {
            arg0.randomFillSync(arg1);
        }, arguments); },
        __wbg_require_9a7d8cc2e1d275c0: function() { return handleError(function () {
            const ret = module.require;
            return ret;
        }, arguments); },
        __wbg_resolve_dbf78ab4942478b0: function(arg0) {
            const ret = Promise.resolve(arg0);
            return ret;
        },
        __wbg_set_2793479888329cb6: function() { return handleError(function (arg0, arg1, arg2) {
            const ret = Reflect.set(arg0, arg1, arg2);
            return ret;
        }, arguments); },
        __wbg_set_name_822e3903f3184979: function(arg0, arg1, arg2) {
            arg0.name = getStringFromWasm0(arg1, arg2);
        },
        __wbg_static_accessor_GLOBAL_3c631d742e9aab71: function() {
            const ret = globalThis;
            return ret;
        },
        __wbg_static_accessor_GLOBAL_THIS_003ee833af9699fc: function() {
            const ret = typeof globalThis === 'undefined' ? undefined : globalThis;
            return isLikeNone(ret) ? 0 : addToExternrefTable0(ret);
        },
        __wbg_static_accessor_GLOBAL_e4293fb22cbe77da: function() {
            const ret = typeof global === 'undefined' ? undefined : global;
            return isLikeNone(ret) ? 0 : addToExternrefTable0(ret);
        },
        __wbg_static_accessor_SELF_53bb20457401453d: function() {
            const ret = typeof self === 'undefined' ? undefined : self;
            return isLikeNone(ret) ? 0 : addToExternrefTable0(ret);
        },
        __wbg_static_accessor_WINDOW_b5e0810bfecb7feb: function() {
            const ret = typeof window === 'undefined' ? undefined : window;
            return isLikeNone(ret) ? 0 : addToExternrefTable0(ret);
        },
        __wbg_stringify_0a0fbf2ef722380a: function() { return handleError(function (arg0) {
            const ret = JSON.stringify(arg0);
            return ret;
        }, arguments); },
        __wbg_subarray_58f388a9247ac0bb: function(arg0, arg1, arg2) {
            const ret = arg0.subarray(arg1 >>> 0, arg2 >>> 0);
            return ret;
        },
        __wbg_then_656f253a5dd7d8ea: function(arg0, arg1, arg2) {
            const ret = arg0.then(arg1, arg2);
            return ret;
        },
        __wbg_then_e3f7f2d365708be8: function(arg0, arg1) {
            const ret = arg0.then(arg1);
            return ret;
        },
        __wbg_versions_6e128a981b0df859: function(arg0) {
            const ret = arg0.versions;
            return ret;
        },
        __wbindgen_generic_0000000000000001: function(arg0, arg1) {
            // Cast intrinsic for `Closure(Closure { owned: true, function: Function { arguments: [Externref], shim_idx: 144, ret: Result(Unit), inner_ret: Some(Result(Unit)) }, mutable: true }) -> Externref`.
            const ret = makeMutClosure(arg0, arg1, wasm_bindgen__convert__closures_____invoke__h60702a48838d1764);
            return ret;
        },
        __wbindgen_generic_0000000000000002: function(arg0) {
            // Cast intrinsic for `F64 -> Externref`.
            const ret = arg0;
            return ret;
        },
        __wbindgen_generic_0000000000000003: function(arg0, arg1) {
            // Cast intrinsic for `Ref(Slice(U8)) -> NamedExternref("Uint8Array")`.
            const ret = getArrayU8FromWasm0(arg0, arg1);
            return ret;
        },
        __wbindgen_generic_0000000000000004: function(arg0, arg1) {
            // Cast intrinsic for `Ref(String) -> Externref`.
            const ret = getStringFromWasm0(arg0, arg1);
            return ret;
        },
        __wbindgen_init_externref_table: function() {
            const table = wasm.__wbindgen_externrefs;
            table.set(0, undefined);
            table.set(1024, undefined);
            table.set(1025, null);
            table.set(1026, true);
            table.set(1027, false);
        },
    };
    return {
        __proto__: null,
        "./edrlink_wasm_bg.js": import0,
    };
}

function wasm_bindgen__convert__closures_____invoke__h60702a48838d1764(arg0, arg1, arg2) {
    const ret = wasm.wasm_bindgen__convert__closures_____invoke__h60702a48838d1764(arg0, arg1, arg2);
    if (ret[1]) {
        throw takeFromExternrefTable0(ret[0]);
    }
}

function wasm_bindgen__convert__closures_____invoke__hb98d63cc49481475(arg0, arg1, arg2, arg3) {
    wasm.wasm_bindgen__convert__closures_____invoke__hb98d63cc49481475(arg0, arg1, arg2, arg3);
}

const EdrlinkClientFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_edrlinkclient_free(ptr, 1));
const SigningKeyFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_signingkey_free(ptr, 1));

function addToExternrefTable0(obj) {
    const idx = wasm.__externref_table_alloc();
    wasm.__wbindgen_externrefs.set(idx, obj);
    return idx;
}

function _assertClass(instance, klass) {
    if (!(instance instanceof klass)) {
        throw new Error(`expected instance of ${klass.name}`);
    }
}

const CLOSURE_DTORS = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(state => wasm.__wbindgen_destroy_closure(state.a, state.b));

function getArrayU8FromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return getUint8ArrayMemory0().subarray(ptr / 1, ptr / 1 + len);
}

let cachedDataViewMemory0 = null;
function getDataViewMemory0() {
    if (cachedDataViewMemory0 === null || cachedDataViewMemory0.buffer.detached === true || (cachedDataViewMemory0.buffer.detached === undefined && cachedDataViewMemory0.buffer !== wasm.memory.buffer)) {
        cachedDataViewMemory0 = new DataView(wasm.memory.buffer);
    }
    return cachedDataViewMemory0;
}

function getStringFromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return decodeText(getUint8ArrayMemory0().subarray(ptr, ptr + len));
}

let cachedUint8ArrayMemory0 = null;
function getUint8ArrayMemory0() {
    if (cachedUint8ArrayMemory0 === null || cachedUint8ArrayMemory0.byteLength === 0) {
        cachedUint8ArrayMemory0 = new Uint8Array(wasm.memory.buffer);
    }
    return cachedUint8ArrayMemory0;
}

function handleError(f, args) {
    try {
        return f.apply(this, args);
    } catch (e) {
        const idx = addToExternrefTable0(e);
        wasm.__wbindgen_exn_store(idx);
    }
}

function isLikeNone(x) {
    return x === undefined || x === null;
}

function makeMutClosure(arg0, arg1, f) {
    const state = { a: arg0, b: arg1, cnt: 1 };
    const real = (...args) => {

        // First up with a closure we increment the internal reference
        // count. This ensures that the Rust closure environment won't
        // be deallocated while we're invoking it.
        state.cnt++;
        const a = state.a;
        state.a = 0;
        try {
            return f(a, state.b, ...args);
        } finally {
            state.a = a;
            real._wbg_cb_unref();
        }
    };
    real._wbg_cb_unref = () => {
        if (--state.cnt === 0) {
            wasm.__wbindgen_destroy_closure(state.a, state.b);
            state.a = 0;
            CLOSURE_DTORS.unregister(state);
        }
    };
    CLOSURE_DTORS.register(real, state, state);
    return real;
}

function passArray8ToWasm0(arg, malloc) {
    const ptr = malloc(arg.length * 1, 1) >>> 0;
    getUint8ArrayMemory0().set(arg, ptr / 1);
    WASM_VECTOR_LEN = arg.length;
    return ptr;
}

function passStringToWasm0(arg, malloc, realloc) {
    if (realloc === undefined) {
        const buf = cachedTextEncoder.encode(arg);
        const ptr = malloc(buf.length, 1) >>> 0;
        getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
        WASM_VECTOR_LEN = buf.length;
        return ptr;
    }

    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;

    const mem = getUint8ArrayMemory0();

    let offset = 0;

    for (; offset < len; offset++) {
        const code = arg.charCodeAt(offset);
        if (code > 0x7F) break;
        mem[ptr + offset] = code;
    }
    if (offset !== len) {
        if (offset !== 0) {
            arg = arg.slice(offset);
        }
        ptr = realloc(ptr, len, len = offset + arg.length * 3, 1) >>> 0;
        const view = getUint8ArrayMemory0().subarray(ptr + offset, ptr + len);
        const ret = cachedTextEncoder.encodeInto(arg, view);

        offset += ret.written;
        ptr = realloc(ptr, len, offset, 1) >>> 0;
    }

    WASM_VECTOR_LEN = offset;
    return ptr;
}

function takeFromExternrefTable0(idx) {
    const value = wasm.__wbindgen_externrefs.get(idx);
    wasm.__externref_table_dealloc(idx);
    return value;
}

let cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
cachedTextDecoder.decode();
function decodeText(bytes) {
    return cachedTextDecoder.decode(bytes);
}

const cachedTextEncoder = new TextEncoder();

if (!('encodeInto' in cachedTextEncoder)) {
    cachedTextEncoder.encodeInto = function (arg, view) {
        const buf = cachedTextEncoder.encode(arg);
        view.set(buf);
        return {
            read: arg.length,
            written: buf.length
        };
    };
}

let WASM_VECTOR_LEN = 0;

const wasmPath = `${__dirname}/edrlink_wasm_bg.wasm`;
const wasmBytes = require('fs').readFileSync(wasmPath);
const wasmModule = new WebAssembly.Module(wasmBytes);
let wasmInstance = new WebAssembly.Instance(wasmModule, __wbg_get_imports());
let wasm = wasmInstance.exports;
wasm.__wbindgen_start();
