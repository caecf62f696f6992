// Types of the `@edrlink/wasm/lite` entry points (js/lite-web.mjs and js/lite-node.mjs).
export * from '../pkg/lite-web/edrlink_lite.js';
export { EdrlinkError, init } from './index.js';
