// The npm package (wasm/package.json exports) from Node 20: ESM wrappers over the
// nodejs and web builds, EdrlinkError, Uint8Array interop with node:crypto.
// Run: node --test tests/wasm/package.test.mjs   (after wasm/build.sh)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHmac, createPublicKey, verify as nodeVerify } from 'node:crypto';
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
    assert.equal(e.number, 100);
    assert.equal(e.httpStatus, 400);
    assert.equal(e.retryAfter, null);
    assert.equal(e.message, `malformed: ${e.detail}`);
    assert.deepEqual(e.toJSON(), { code: 'malformed', number: 100, http_status: 400, retry_after: null, detail: e.detail });
    return true;
  });
  assert.throws(() => new edr.EdrlinkClient({}), { code: 'invalid_argument' });
  // The code table is the shared vector file (generated from the core).
  const vec = JSON.parse(readFileSync(new URL('../vectors/errors.json', import.meta.url), 'utf8')).cases;
  assert.deepEqual(edr.errorCodes(), vec.map((c) => ({ name: c.name, number: c.expect.number, status: c.expect.http_status })));
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
  const c1 = new edr.EdrlinkClient({ device, fetch: problem(403, 'integration_disabled'), opTimeoutSecs: 2 });
  await assert.rejects(c1.enroll(token), (e) => e instanceof edr.EdrlinkError && e.code === 'integration_disabled');
  const seen = [];
  const c2 = new edr.EdrlinkClient({ device, opTimeoutSecs: 0, serviceUrl: 'http://127.0.0.1:9',
    fetch: async (url, init) => { seen.push([url, init.method, init.headers['content-type']]); throw new TypeError('fetch failed'); } });
  await assert.rejects(c2.enroll(token), { code: 'transport' });
  assert.deepEqual(seen[0], ['http://127.0.0.1:9/v1/redeem', 'POST', 'application/jose']);
  assert.equal(c2.health().onboarded, false);
  const le = c2.health().last_error;
  assert.equal(le.code, 'transport');
  assert.equal(le.number, 700);
  assert.equal(typeof le.detail, 'string');
  // The global fetch is used by default (nothing listens on port 9).
  const c3 = new edr.EdrlinkClient({ device, opTimeoutSecs: 0, serviceUrl: 'http://127.0.0.1:9' });
  await assert.rejects(c3.enroll(token), { code: 'transport' });
});

