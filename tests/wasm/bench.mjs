// Size budget and speed of the edrlink wasm package (a benchmark, not a test: it
// reports figures and ratios and never fails on them).
//   node tests/wasm/bench.mjs [--json]      (after wasm/build.sh; see bench.sh)
// Compares, in one run on the same 1 KiB payload: edrlink (wasm, ring Ed25519),
// @noble/ed25519 (pure JS, sync, sha512 from node:crypto — its fastest setup) and
// Node's built-in crypto.sign/verify('ed25519') (OpenSSL).
// Then "WebCrypto device keys": sign and seal with non-extractable WebCrypto keys
// (Ed25519 and ECDSA P-256, `crypto.subtle.sign`, awaited one at a time as the client's
// driver does) next to the software paths, as ratios to the wasm (ring) path. The
// WebCrypto seal includes what the core adds for a host signature: it verifies it
// against the public key (P-256 in wasm through ring) before building the envelope.
import { readFileSync } from 'node:fs';
import { gzipSync, constants } from 'node:zlib';
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import os from 'node:os';
import * as edr from '../../wasm/js/node.mjs';
import * as lite from '../../wasm/js/lite-node.mjs';

const ROOT = new URL('../../', import.meta.url);
const require = createRequire(new URL('tools/package.json', ROOT));
const ed = await import(require.resolve('@noble/ed25519'));
ed.hashes.sha512 = (m) => new Uint8Array(createHash('sha512').update(m).digest());

const size = (rel) => {
  const b = readFileSync(new URL(rel, ROOT));
  return { raw: b.length, gzip9: gzipSync(b, { level: constants.Z_BEST_COMPRESSION }).length };
};
const sizes = {
  'web .wasm': size('wasm/pkg/web/edrlink_wasm_bg.wasm'),
  'web glue .js': size('wasm/pkg/web/edrlink_wasm.js'),
  'node glue .js': size('wasm/pkg/node/edrlink_wasm.js'),
  'wrapper js/*.mjs': ['wasm/js/web.mjs', 'wasm/js/errors.mjs', 'wasm/js/hostkeys.mjs'].map(size).reduce((a, b) => ({ raw: a.raw + b.raw, gzip9: a.gzip9 + b.gzip9 })),
};
sizes['lite web .wasm'] = size('wasm/pkg/lite-web/edrlink_lite_bg.wasm');
sizes['lite web glue .js'] = size('wasm/pkg/lite-web/edrlink_lite.js');
sizes['lite wrapper'] = ['wasm/js/lite-web.mjs', 'wasm/js/errors.mjs'].map(size).reduce((a, b) => ({ raw: a.raw + b.raw, gzip9: a.gzip9 + b.gzip9 }));
const total = (keys) => keys.reduce((a, k) => ({ raw: a.raw + sizes[k].raw, gzip9: a.gzip9 + sizes[k].gzip9 }), { raw: 0, gzip9: 0 });
const browserTotal = total(['web .wasm', 'web glue .js', 'wrapper js/*.mjs']);
const liteTotal = total(['lite web .wasm', 'lite web glue .js', 'lite wrapper']);

// ---- speed
const seed = new Uint8Array(32).fill(7);
const payload = new Uint8Array(1024).map((_, i) => (i * 31) & 0xff);
const TYPE = 'application/vnd.edrlink.batch.v1+json';
const key = edr.SigningKey.fromSeed(seed);
const liteKey = lite.SigningKey.fromSeed(seed);
const pub = key.publicKey;
const pae = edr.pae(TYPE, payload);
const nodePriv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]), format: 'der', type: 'pkcs8' });
const nodePub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(pub)]), format: 'der', type: 'spki' });
const noblePub = ed.getPublicKey(seed);
if (Buffer.compare(Buffer.from(noblePub), Buffer.from(pub)) !== 0) throw new Error('public keys differ');

const sig = key.sign(pae);
const env = edr.sealEnvelope(TYPE, payload, key);
const kid = key.keyId;
const b64 = (u8) => Buffer.from(u8).toString('base64');
// The same envelope built in JS around each signer (PAE, base64, JSON) for a like-for-like seal/open.
const sealWith = (signFn) => new TextEncoder().encode(JSON.stringify({ payload: b64(payload), payloadType: TYPE,
  signatures: [{ keyid: kid, sig: b64(signFn(edr.pae(TYPE, payload))) }] }));
