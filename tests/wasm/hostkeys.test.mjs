// Host keys and host credential store from Node, against the REAL reference service:
// `new EdrlinkClient({ keys, store })` where `keys` is a signer written here on Node's
// own WebCrypto (`crypto.subtle`, Ed25519 and ECDSA P-256) and `store` keeps the
// credential JSON in memory. edrlink only ever gets handles, public keys and signatures.
//
//   EDRLINK_SERVICE_URL=http://127.0.0.1:PORT EDRLINK_ADMIN_KEY=... \
//     node --test tests/wasm/hostkeys.test.mjs          (tests/wasm/run.sh starts the service)
//
// What it proves: enrollment, batches and rotation with a host key (stored == sent, the
// old key deleted once the new one is in use), a restart from the store with the same key,
// offboarding deleting the credential and the key; a host signer that rejects, returns a
// signature of the wrong length, never answers or answers after `signerTimeoutSecs`
// fails the operation with `signer_failed` and loses no queued event (recovery delivers
// them all, exactly once); no byte of the private key reaches the store, the transport,
// the events or the logs, and the saved credential has `host_key`, not `key_seed`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto, randomBytes } from 'node:crypto';
import * as edr from '../../wasm/js/node.mjs';

const URL_ = process.env.EDRLINK_SERVICE_URL;
const ADMIN_KEY = process.env.EDRLINK_ADMIN_KEY;
if (!URL_ || !ADMIN_KEY) throw new Error('set EDRLINK_SERVICE_URL and EDRLINK_ADMIN_KEY (tests/wasm/run.sh does)');
const PARTNER = 'acme-av';
const subtle = webcrypto.subtle;

// ---------------------------------------------------------------- the service side

