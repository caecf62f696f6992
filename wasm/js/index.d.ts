// Types of the package entry points (js/web.mjs and js/node.mjs export the same API).
import type { ErrorCode } from '../pkg/web/edrlink_wasm.js';
export * from '../pkg/web/edrlink_wasm.js';

/**
 * Every error edrlink throws or rejects with (a subclass of `Error`).
 * Match on `code`, not on `message`.
 */
export declare class EdrlinkError extends Error {
  readonly name: 'EdrlinkError';
  /** Stable snake_case error code. */
  readonly code: ErrorCode;
  /** The C API number of the code. */
  readonly codeNumber: number;
  /** Seconds the service asked to wait (429/503), if any. */
  readonly retryAfter: number | undefined;
}

/**
 * Loads the wasm module (browsers: fetches `edrlink_wasm_bg.wasm` next to the glue
 * unless `source` is given; Node: already loaded, resolves at once). Idempotent;
 * await it before calling anything else.
 */
export declare function init(source?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;