const openWith = (bytes, verifyFn) => {
  const e = JSON.parse(new TextDecoder().decode(bytes));
  const p = Buffer.from(e.payload, 'base64');
  if (e.payloadType !== TYPE || e.signatures[0].keyid !== kid) throw new Error('type/keyid');
  if (!verifyFn(edr.pae(TYPE, p), Buffer.from(e.signatures[0].sig, 'base64'))) throw new Error('bad sig');
  return p;
};
// Sanity: all three agree (Ed25519 is deterministic).
if (b64(ed.sign(pae, seed)) !== b64(sig) || b64(nodeSign(null, pae, nodePriv)) !== b64(sig)) throw new Error('signatures differ');
if (Buffer.compare(Buffer.from(sealWith((m) => ed.sign(m, seed))), Buffer.from(env)) !== 0) throw new Error('envelopes differ');
if (Buffer.compare(Buffer.from(lite.sealEnvelope(TYPE, payload, liteKey)), Buffer.from(env)) !== 0) throw new Error('lite envelope differs');

function bench(fn, minMs) {
  let n = 0; const t0 = process.hrtime.bigint(); let el = 0;
  do { for (let i = 0; i < 20; i++) fn(); n += 20; el = Number(process.hrtime.bigint() - t0) / 1e6; } while (el < minMs);
  return n / (el / 1000);
}
const median = (a) => { const b = [...a].sort((x, y) => x - y); return b[Math.floor(b.length / 2)]; };
// Interleaved rounds (edrlink, noble, node, edrlink, ...) so that load from other processes
// hits all three alike; ops/s and ratios are medians over the rounds.
const ROUNDS = Number(process.env.BENCH_ROUNDS || 7), MS = Number(process.env.BENCH_MS || 150);
function compare(impls) {
  for (const f of Object.values(impls)) for (let i = 0; i < 50; i++) f();
  const runs = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(impls)) runs[k].push(bench(f, MS));
  const out = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  out.ratioNoble = median(runs.edrlink.map((x, i) => x / runs.noble[i]));
  out.ratioNode = median(runs.edrlink.map((x, i) => x / runs.node[i]));
  return out;
}
const rows = {
  'sign 1 KiB': compare({
    edrlink: () => key.sign(pae),
    lite: () => liteKey.sign(pae),
    noble: () => ed.sign(pae, seed),
    node: () => nodeSign(null, pae, nodePriv),
  }),
  'verify 1 KiB': compare({
    edrlink: () => edr.verifySignature(pub, pae, sig),
    noble: () => ed.verify(sig, pae, noblePub),
    node: () => nodeVerify(null, pae, nodePub, sig),
  }),
  'envelope seal 1 KiB': compare({
    edrlink: () => edr.sealEnvelope(TYPE, payload, key),
    lite: () => lite.sealEnvelope(TYPE, payload, liteKey),
    noble: () => sealWith((m) => ed.sign(m, seed)),
    node: () => sealWith((m) => nodeSign(null, m, nodePriv)),
  }),
  'envelope open 1 KiB': compare({
    edrlink: () => edr.openEnvelope(env, TYPE, pub),
    noble: () => openWith(env, (m, s) => ed.verify(s, m, noblePub)),
    node: () => openWith(env, (m, s) => nodeVerify(null, m, nodePub, s)),
  }),
};

// ---- WebCrypto device keys (async: each call awaited, as the client's driver awaits
// the host signer). Interleaved rounds with the synchronous paths, medians of ratios.
const subtle = webcrypto.subtle;
const wcKeys = {
  ed25519: await subtle.generateKey({ name: 'Ed25519' }, false, ['sign']),
  p256: await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
};
const wcPub = {
  ed25519: new Uint8Array(await subtle.exportKey('raw', wcKeys.ed25519.publicKey)),
  p256: new Uint8Array(await subtle.exportKey('raw', wcKeys.p256.publicKey)),
};
const wcAlg = { ed25519: { name: 'Ed25519' }, p256: { name: 'ECDSA', hash: 'SHA-256' } };
const wcSign = async (k, m) => new Uint8Array(await subtle.sign(wcAlg[k], wcKeys[k].privateKey, m));
// The host-key seal: PAE, the host's signature, the core's check of it, the envelope.
const wcSeal = async (k) => {
  const m = edr.pae(TYPE, payload);
  const s = await wcSign(k, m);
  if (!edr.verifySignature(wcPub[k], m, s)) throw new Error('WebCrypto signature does not verify');
  return new TextEncoder().encode(JSON.stringify({ payload: b64(payload), payloadType: TYPE, signatures: [{ keyid: kid, sig: b64(s) }] }));
};
for (const k of ['ed25519', 'p256']) await wcSeal(k); // sanity: both verify in wasm

