// Browser / MV3 / bundler entry: ESM over the `--target web` build.
// Call `await init()` once before anything else (service workers: at top level of
// an `install` handler or before the first use; top-level await is not allowed there).
import initWasm, { __registerErrorClass, __registerDefaultKeys } from '../pkg/web/edrlink_wasm.js';
import { EdrlinkError } from './errors.mjs';
import { defaultKeys } from './hostkeys.mjs';

export * from '../pkg/web/edrlink_wasm.js';
export { EdrlinkError };
export { webCryptoKeys, indexedDbStore, chromeStorageStore, memoryStore } from './hostkeys.mjs';

let ready;
/**
 * Loads the module. `source` defaults to `edrlink_wasm_bg.wasm` next to the glue
 * (a URL, Response, BufferSource or WebAssembly.Module may be passed instead,
 * e.g. `chrome.runtime.getURL(...)` in an extension). Idempotent.
 * In browsers a client given no `keys` gets non-extractable WebCrypto keys kept in
 * IndexedDB (`webCryptoKeys()`) where `crypto.subtle` and `indexedDB` exist.
 */
export function init(source) {
  ready ??= initWasm(source === undefined ? undefined : { module_or_path: source }).then(() => {
    __registerErrorClass(EdrlinkError);
    __registerDefaultKeys(defaultKeys);
  });
  return ready;
}