async function admin(method, path, body) {
  const r = await fetch(URL_ + path, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A fresh tenant with the integration on and a token for it. */
async function tenant() {
  const id = `hk-${randomBytes(6).toString('hex')}`;
  await admin('POST', '/admin/tenants', { tenant_id: id, region: 'eu' });
  await admin('PUT', `/admin/tenants/${id}/integrations/${PARTNER}`, { enabled: true });
  const { token } = await admin('POST', `/admin/tenants/${id}/integrations/${PARTNER}/tokens`, {});
  return {
    id, token,
    /** Threat names of the detections the service stored (one alert per stored detection). */
    stored: async () => (await admin('GET', `/admin/tenants/${id}/alerts`)).alerts.map((a) => a.threat_name).sort(),
  };
}

// ---------------------------------------------------------------- a host signer on Node's WebCrypto

const GEN = { 'ed25519': { name: 'Ed25519' }, 'ecdsa-p256': { name: 'ECDSA', namedCurve: 'P-256' } };
const SIGN = { 'ed25519': { name: 'Ed25519' }, 'ecdsa-p256': { name: 'ECDSA', hash: 'SHA-256' } };

/**
 * `keys` for the client, on node:crypto's WebCrypto. The key pairs are made
 * *extractable* only so that this test can export the private key (JWK `d`) and look
 * for it in everything edrlink wrote or sent; edrlink never gets it.
 * `mode` switches its behaviour: ok | reject | short (wrong length) | hang | late.
 */
function subtleKeys(algorithm) {
  const keys = new Map();
  const k = {
    mode: 'ok', lateMs: 0,
    calls: [], deleted: [], privateParts: [],
    handles: () => [...keys.keys()],
    async createKey() {
      k.calls.push('createKey');
      if (k.mode === 'reject') throw new Error('keystore locked');
      const pair = await subtle.generateKey(GEN[algorithm], true, ['sign', 'verify']);
      const jwk = await subtle.exportKey('jwk', pair.privateKey);
      k.privateParts.push(Buffer.from(jwk.d, 'base64url'));
      const publicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
      const handle = `node-subtle:${algorithm}:${keys.size + k.deleted.length + 1}`;
      keys.set(handle, pair.privateKey);
      return { handle, publicKey };
    },
    async sign(handle, message) {
      k.calls.push('sign');
      const key = keys.get(handle);
      if (!key) throw new Error(`no key ${handle}`);
      switch (k.mode) {
        case 'reject': throw new Error('user cancelled the signing prompt');
        case 'hang': return new Promise(() => {});
        case 'short': return new Uint8Array(await subtle.sign(SIGN[algorithm], key, message)).slice(0, 63);
        case 'late': await new Promise((r) => setTimeout(r, k.lateMs)); break;
        default:
      }
      return new Uint8Array(await subtle.sign(SIGN[algorithm], key, message));
    },
    async deleteKey(handle) {
      k.calls.push('deleteKey');
      keys.delete(handle);
      k.deleted.push(handle);
    },
  };
  return k;
}

/** A store that keeps the credential JSON in memory and remembers every value it was given. */
function recordingStore() {
  const s = { value: null, saved: [], deletes: 0, failSave: false };
  s.load = async () => s.value;
  s.save = async (json) => { if (s.failSave) throw new Error('quota exceeded'); s.saved.push(json); s.value = json; };
  s.delete = async () => { s.deletes++; s.value = null; };
  return s;
}

const device = (name) => ({ device_id: `${name}-${randomBytes(4).toString('hex')}`, hostname: 'hk-host', os: 'linux',
  os_version: '6.1', product: 'hostkeys-test', product_version: '1.0' });

/** A client with host keys, a recording store, and every request, event and log line kept. */
function newClient({ keys, store, deviceFacts, extra = {} }) {
  const seen = { requests: [], events: [], logs: [] };
  const client = new edr.EdrlinkClient({
    device: deviceFacts, keys, store, opTimeoutSecs: 15, signerTimeoutSecs: 1,
    fetch: async (url, init) => {
      seen.requests.push({ url, headers: JSON.stringify(init.headers), body: Buffer.from(init.body) });
      return fetch(url, init);
    },
    onEvent: (e) => seen.events.push(JSON.stringify(e)),
    onLog: (level, message) => seen.logs.push(`${level} ${message}`),
    logLevel: 'trace',
    ...extra,
  });
  return { client, seen };
}

let n = 0;
const detection = (tag) => ({ type: 'detection', time: new Date().toISOString(), threat_name: `${tag}-${++n}`,
  file_path: `/tmp/${tag}-${n}`, sha256: '', severity: 'high', action: 'blocked' });

/** Submits `count` detections and returns their threat names. */
function submit(client, tag, count) {
  const names = [];
  for (let i = 0; i < count; i++) { const e = detection(tag); client.submit(e); names.push(e.threat_name); }
  return names;
}

/** The code of what `p` rejected with, or of `health().last_error` when it resolved with events still queued. */
async function failureCode(client, p) {
  try {
    const out = await p;
    assert.ok(out && out.queued > 0, `expected a failure, got ${JSON.stringify(out)}`);
    return client.health().last_error?.code;
  } catch (e) {
    assert.ok(e instanceof edr.EdrlinkError, String(e));
    return e.code;
  }
}

/** Every form of each private part a leak could take, as bytes and as text. */
function assertNoPrivateKey(privateParts, { blobs, texts }) {
  assert.ok(privateParts.length > 0);
  for (const d of privateParts) {
    assert.equal(d.length, 32);
    const forms = [d.toString('base64url'), d.toString('base64'), d.toString('base64').replace(/=+$/, ''), d.toString('hex'),
      d.toString('hex').toUpperCase(), Array.from(d).join(',')];
    for (const b of blobs) assert.equal(b.indexOf(d), -1, 'a private key byte string was handed to edrlink\'s outputs');
    for (const t of texts) for (const f of forms) assert.ok(!t.includes(f), 'a private key (encoded) was handed to edrlink\'s outputs');
  }
}

// ---------------------------------------------------------------- the story, per algorithm

for (const algorithm of ['ed25519', 'ecdsa-p256']) {
  test(`${algorithm}: enroll, batches, rotate, restart from the store; stored == sent; no private key byte leaves the host`, async () => {
    const t = await tenant();
    const keys = subtleKeys(algorithm);
    const store = recordingStore();
    const facts = device(`hk-${algorithm}`);
    const { client, seen } = newClient({ keys, store, deviceFacts: facts });
    const health = await client.enroll(t.token);
    assert.equal(health.onboarded, true);
    assert.deepEqual(keys.calls.filter((c) => c === 'createKey').length, 1);
    assert.ok(store.saved.length >= 1, 'the credential was saved through the store');
    const first = JSON.parse(store.value);
    assert.equal(first.key_seed, undefined);
    assert.equal(first.host_key.handle, keys.handles()[0]);
    assert.equal(first.host_key.jwk.kty, algorithm === 'ed25519' ? 'OKP' : 'EC');
    assert.equal(client.exportCredential(), store.value, 'the store holds what the client holds');

    const sent = [...submit(client, 'batch-a', 5)];
    let out = await client.flush(10);
    assert.equal(out.queued, 0);
    sent.push(...submit(client, 'batch-b', 3));
    out = await client.flush(10);
    assert.equal(out.queued, 0);
    assert.deepEqual(await t.stored(), [...sent].sort());

    // Rotation: a new host key; the old one is deleted once the new one is in use.
    const oldHandle = first.host_key.handle;
    await client.rotate();
    sent.push(...submit(client, 'after-rotate', 4));
    out = await client.flush(10);
    assert.equal(out.queued, 0);
    assert.equal(keys.calls.filter((c) => c === 'createKey').length, 2);
    assert.deepEqual(keys.deleted, [oldHandle]);
    const second = JSON.parse(store.value);
    assert.notEqual(second.host_key.handle, oldHandle);
    assert.deepEqual(keys.handles(), [second.host_key.handle]);
    assert.ok(seen.events.some((e) => e.includes('credential_rotated')));
    assert.deepEqual(await t.stored(), [...sent].sort());

    // A restart: a new client loads the credential from the store and keeps signing with
    // the same host key.
    client.free();
    const again = newClient({ keys, store, deviceFacts: facts });
    // Its first call needs the credential: it waits for the store's load.
    assert.equal(await again.client.handshake(), 'open');
    sent.push(...submit(again.client, 'after-restart', 2));
    out = await again.client.flush(10);
    assert.equal(out.queued, 0);
    assert.equal(again.client.installationId, second.installation_id);
    assert.equal(keys.calls.filter((c) => c === 'createKey').length, 2, 'no new key after the restart');
    assert.deepEqual(await t.stored(), [...sent].sort());

    // Nothing the SDK handed out holds a private key.
    assert.ok(store.saved.every((s) => !s.includes('key_seed')));
    const all = [seen, again.seen];
    assertNoPrivateKey(keys.privateParts, {
      blobs: all.flatMap((s) => s.requests.map((r) => r.body)),
      texts: [...store.saved, again.client.exportState(), again.client.exportCredential(),
        ...all.flatMap((s) => [...s.requests.map((r) => r.url + r.headers + r.body.toString('latin1')), ...s.events, ...s.logs])],
    });

    // Offboarding: the credential is deleted from the store and the key from the host.
    await again.client.offboard();
    assert.equal(store.value, null);
    assert.equal(store.deletes, 1);
    assert.deepEqual(keys.handles(), []);
    assert.deepEqual(keys.deleted, [oldHandle, second.host_key.handle]);
    again.client.free();
  });
}

// ---------------------------------------------------------------- failing and slow signers

/** An enrolled client whose signer works, with nothing queued. */
async function enrolled(algorithm) {
  const t = await tenant();
  const keys = subtleKeys(algorithm);
  const store = recordingStore();
  const c = newClient({ keys, store, deviceFacts: device('hk-fail') });
  await c.client.enroll(t.token);
  await c.client.flush(10);
  return { t, keys, store, ...c };
}

const FAILURES = [
  ['rejects', (k) => { k.mode = 'reject'; }],
  ['returns a signature of the wrong length', (k) => { k.mode = 'short'; }],
  ['never answers', (k) => { k.mode = 'hang'; }],
  ['answers after signerTimeoutSecs', (k) => { k.mode = 'late'; k.lateMs = 1600; }],
];

for (const [what, arm] of FAILURES) {
  for (const algorithm of ['ed25519', 'ecdsa-p256']) {
    test(`${algorithm}: a host signer that ${what} → signer_failed, the queue is kept, recovery delivers every event once`, async () => {
      const { t, keys, client, seen } = await enrolled(algorithm);
      const sent = submit(client, `fail-${keys.mode}`, 3);
      const before = client.health().queued_events;
      assert.ok(before >= 3);
      arm(keys);
      const code = await failureCode(client, client.flush(3));
      assert.equal(code, 'signer_failed');
      assert.equal(client.health().queued_events, before, 'no queued event was dropped');
      assert.ok(seen.logs.some((l) => l.includes('signer')), 'the failure is logged');
      keys.mode = 'ok';
      const out = await client.flush(15);
      assert.equal(out.queued, 0);
      assert.deepEqual(await t.stored(), [...sent].sort());
      client.free();
    });
  }
}

test('createKey that rejects at enrollment → signer_failed, nothing saved', async () => {
  const t = await tenant();
  const keys = subtleKeys('ed25519');
  keys.mode = 'reject';
  const store = recordingStore();
  const { client } = newClient({ keys, store, deviceFacts: device('hk-create') });
  await assert.rejects(client.enroll(t.token), (e) => e instanceof edr.EdrlinkError && e.code === 'signer_failed');
  assert.equal(client.health().onboarded, false);
  assert.deepEqual(store.saved, []);
  client.free();
});

test('a store that cannot save → storage; the signer is untouched', async () => {
  const t = await tenant();
  const keys = subtleKeys('ecdsa-p256');
  const store = recordingStore();
  store.failSave = true;
  const { client } = newClient({ keys, store, deviceFacts: device('hk-store') });
  await assert.rejects(client.enroll(t.token), (e) => e instanceof edr.EdrlinkError && e.code === 'storage' && e.detail.includes('quota exceeded'));
  client.free();
});

test('a host key credential without keys → invalid_state; keys that are not an object → invalid_argument', async () => {
  const { client, store, keys } = await enrolled('ed25519');
  client.free();
  const cred = store.value;
  assert.throws(() => new edr.EdrlinkClient({ device: device('x'), credential: cred }), (e) => e.code === 'invalid_state');
  const c2 = new edr.EdrlinkClient({ device: device('x'), store });
  await assert.rejects(c2.flush(1), (e) => e.code === 'invalid_state');
  c2.free();
  for (const bad of [42, 'hsm', { createKey: 1 }]) {
    assert.throws(() => new edr.EdrlinkClient({ device: device('x'), keys: bad }), (e) => e.code === 'invalid_argument' && e.detail.includes('keys'));
  }
  assert.throws(() => new edr.EdrlinkClient({ device: device('x'), store: { load() {} } }), (e) => e.code === 'invalid_argument' && e.detail.includes('store'));
  assert.equal(keys.handles().length, 1);
});

test('an existing software-key credential keeps working under host keys (browsers upgraded to the WebCrypto default)', async () => {
  const t = await tenant();
  const facts = device('hk-upgrade');
  const store = recordingStore();
  const old = newClient({ keys: 'software', store, deviceFacts: facts });
  await old.client.enroll(t.token);
  assert.ok(JSON.parse(store.value).key_seed, 'enrolled with a software key');
  old.client.free();
  const keys = subtleKeys('ed25519');
  const { client } = newClient({ keys, store, deviceFacts: facts });
  const sent = submit(client, 'upgrade', 2);
  assert.equal((await client.flush(10)).queued, 0);
  assert.deepEqual(keys.calls, [], 'the software key signs; the host is not asked');
  assert.deepEqual(await t.stored(), [...sent].sort());
  client.free();
});