async function benchAsync(fn, minMs) {
  let n = 0; const t0 = process.hrtime.bigint(); let el = 0;
  do { for (let i = 0; i < 10; i++) await fn(); n += 10; el = Number(process.hrtime.bigint() - t0) / 1e6; } while (el < minMs);
  return n / (el / 1000);
}
async function compareAsync(impls) {
  for (const f of Object.values(impls)) for (let i = 0; i < 30; i++) await f();
  const runs = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(impls)) runs[k].push(await benchAsync(f, MS));
  const out = { opsPerSec: {}, ratioToWasm: {} };
  for (const [k, v] of Object.entries(runs)) {
    out.opsPerSec[k] = median(v);
    out.ratioToWasm[k] = median(v.map((x, i) => x / runs.wasm[i]));
  }
  return out;
}
const webcryptoRows = {
  'sign 1 KiB': await compareAsync({
    wasm: () => key.sign(pae),
    node: () => nodeSign(null, pae, nodePriv),
    noble: () => ed.sign(pae, seed),
    'webcrypto-ed25519': () => wcSign('ed25519', pae),
    'webcrypto-p256': () => wcSign('p256', pae),
  }),
  'seal 1 KiB': await compareAsync({
    wasm: () => edr.sealEnvelope(TYPE, payload, key),
    node: () => sealWith((m) => nodeSign(null, m, nodePriv)),
    noble: () => sealWith((m) => ed.sign(m, seed)),
    'webcrypto-ed25519': () => wcSeal('ed25519'),
    'webcrypto-p256': () => wcSeal('p256'),
  }),
};

const fmt = (n) => n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0);
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ node: process.version, loadavg: os.loadavg(), sizes, browserTotal, liteTotal, opsPerSec: rows, webcrypto: webcryptoRows }, null, 2));
} else {
  console.log(`edrlink-wasm ${edr.version()}  node ${process.version}  ${new Date().toISOString()}`);
  console.log('\nsize            raw bytes   gzip -9');
  for (const [k, v] of Object.entries(sizes)) console.log(`${k.padEnd(18)}${String(v.raw).padStart(9)} ${String(v.gzip9).padStart(9)}`);
  console.log(`${'browser total'.padEnd(18)}${String(browserTotal.raw).padStart(9)} ${String(browserTotal.gzip9).padStart(9)}   (goal <= 150 KB gzip: ${browserTotal.gzip9 <= 150000 ? 'met' : 'NOT met'})`);
  console.log(`${'lite total'.padEnd(18)}${String(liteTotal.raw).padStart(9)} ${String(liteTotal.gzip9).padStart(9)}   (goal <= 60 KB gzip: ${liteTotal.gzip9 <= 60000 ? 'met' : 'NOT met'})`);
  console.log('\nops/s                 edrlink     noble      node   edrlink/noble  edrlink/node');
  for (const [k, r] of Object.entries(rows)) {
    console.log(`${k.padEnd(20)}${fmt(r.edrlink).padStart(9)} ${fmt(r.noble).padStart(9)} ${fmt(r.node).padStart(9)}   ${r.ratioNoble.toFixed(2).padStart(8)}x   ${r.ratioNode.toFixed(2).padStart(8)}x`);
  }
  console.log(`\n(medians of ${ROUNDS} interleaved rounds of ${MS} ms; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs)`);
  console.log('goals: sign and seal >= 4x noble, verify >= 10x noble, sign >= 0.5x node built-in');
  const cols = ['wasm', 'node', 'noble', 'webcrypto-ed25519', 'webcrypto-p256'];
  console.log('\nWebCrypto device keys (ops/s; ratio to wasm)   ' + cols.map((c) => c.padStart(18)).join(''));
  for (const [k, r] of Object.entries(webcryptoRows)) {
    console.log(`${k.padEnd(20)} ops/s${' '.repeat(22)}${cols.map((c) => fmt(r.opsPerSec[c]).padStart(18)).join('')}`);
    console.log(`${''.padEnd(20)} ratio to wasm${' '.repeat(14)}${cols.map((c) => `${r.ratioToWasm[c].toFixed(2)}x`.padStart(18)).join('')}`);
  }
  console.log('(WebCrypto calls awaited one at a time; its seal includes the core\'s verification of the host signature)');
}
key.free();