test('options: every client and driver option of tests/options-schema.json, by camelCase name', () => {
  const schema = JSON.parse(readFileSync(new URL('../options-schema.json', import.meta.url), 'utf8')).options;
  const camel = (n) => n.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  const defaults = edr.defaultOptions();
  const applicable = schema.filter((o) => (o.scope === 'client' || o.scope === 'driver') && o.name !== 'device');
  assert.deepEqual(Object.keys(defaults).sort(), applicable.map((o) => camel(o.name)).sort());
  for (const o of applicable) {
    assert.deepEqual(defaults[camel(o.name)], o.default, o.name);
    if (o.type === 'integer') {
      assert.throws(() => new edr.EdrlinkClient({ device, [camel(o.name)]: o.max + 1 }),
        (e) => e.code === 'invalid_argument' && e.detail.includes(o.name), o.name);
    }
  }
  for (const o of schema.filter((o) => o.scope === 'native' || o.scope === 'transport')) {
    assert.throws(() => new edr.EdrlinkClient({ device, [camel(o.name)]: 'x' }),
      (e) => e.code === 'invalid_argument' && e.detail.includes(o.name), o.name);
  }
  // Every default passed back explicitly is accepted.
  new edr.EdrlinkClient({ device, ...defaults }).free();
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

// ---------------------------------------------------------------- the `lite` module
// `@edrlink/wasm/lite`: tokens, keys, envelopes, PAE and down-level signing, from the same
// core as the full client, in a separate (much smaller) wasm module.
import * as lite from '../../wasm/js/lite-node.mjs';
import * as liteWeb from '../../wasm/js/lite-web.mjs';

const hex = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const vectors = (name) => JSON.parse(readFileSync(new URL(`../vectors/${name}.json`, import.meta.url), 'utf8')).cases;

test('lite: has no client, the crypto API and the package exports map', () => {
  assert.equal(lite.EdrlinkClient, undefined);
  assert.equal(lite.eicarTestEvent, undefined);
  for (const f of ['inspectToken', 'verifyToken', 'sealEnvelope', 'openEnvelope', 'verifyEnvelope', 'pae',
    'verifySignature', 'keyIdOf', 'sharedKeyAuthorization', 'sharedKeyStringToSign', 'errorCodes', 'randomId']) {
    assert.equal(typeof lite[f], 'function', f);
  }
  assert.equal(lite.version(), edr.version());
  assert.deepEqual(lite.errorCodes(), edr.errorCodes());
  const pkg = JSON.parse(readFileSync(new URL('package.json', pkgDir), 'utf8'));
  assert.equal(pkg.exports['./lite'].node, './js/lite-node.mjs');
  assert.equal(pkg.exports['./lite'].browser, './js/lite-web.mjs');
  for (const f of ['pkg/lite-web/edrlink_lite_bg.wasm', 'pkg/lite-node/']) assert.ok(pkg.files.includes(f), f);
  // The point of the split: the lite module is much smaller than the full client.
  const full = readFileSync(new URL('pkg/web/edrlink_wasm_bg.wasm', pkgDir)).length;
  const small = readFileSync(new URL('pkg/lite-web/edrlink_lite_bg.wasm', pkgDir)).length;
  assert.ok(small * 2 < full, `lite ${small} bytes vs full ${full}`);
});

test('lite: envelope vectors (seal byte-identical, open and every refusal code)', () => {
  for (const c of vectors('envelopes')) {
    const i = c.input;
    if (c.kind === 'envelope_seal') {
      const key = lite.SigningKey.fromSeed(hex(i.seed_hex));
      const env = lite.sealEnvelope(i.payload_type, hex(i.payload_hex), key);
      assert.equal(new TextDecoder().decode(env), c.expect.envelope, c.name);
      assert.deepEqual(key.seal(i.payload_type, hex(i.payload_hex)), env, c.name);
      key.free();
    } else {
      const env = new TextEncoder().encode(i.envelope);
      const open = () => lite.openEnvelope(env, i.payload_type, hex(i.public_key_hex));
      if (c.expect.error) {
        assert.throws(open, (e) => e instanceof lite.EdrlinkError && e.code === c.expect.error, c.name);
      } else if (!i.payload_type.endsWith('+gzip')) {
        assert.deepEqual(open(), hex(c.expect.payload_hex), c.name);
      }
    }
  }
});

test('lite: PAE and down-level SharedKey vectors', () => {
  for (const c of vectors('pae')) {
    assert.deepEqual(lite.pae(c.input.payload_type, hex(c.input.payload_hex)), hex(c.expect.pae_hex), c.name);
  }
  let n = 0;
  for (const c of vectors('downlevel')) {
    if (c.kind !== 'shared_key_sign') continue;
    const i = c.input;
    assert.equal(lite.sharedKeyStringToSign(i.method, i.path, i.content_type, i.date, hex(i.body_hex)), c.expect.string_to_sign, c.name);
    assert.equal(lite.sharedKeyAuthorization(i.workspace_id, hex(i.key_hex), i.method, i.path, i.content_type, i.date, hex(i.body_hex)),
      c.expect.authorization, c.name);
    n++;
  }
  assert.ok(n > 0);
  assert.equal(lite.sharedKeyDateHeader(), 'x-edrlink-date');
  // No binding-side checks: an empty key is signed by the core like any other (as in
  // every binding), the same HMAC node:crypto computes.
  const sts = lite.sharedKeyStringToSign('POST', '/', 'a/b', 'd', new Uint8Array());
  const mac = createHmac('sha256', Buffer.alloc(0)).update(sts).digest('base64');
  assert.equal(lite.sharedKeyAuthorization('ws', new Uint8Array(), 'POST', '/', 'a/b', 'd', new Uint8Array()), `SharedKey ws:${mac}`);
  assert.equal(edr.sharedKeyAuthorization('ws', new Uint8Array(), 'POST', '/', 'a/b', 'd', new Uint8Array()), `SharedKey ws:${mac}`);
});

test('lite: token vectors verify and inspect as in the full module', () => {
  let n = 0;
  for (const c of vectors('tokens')) {
    if (c.kind !== 'token_verify') continue;
    const i = c.input;
    const args = [i.token, i.keyset_json, i.now, i.skew];
    const run = (m) => { try { return { ok: m.verifyToken(...args) }; } catch (e) { return { code: e.code, lite: e instanceof m.EdrlinkError }; } };
    const a = run(lite), b = run(edr);
    assert.deepEqual(a, b, c.name);
    n++;
  }
  assert.ok(n > 0);
  assert.throws(() => lite.inspectToken('not a token'), (e) => e instanceof lite.EdrlinkError && e.code === 'malformed');
});

test('lite: key, token inspection and P-256 vectors (its own build of ring)', () => {
  // The lite module is built apart from the full client (ring size-optimised, its own
  // strict JSON reading in the core), so it is checked against the vectors directly.
  const kinds = {};
  const count = (k) => { kinds[k] = (kinds[k] || 0) + 1; };
  const code = (f) => { try { f(); return null; } catch (e) { assert.ok(e instanceof lite.EdrlinkError || e instanceof edr.EdrlinkError); return e.code; } };
  for (const c of vectors('keys')) {
    const key = lite.SigningKey.fromSeed(hex(c.input.seed_hex));
    if (c.kind === 'key_from_seed') {
      assert.equal(Buffer.from(key.publicKey).toString('hex'), c.expect.public_key_hex, c.name);
      assert.equal(key.keyId, c.expect.kid, c.name);
    } else if (c.kind === 'ed25519_sign') {
      const sig = key.sign(hex(c.input.message_hex));
      assert.equal(Buffer.from(sig).toString('hex'), c.expect.signature_hex, c.name);
      assert.ok(lite.verifySignature(key.publicKey, hex(c.input.message_hex), sig), c.name);
    } else continue;
    key.free();
    count(c.kind);
  }
  for (const c of vectors('tokens')) {
    if (c.kind !== 'token_inspect') continue;
    if (c.expect.error) {
      assert.equal(code(() => lite.inspectToken(c.input.token)), c.expect.error, c.name);
    } else {
      const r = lite.inspectToken(c.input.token);
      assert.equal(r.kid, c.expect.kid, c.name);
      assert.deepEqual(r.claims, c.expect.claims, c.name);
    }
    count(c.kind);
  }
  // The lite module does not verify P-256 signatures (the full client does): an envelope
  // whose key is P-256 is `unsupported_algorithm` there, valid or not, once the checks
  // before the signature (envelope form, keyid) pass as in the full client.
  for (const c of vectors('p256')) {
    const i = c.input;
    if (c.kind === 'envelope_open') {
      const env = new TextEncoder().encode(i.envelope);
      const open = (m) => () => m.openEnvelope(env, i.payload_type, hex(i.public_key_hex));
      if (c.expect.error) assert.equal(code(open(edr)), c.expect.error, c.name);
      else assert.deepEqual(open(edr)(), hex(c.expect.payload_hex), c.name);
      const p256Key = hex(i.public_key_hex).length === 65;
      const before = c.expect.error && !['bad_signature'].includes(c.expect.error);
      assert.equal(code(open(lite)), p256Key && !before ? 'unsupported_algorithm' : c.expect.error, c.name);
    } else if (c.kind === 'token_verify') {
      assert.equal(code(() => lite.verifyToken(i.token, i.keyset_json, i.now, i.skew)), c.expect.error, c.name);
    } else continue;
    count(c.kind);
  }
  for (const k of ['key_from_seed', 'ed25519_sign', 'token_inspect', 'envelope_open', 'token_verify']) assert.ok(kinds[k] > 0, k);
});

test('lite: the web build loads from bytes and agrees with the node build', async () => {
  await liteWeb.init(readFileSync(new URL('pkg/lite-web/edrlink_lite_bg.wasm', pkgDir)));
  const k = liteWeb.SigningKey.fromSeed(new Uint8Array(32).fill(5));
  const k2 = edr.SigningKey.fromSeed(new Uint8Array(32).fill(5));
  const payload = new Uint8Array(3000).map((_, i) => i & 0xff);
  const env = liteWeb.sealEnvelope('a/b', payload, k);
  assert.deepEqual(env, edr.sealEnvelope('a/b', payload, k2));
  assert.deepEqual(edr.openEnvelope(env, 'a/b', k.publicKey), payload);
  assert.throws(() => liteWeb.openEnvelope(env, 'a/b', new Uint8Array(31)), (e) => e instanceof liteWeb.EdrlinkError && e.code === 'malformed');
});

// ---------------------------------------------------------------- host keys and stores
// (against the real service: tests/wasm/hostkeys.test.mjs; here without one)

test('stores: memoryStore and chromeStorageStore keep the credential JSON; webCryptoKeys needs IndexedDB', async () => {
  const m = edr.memoryStore();
  assert.equal(await m.load(), null);
  await m.save('{"v":1}');
  assert.equal(await m.load(), '{"v":1}');
  await m.delete();
  assert.equal(await m.load(), null);
  const items = {};
  const area = { get: async (k) => (k in items ? { [k]: items[k] } : {}), set: async (o) => Object.assign(items, o), remove: async (k) => { delete items[k]; } };
  const c = edr.chromeStorageStore({ key: 'cred', area });
  assert.equal(await c.load(), null);
  await c.save('{"a":1}');
  assert.deepEqual(items, { cred: '{"a":1}' });
  assert.equal(await c.load(), '{"a":1}');
  await c.delete();
  assert.deepEqual(items, {});
  assert.throws(() => edr.chromeStorageStore(), TypeError);
  // Node has WebCrypto but no IndexedDB: no default host keys here (software keys).
  assert.equal(globalThis.indexedDB, undefined);
  assert.throws(() => edr.webCryptoKeys(), /IndexedDB/);
  assert.throws(() => edr.webCryptoKeys({ algorithm: 'rsa' }), /algorithm/);
  for (const f of ['webCryptoKeys', 'indexedDbStore', 'chromeStorageStore', 'memoryStore']) assert.equal(typeof web[f], 'function', f);
});

test('keys option: the redeem request is signed by the host key (P-256, WebCrypto raw r||s), the store gets nothing before enrollment', async () => {
  const vec = JSON.parse(readFileSync(new URL('../vectors/tokens.json', import.meta.url), 'utf8'));
  const token = vec.cases.find((c) => c.kind === 'token_issue').expect.token;
  const { subtle } = globalThis.crypto;
  let pair;
  const calls = [];
  const keys = {
    async createKey() {
      calls.push('createKey');
      pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      return { handle: 'p256-1', publicKey: new Uint8Array(await subtle.exportKey('raw', pair.publicKey)) };
    },
    async sign(handle, message) {
      calls.push(`sign ${handle}`);
      return subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, message); // an ArrayBuffer
    },
    async deleteKey(handle) { calls.push(`delete ${handle}`); },
  };
  const store = edr.memoryStore();
  let body;
  const c = new edr.EdrlinkClient({ device, keys, store, opTimeoutSecs: 0, serviceUrl: 'http://127.0.0.1:9',
    fetch: async (url, init) => { body = new TextDecoder().decode(init.body); throw new TypeError('fetch failed'); } });
  // The token is past its expiry; the client does not judge that (the service does).
  await assert.rejects(c.enroll(token), { code: 'transport' });
  assert.deepEqual(calls, ['createKey', 'sign p256-1']);
  const [h, p, sig] = body.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  assert.equal(header.alg, 'ES256');
  assert.equal(header.jwk.kty, 'EC');
  const ok = await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, Buffer.from(sig, 'base64url'), new TextEncoder().encode(`${h}.${p}`));
  assert.ok(ok, 'the request carries the host signature');
  assert.equal(await store.load(), null);
  c.free();
});

