// Browser / MV3 / bundler entry: ESM over the `--target web` build.
// Call `await init()` once before anything else (service workers: at top level of
// an `install` handler or before the first use; top-level await is not allowed there).
import initWasm, { __registerErrorClass } from '../pkg/web/edrlink_wasm.js';
import { EdrlinkError } from './errors.mjs';

export * from '../pkg/web/edrlink_wasm.js';
export { EdrlinkError };

let ready;
/**
 * Loads the module. `source` defaults to `edrlink_wasm_bg.wasm` next to the glue
 * (a URL, Response, BufferSource or WebAssembly.Module may be passed instead,
 * e.g. `chrome.runtime.getURL(...)` in an extension). Idempotent.
 */
export function init(source) {
  ready ??= initWasm(source === undefined ? undefined : { module_or_path: source }).then(() => {
    __registerErrorClass(EdrlinkError);
  });
  return ready;
}
