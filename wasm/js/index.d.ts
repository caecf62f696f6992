// Types of the package entry points (js/web.mjs and js/node.mjs export the same API).
import type { ErrorCode, ErrorInfo } from '../pkg/web/edrlink_wasm.js';
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
