/**
 * Every error edrlink throws or rejects with. `code` is the stable snake_case
 * ErrorCode name (match on it, not on the message); `codeNumber` the C API number;
 * `retryAfter` the seconds the service asked to wait, if any.
 * Instances are created inside the wasm module (registered by web.mjs / node.mjs).
 */
export class EdrlinkError extends Error {
  constructor(message) {
    super(message);
    this.name = 'EdrlinkError';
    this.code = 'internal';
    this.codeNumber = 799;
    this.retryAfter = undefined;
  }
}
