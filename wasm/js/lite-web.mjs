// `@edrlink/wasm/lite`, browser / MV3 / bundler entry: the small module (tokens, keys,
// envelopes, PAE, down-level signing; no client) over the `--target web` lite build.
// Same functions and errors as the full entry, from the same core. `await init()` first.
import initWasm, { __registerErrorClass } from '../pkg/lite-web/edrlink_lite.js';
import { EdrlinkError } from './errors.mjs';

export * from '../pkg/lite-web/edrlink_lite.js';
export { EdrlinkError };

let ready;
/**
 * Loads the module. `source` defaults to `edrlink_lite_bg.wasm` next to the glue
 * (a URL, Response, BufferSource or WebAssembly.Module may be passed instead). Idempotent.
 */
export function init(source) {
  ready ??= initWasm(source === undefined ? undefined : { module_or_path: source }).then(() => {
    __registerErrorClass(EdrlinkError);
  });
  return ready;
}
