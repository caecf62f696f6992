// Node 20+ entry: ESM over the `--target nodejs` build (loaded synchronously).
// `init()` exists for symmetry with the browser entry and resolves at once.
// Node has no default host keys: a client given no `keys` keeps a software Ed25519 key
// in its credential (store that credential like a private key).
import { createRequire } from 'node:module';
import { EdrlinkError } from './errors.mjs';

const require = createRequire(import.meta.url);
const wasm = require('../pkg/node/edrlink_wasm.js');
wasm.__registerErrorClass(EdrlinkError);

export * from '../pkg/node/edrlink_wasm.js';
export { EdrlinkError };
export { webCryptoKeys, indexedDbStore, chromeStorageStore, memoryStore } from './hostkeys.mjs';
export function init() { return Promise.resolve(); }