test('P-256 public keys (WebCrypto raw export) in verifySignature and keyIdOf, full and lite alike', async () => {
  const { subtle } = globalThis.crypto;
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const pub = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  assert.equal(pub.length, 65);
  const msg = new TextEncoder().encode('host-signed');
  const sig = new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, msg));
  assert.equal(edr.verifySignature(pub, msg, sig), true);
  assert.equal(edr.verifySignature(pub, new TextEncoder().encode('other'), sig), false);
  // The lite module does not verify P-256 (the full client does): it says so instead of
  // answering "does not verify".
  assert.throws(() => lite.verifySignature(pub, msg, sig), (e) => e instanceof lite.EdrlinkError && e.code === 'unsupported_algorithm');
  for (const m of [edr, lite]) {
    assert.equal(m.keyIdOf(pub), edr.keyIdOf(pub));
    const offCurve = pub.slice(); offCurve[64] ^= 1;
    // An off-curve point never verifies (refused as malformed, or not verifying).
    let verdict;
    try { verdict = m.verifySignature(offCurve, msg, sig); } catch (e) { verdict = e.code; }
    assert.ok(verdict === false || verdict === 'malformed' || (m === lite && verdict === 'unsupported_algorithm'), String(verdict));
    assert.throws(() => m.keyIdOf(pub.slice(1)), (e) => e.code === 'malformed');
  }
  // Ed25519 stays a plain yes/no in both.
  const k = lite.SigningKey.fromSeed(new Uint8Array(32).fill(9));
  for (const m of [edr, lite]) {
    assert.equal(m.verifySignature(k.publicKey, msg, k.sign(msg)), true);
    assert.equal(m.verifySignature(k.publicKey, msg, new Uint8Array(64)), false);
  }
  k.free();
});
