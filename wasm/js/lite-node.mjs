// `@edrlink/wasm/lite`, Node 20+ entry: ESM over the `--target nodejs` lite build
// (loaded synchronously). `init()` exists for symmetry and resolves at once.
import { createRequire } from 'node:module';
import { EdrlinkError } from './errors.mjs';

const require = createRequire(import.meta.url);
const wasm = require('../pkg/lite-node/edrlink_lite.js');
wasm.__registerErrorClass(EdrlinkError);

export * from '../pkg/lite-node/edrlink_lite.js';
export { EdrlinkError };
export function init() { return Promise.resolve(); }
