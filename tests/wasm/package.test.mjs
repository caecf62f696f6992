// The npm package (wasm/package.json exports) from Node 20: ESM wrappers over the
// nodejs and web builds, EdrlinkError, Uint8Array interop with node:crypto.
// Run: node --test tests/wasm/package.test.mjs   (after wasm/build.sh)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import * as edr from '../../wasm/js/node.mjs';
import * as web from '../../wasm/js/web.mjs';

const pkgDir = new URL('../../wasm/', import.meta.url);
const spki = (raw) => createPublicKey({
  key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(raw)]), format: 'der', type: 'spki' });
const device = { device_id: 'node-1', hostname: 'h', os: 'linux', os_version: '6', product: 'AV', product_version: '1' };

test('errors are EdrlinkError instances with a stable code', () => {
  assert.throws(() => edr.inspectToken('not a token'), (e) => {
    assert.ok(e instanceof edr.EdrlinkError);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'EdrlinkError');
    assert.equal(e.code, 'malformed');
    assert.equal(e.codeNumber, 100);
    assert.match(e.message, /^malformed: /);
    return true;
  });
  assert.throws(() => new edr.EdrlinkClient({}), { code: 'invalid_argument' });
  assert.equal(edr.errorCodes().length, 36);
  assert.ok(edr.errorCodes().some((c) => c.name === 'credential_expired' && c.number === 308 && c.status === 401));
  assert.deepEqual(edr.errorCodes()[0], { name: 'malformed', number: 100, status: 400 });
});

test('envelopes: Uint8Array in and out, signatures verify with node:crypto', () => {
  const key = edr.SigningKey.fromSeed(new Uint8Array(32).fill(7));
  const payload = new TextEncoder().encode('{"hello":"edrlink"}');
  const env = edr.sealEnvelope('application/json', payload, key);
  assert.ok(env instanceof Uint8Array);
  const parsed = JSON.parse(new TextDecoder().decode(env));
  assert.equal(parsed.signatures[0].keyid, key.keyId);
  const sig = Buffer.from(parsed.signatures[0].sig, 'base64');
  assert.ok(nodeVerify(null, edr.pae('application/json', payload), spki(key.publicKey), sig));
  assert.deepEqual(edr.openEnvelope(env, 'application/json', key.publicKey), payload);
  const v = edr.verifyEnvelope(env, key.publicKey);
  assert.equal(v.payload_type, 'application/json');
  assert.deepEqual(v.payload, payload);
  assert.throws(() => edr.openEnvelope(env, 'text/plain', key.publicKey), { code: 'wrong_type' });
  const tampered = new TextEncoder().encode(JSON.stringify({ ...parsed, payload: Buffer.from('{"hello":"evil"}').toString('base64') }));
  assert.throws(() => edr.openEnvelope(tampered, 'application/json', key.publicKey), { code: 'bad_signature' });
  key.free();
});

test('the web build loads in Node from bytes and shares the API', async () => {
  await web.init(readFileSync(new URL('pkg/web/edrlink_wasm_bg.wasm', pkgDir)));
  await web.init(); // idempotent
  assert.throws(() => web.inspectToken('x'), (e) => e instanceof web.EdrlinkError && e.code === 'malformed');
  const k = web.SigningKey.fromSeed(new Uint8Array(32).fill(1));
  const k2 = edr.SigningKey.fromSeed(new Uint8Array(32).fill(1));
  assert.deepEqual(web.sealEnvelope('a/b', new Uint8Array([1, 2]), k), edr.sealEnvelope('a/b', new Uint8Array([1, 2]), k2));
});

test('client driver rejects with the service problem code, or transport', async () => {
  const tokenShape = 'eyJhbGciOiJFZERTQSJ9.e30.sig';
  const problem = (status, code) => async () => new Response(JSON.stringify({
    type: `urn:edrlink:error:${code}`, title: code, status, detail: `test ${code}`, code }),
  { status, headers: { 'content-type': 'application/problem+json' } });
  // A syntactically bad token never reaches fetch.
  const c0 = new edr.EdrlinkClient({ device, fetch: problem(401, 'token_expired') });
  await assert.rejects(c0.enroll(tokenShape), { code: 'malformed' });
  // A real-looking token: build one from the vectors.
  const vec = JSON.parse(readFileSync(new URL('../vectors/tokens.json', import.meta.url), 'utf8'));
  const token = vec.cases.find((c) => c.kind === 'token_issue').expect.token;
  const { exp } = edr.inspectToken(token).claims;
  const info = edr.inspectToken(token, exp + 5);
  assert.equal(info.status, 'expired');
  assert.equal(info.seconds_left, -5);
  assert.equal(edr.inspectToken(token, exp - 60).status, 'expires_soon');
  const c1 = new edr.EdrlinkClient({ device, fetch: problem(403, 'integration_disabled'), timeoutSecs: 2 });
  await assert.rejects(c1.enroll(token), (e) => e instanceof edr.EdrlinkError && e.code === 'integration_disabled');
  const seen = [];
  const c2 = new edr.EdrlinkClient({ device, timeoutSecs: 0, serviceUrl: 'http://127.0.0.1:9',
    fetch: async (url, init) => { seen.push([url, init.method, init.headers['content-type']]); throw new TypeError('fetch failed'); } });
  await assert.rejects(c2.enroll(token), { code: 'transport' });
  assert.deepEqual(seen[0], ['http://127.0.0.1:9/v1/redeem', 'POST', 'application/jose']);
  assert.equal(c2.health().onboarded, false);
  assert.match(c2.health().last_error, /^transport: /);
  // The global fetch is used by default (nothing listens on port 9).
  const c3 = new edr.EdrlinkClient({ device, timeoutSecs: 0, serviceUrl: 'http://127.0.0.1:9' });
  await assert.rejects(c3.enroll(token), { code: 'transport' });
});

test('glue is CSP-safe (no eval / new Function) and never touches window', () => {
  for (const f of ['pkg/web/edrlink_wasm.js', 'pkg/node/edrlink_wasm.js', 'js/web.mjs', 'js/node.mjs']) {
    const src = readFileSync(new URL(f, pkgDir), 'utf8');
    assert.doesNotMatch(src, /\beval\s*\(|new\s+Function\b/, f);
    assert.doesNotMatch(src, /\bwindow\./, f);
  }
});

test('package.json exports point at files that exist', () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', pkgDir), 'utf8'));
  const targets = [];
  const walk = (v) => (typeof v === 'string' ? targets.push(v) : Object.values(v).forEach(walk));
  walk(pkg.exports);
  for (const t of targets) assert.ok(readFileSync(new URL(t, pkgDir)).length > 0, t);
  assert.equal(pkg.type, 'module');
});
