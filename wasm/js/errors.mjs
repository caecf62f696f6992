/**
 * Every error edrlink throws or rejects with. The properties are the core's error
 * record (the same fields in every language): `code` (stable snake_case name: match on
 * it, not on the message), `number` (the C API number), `httpStatus` (the status the
 * service answers with), `retryAfter` (seconds to wait, or null) and `detail` (text).
 * Instances are created inside the wasm module (registered by web.mjs / node.mjs).
 */
export class EdrlinkError extends Error {
  constructor(message) {
    super(message);
    this.name = 'EdrlinkError';
    this.code = 'internal';
    this.number = 799;
    this.httpStatus = 500;
    this.retryAfter = null;
    this.detail = message;
  }

  /** The error record in the protocol's snake_case JSON shape (as `health().last_error`). */
  toJSON() {
    return { code: this.code, number: this.number, http_status: this.httpStatus,
      retry_after: this.retryAfter, detail: this.detail };
  }
}
