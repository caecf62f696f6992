// Types of the package entry points (js/web.mjs and js/node.mjs export the same API).
import type { ErrorCode, ErrorInfo, HostKeys, CredentialStore } from '../pkg/web/edrlink_wasm.js';
export * from '../pkg/web/edrlink_wasm.js';

/**
 * Every error edrlink throws or rejects with (a subclass of `Error`), carrying the
 * core's error record (the same fields in every language). Match on `code`, not on
 * `message`.
 */
export declare class EdrlinkError extends Error {
  readonly name: 'EdrlinkError';
  /** Stable snake_case error code. */
  readonly code: ErrorCode;
  /** The C API number of the code. */
  readonly number: number;
  /** The HTTP status the service answers with for this code. */
  readonly httpStatus: number;
  /** Seconds to wait before retrying (the service's `Retry-After`), or null. */
  readonly retryAfter: number | null;
  /** Human-readable detail (`message` is `"<code>: <detail>"`). */
  readonly detail: string;
  /** The record in the snake_case shape of `health().last_error`. */
  toJSON(): ErrorInfo;
}

/**
 * Loads the wasm module (browsers: fetches `edrlink_wasm_bg.wasm` next to the glue
 * unless `source` is given; Node: already loaded, resolves at once). Idempotent;
 * await it before calling anything else.
 */
export declare function init(source?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;

/** Key algorithms of device keys (`"ed25519"`, or `"ecdsa-p256"` = ECDSA P-256 with SHA-256). */
export type KeyAlgorithm = "ed25519" | "ecdsa-p256";

/** `webCryptoKeys()`: the `HostKeys` interface plus two inspection helpers. */
export interface WebCryptoKeys extends HostKeys {
  /** The stored private key (non-extractable), or null when there is no such handle. */
  cryptoKey(handle: string): Promise<CryptoKey | null>;
  /** The algorithm new keys get (probes Ed25519 support once when not fixed). */
  algorithm(): Promise<KeyAlgorithm>;
}

/**
 * Device keys made by WebCrypto as non-extractable `CryptoKey`s, kept in IndexedDB
 * (database `dbName`, default `"edrlink-keys"`): Ed25519 where supported, else ECDSA P-256.
 * The browser default for `ClientOptions.keys`.
 */
export declare function webCryptoKeys(options?: { dbName?: string; algorithm?: KeyAlgorithm }): WebCryptoKeys;
/** The credential JSON in IndexedDB (database `dbName`, default `"edrlink"`; record `key`, default `"credential"`). */
export declare function indexedDbStore(options?: { dbName?: string; key?: string }): CredentialStore;
/** The credential JSON in `chrome.storage.local` (or `area`) under `key` (default `"edrlink_credential"`), for MV3 extensions. */
export declare function chromeStorageStore(options?: {
  key?: string;
  area?: { get(key: string): Promise<Record<string, unknown>>; set(items: Record<string, string>): Promise<void>; remove(key: string): Promise<void> };
}): CredentialStore;
/** The credential JSON in memory (tests, short-lived tools). */
export declare function memoryStore(value?: string | null): CredentialStore;
