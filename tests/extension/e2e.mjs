// First, the persistence API alone (exportState / restore / urlDetectionEvent, Node entry).
// End-to-end: the example MV3 extension (examples/browser-extension/dist) in Chromium
// (playwright-core launchPersistentContext, --load-extension, new headless mode) against the
// REAL reference service (edrlink-service on loopback, temp SQLite db), driven over the admin API.
//   options page: paste + inspect the token (countdown, warnings), enroll (a non-extractable
//     WebCrypto key made in the extension and kept in its IndexedDB; the credential, with the
//     key's handle and no key seed, in chrome.storage.local)
//   simulate a blocked download → the URL detection arrives as an alert
//   service stopped → two more detections queue up (in-flight batch persisted in chrome.storage.local)
//   the service worker is stopped (as Chrome does when idle) → service restarted (same db, same port)
//   → the chrome.alarms retry wakes the worker, which restores the state and re-sends the same
//     batch: both detections arrive exactly once
//   the service stores a batch but its answer is lost (test proxy) and the worker is stopped
//     → on wake the same batch_id is re-sent and deduplicated: that detection is stored once
//   integration toggled off → the popup reports the blocked flow, the detection stays queued
//   integration on again (new epoch) → the popup reports "revoked", the retry alarm stops
//   the worker's console has no CSP violation and no error
// Usage: node tests/extension/e2e.mjs <edrlink-service binary> <extension dist dir>
// Screenshots: artifacts/screenshots/extension-*.png. Ends with "N passed, N failed".
import { spawn } from 'node:child_process';
import net from 'node:net';
import { copyFileSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'tools/package.json'));
const { chromium } = require('playwright-core');
const SHOTS = path.join(ROOT, 'artifacts/screenshots');
const ADMIN_KEY = 'ext-e2e-admin-key-0123456789abcdefghij-' + process.pid;
const TENANT = 'contoso', PARTNER = 'acme-av';
const RETRY_SECS = 2; // test retry period (a storage setting; production default 60 s)

const results = [];
let tmp, ctx, svcProc;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); results.push([name, true]); console.log(`ok   ${name} (${Date.now() - t0} ms)`); }
  catch (e) { results.push([name, false]); console.log(`FAIL ${name}: ${e.stack || e}`); throw e; }
}
const until = async (what, fn, ms = 20000) => {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) { try { last = await fn(); if (last) return last; } catch (e) { last = e; } await sleep(200); }
  throw new Error(`timed out waiting for ${what} (last: ${last && last.stack ? last.stack : JSON.stringify(last)})`);
};

function startService(bin, db, listen, publicUrl) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['--db', db, '--listen', listen, '--public-url', publicUrl], { env: { ...process.env, EDRLINK_ADMIN_KEY: ADMIN_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`service did not start: ${out}`)), 30000);
    const on = (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve({ proc: p, url: m[1] }); }
    };
    p.stdout.on('data', on); p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (c) => { clearTimeout(timer); reject(new Error(`service exited ${c}: ${out}`)); });
  });
}
function stopService(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.removeAllListeners('exit');
    p.on('exit', () => resolve());
    p.kill('SIGTERM');
  });
}


// A loopback TCP proxy in front of the service (the token's service_url points at it via
// --public-url). `hold(marker)`: the next /v1/ingest whose signed batch mentions `marker` is
// forwarded and stored by the service, but its answer is held back (never delivered): an ack
// lost in transit. `release()` then cuts those connections.
function startProxy() {
  let upstreamPort = 0, marker = null;
  const held = [];
  const server = net.createServer((client) => {
    const up = net.connect(upstreamPort, '127.0.0.1');
    let req = Buffer.alloc(0), answered = false, holding = false;
    client.on('data', (d) => { if (answered) { req = Buffer.alloc(0); answered = false; } req = Buffer.concat([req, d]); up.write(d); });
    up.on('data', (d) => {
      if (!answered) {
        answered = true;
        holding = false;
        const text = req.toString('latin1');
        if (marker && text.startsWith('POST /v1/ingest ')) {
          try {
            const env = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
            if (Buffer.from(env.payload, 'base64').toString('utf8').includes(marker)) { holding = true; marker = null; held.push(client); }
          } catch { /* not a complete JSON envelope: pass through */ }
        }
      }
      if (!holding) client.write(d);
    });
    const close = () => { client.destroy(); up.destroy(); };
    up.on('error', close); client.on('error', close); up.on('close', () => { if (!holding) client.destroy(); }); client.on('close', () => up.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    setUpstream(p) { upstreamPort = p; },
    hold(m) { marker = m; },
    get held() { return held.length; },
    release() { for (const c of held.splice(0)) c.destroy(); },
    close() { server.close(); for (const c of held.splice(0)) c.destroy(); },
  })));
}

let SVC;
let proxy;
async function admin(method, p, body) {
  const r = await fetch(SVC + p, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const alerts = async () => (await admin('GET', `/admin/tenants/${TENANT}/alerts`)).alerts;
const countUrl = (list, url) => list.filter((a) => a.url === url).length;

async function main() {
  const [bin, dist] = process.argv.slice(2);
  if (!bin || !dist) throw new Error('usage: e2e.mjs <edrlink-service binary> <extension dist dir>');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edrlink-ext-'));
  mkdirSync(SHOTS, { recursive: true });
  const db = path.join(tmp, 'svc.db');
  proxy = await startProxy();
  const PUBLIC = `http://127.0.0.1:${proxy.port}`;
  ({ proc: svcProc, url: SVC } = await startService(bin, db, '127.0.0.1:0', PUBLIC));
  const port = new URL(SVC).port;
  proxy.setUpstream(Number(port));
  console.log(`service ${SVC} (db ${db}), partner API through the test proxy ${PUBLIC}`);

  // The package's `lite` module next to the full one in the unpacked extension (the example
  // ships only the full client): checked below under the extension pages' MV3 CSP.
  mkdirSync(path.join(dist, 'edrlink/pkg/lite-web'), { recursive: true });
  copyFileSync(path.join(ROOT, 'wasm/js/lite-web.mjs'), path.join(dist, 'edrlink/js/lite-web.mjs'));
  for (const f of ['edrlink_lite.js', 'edrlink_lite_bg.wasm']) {
    copyFileSync(path.join(ROOT, 'wasm/pkg/lite-web', f), path.join(dist, 'edrlink/pkg/lite-web', f));
  }
  ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true, // Playwright passes --headless: Chromium's new headless mode, which loads extensions
    viewport: { width: 1100, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
      `--disable-extensions-except=${dist}`, `--load-extension=${dist}`],
  });

  // Console of every incarnation of the extension's service worker.
  const swConsole = [];
  const attached = new WeakSet();
  const attach = (w) => {
    if (attached.has(w) || !w.url().startsWith('chrome-extension://')) return;
    attached.add(w);
    w.on('console', (m) => swConsole.push({ type: m.type(), text: m.text(), at: Date.now() }));
  };
  ctx.on('serviceworker', attach);
  const pageErrors = [];
  const pageConsoleErrors = [];
  ctx.on('page', (p) => {
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    p.on('console', (m) => { if (m.type() === 'error') pageConsoleErrors.push(m.text()); });
  });
  let sw = ctx.serviceWorkers().find((w) => w.url().startsWith('chrome-extension://'));
  sw ??= await ctx.waitForEvent('serviceworker', { timeout: 15000 });
  attach(sw);
  const extId = new URL(sw.url()).host;
  const EXT = `chrome-extension://${extId}`;
  console.log(`extension ${extId} loaded; worker ${sw.url()}`);

  const opts = await ctx.newPage();
  const popup = await ctx.newPage();
  await popup.setViewportSize({ width: 420, height: 560 });
  const storage = () => opts.evaluate(() => chrome.storage.local.get(null));
  const status = async () => (await opts.evaluate(() => chrome.runtime.sendMessage({ op: 'status' }))).status;
  const simulate = async (url) => {
    await opts.fill('#test-url', url);
    await opts.click('#simulate');
    await until(`detection ${url} logged`, async () => (await status()).detections.some((d) => d.url === url), 10000);
  };
  let token;
  const u1 = 'http://downloads.example.test/first-' + Date.now() + '.exe';
  const u2 = 'http://downloads.example.test/offline-a-' + Date.now() + '.exe';
  const u3 = 'http://downloads.example.test/offline-b-' + Date.now() + '.exe';

  // The persistence API itself (wasm/src/persist.rs), through the package's Node entry.
  await step('package: exportState / EdrlinkClient.restore / urlDetectionEvent (Node entry)', async () => {
    const pkg = await import(path.join(ROOT, 'wasm/js/node.mjs'));
    const device = { device_id: 'unit-1', hostname: 'h', os: 'linux', os_version: '1', product: 'p', product_version: '1' };
    const expectCode = (fn, code) => {
      try { fn(); } catch (e) { if (!(e instanceof pkg.EdrlinkError) || e.code !== code) throw new Error(`expected ${code}, got ${e.code}: ${e.message}`); return; }
      throw new Error(`expected ${code}, got no error`);
    };
    const c = new pkg.EdrlinkClient({ device });
    const empty = JSON.parse(c.exportState());
    if (empty.v !== 1 || empty.credential !== null || empty.outbox.records.length !== 0) throw new Error('empty state: ' + JSON.stringify(empty));
    const ev = pkg.urlDetectionEvent('https://bad.example/x.exe', 'Trojan.Test', 'critical', 1800000000);
    if (ev.type !== 'detection' || ev.action !== 'blocked' || ev.url !== 'https://bad.example/x.exe' || ev.severity !== 'critical' || ev.test || ev.file_path !== '' || ev.time !== '2027-01-15T08:00:00Z') throw new Error('event: ' + JSON.stringify(ev));
    if (pkg.urlDetectionEvent('https://a.example/', 'T').severity !== 'high') throw new Error('default severity');
    expectCode(() => pkg.urlDetectionEvent('https://a.example/', 'T', 'bogus'), 'invalid_argument');
    expectCode(() => pkg.urlDetectionEvent('https://a.example/', ''), 'malformed');
    c.submit(ev);
    c.submit(pkg.urlDetectionEvent('https://bad.example/y.exe', 'Trojan.Test'));
    const st = c.exportState();
    const r = pkg.EdrlinkClient.restore({ device }, st);
    if (r.health().queued_events !== 2 || r.pendingBatch !== null) throw new Error('restored: ' + JSON.stringify(r.health()));
    if (r.exportState() !== st) throw new Error('restore → export is not the identity');
    expectCode(() => pkg.EdrlinkClient.restore({ device }, 'not json'), 'malformed');
    expectCode(() => pkg.EdrlinkClient.restore({ device }, JSON.stringify({ ...JSON.parse(st), v: 2 })), 'malformed');
    expectCode(() => pkg.EdrlinkClient.restore({ device }, JSON.stringify({ ...JSON.parse(st), extra: 1 })), 'malformed');
    expectCode(() => pkg.EdrlinkClient.restore({}, st), 'invalid_argument');
    for (const x of [c, r]) x.free();
  });

  await step('admin API: tenant, integration on, access token', async () => {
    await admin('POST', '/admin/tenants', { tenant_id: TENANT, region: 'eu' });
    const i = await admin('PUT', `/admin/tenants/${TENANT}/integrations/${PARTNER}`, { enabled: true });
    if (!i.enabled) throw new Error(JSON.stringify(i));
    ({ token } = await admin('POST', `/admin/tenants/${TENANT}/integrations/${PARTNER}/tokens`, { lifetime_secs: 86400, max_uses: 5 }));
    if (!token || !token.startsWith('eyJ')) throw new Error('no token');
  });

  await step('options page: test retry period saved in storage', async () => {
    await opts.goto(`${EXT}/options.html`);
    await opts.waitForSelector('body[data-ready="1"]');
    await opts.fill('#retry-period', String(RETRY_SECS));
    await opts.click('#save-settings');
    await until('setting stored', async () => (await storage()).settings?.retryPeriodSecs === RETRY_SECS);
  });

  await step('options page: paste + inspect token (claims, live countdown, warnings)', async () => {
    await opts.fill('#token', token.slice(0, 40));
    await opts.click('#inspect');
    const err = await opts.$eval('#error', (e) => [e.hidden, e.dataset.code, e.textContent]);
    if (err[0] || err[1] !== 'malformed') throw new Error('broken token not reported: ' + err);
    await opts.fill('#token', token);
    await opts.click('#inspect');
    if (!(await opts.$eval('#error', (e) => e.hidden))) throw new Error('error not cleared');
    const s1 = await opts.$eval('#countdown', (e) => [e.dataset.status, Number(e.dataset.secondsLeft)]);
    if (s1[0] !== 'valid' || !(s1[1] > 3600)) throw new Error('countdown: ' + s1);
    await until('countdown ticks', async () => Number(await opts.$eval('#countdown', (e) => e.dataset.secondsLeft)) < s1[1], 5000);
    const claims = await opts.$eval('#claims', (e) => e.textContent);
    if (!claims.includes(TENANT) || !claims.includes(PUBLIC)) throw new Error('claims: ' + claims);
    const warns = await opts.$$eval('#warnings li', (l) => l.map((x) => x.textContent));
    if (warns.some((w) => /host permission/.test(w))) throw new Error('unexpected host-permission warning: ' + warns);
    await opts.screenshot({ path: path.join(SHOTS, 'extension-01-options-token.png'), fullPage: true });
  });

  await step('enroll: non-extractable WebCrypto key in the extension, credential only in chrome.storage.local', async () => {
    await opts.click('#enroll');
    await until('flow open', () => opts.$eval('#flow', (e) => e.dataset.flow === 'open'));
    const onb = await opts.$eval('#onboarded', (e) => e.dataset.onboarded);
    if (onb !== 'true') throw new Error('not onboarded');
    if ((await opts.$eval('#token', (e) => e.value)) !== '') throw new Error('token left in the page');
    const st = await storage();
    const state = JSON.parse(st.edrlink_state);
    if (!state.credential || !state.credential.installation_id) throw new Error('no credential in storage.local');
    // The credential (the store's copy and the state's) names a WebCrypto key by its handle
    // and holds no key seed; the key is a non-extractable CryptoKey in the extension's IndexedDB.
    const cred = JSON.parse(st.edrlink_credential || 'null');
    if (!cred || cred.installation_id !== state.credential.installation_id) throw new Error('no credential under edrlink_credential');
    for (const c of [cred, state.credential]) {
      if (c.key_seed !== undefined || !c.host_key || !c.host_key.handle) throw new Error('credential holds: ' + Object.keys(c));
    }
    const key = await opts.evaluate(async (handle) => {
      const db = await new Promise((res, rej) => { const r = indexedDB.open('edrlink-keys'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
      const rec = await new Promise((res) => { const r = db.transaction('records').objectStore('records').get(handle); r.onsuccess = () => res(r.result); });
      db.close();
      return rec ? { isCryptoKey: rec.privateKey instanceof CryptoKey, extractable: rec.privateKey.extractable, algorithm: rec.privateKey.algorithm.name } : null;
    }, cred.host_key.handle);
    if (!key || !key.isCryptoKey || key.extractable !== false) throw new Error('device key: ' + JSON.stringify(key));
    if (JSON.stringify(st).includes(token)) throw new Error('the access token was stored');
    const sync = await opts.evaluate(() => chrome.storage.sync.get(null));
    if (Object.keys(sync).length) throw new Error('storage.sync used: ' + Object.keys(sync));
    const inst = await admin('GET', `/admin/tenants/${TENANT}/installations`);
    if (!inst.installations.some((i) => i.id === state.credential.installation_id)) throw new Error('installation not listed: ' + JSON.stringify(inst));
    await opts.screenshot({ path: path.join(SHOTS, 'extension-02-enrolled.png'), fullPage: true });
  });

  await step('simulated blocked download → URL detection alert in the admin API', async () => {
    await simulate(u1);
    const a = await until('alert for ' + u1, async () => (await alerts()).find((x) => x.url === u1));
    if (!/high/i.test(a.severity) || a.test) throw new Error('alert: ' + JSON.stringify(a));
    await until('marked delivered', async () => (await status()).queued_detections === 0);
    await popup.goto(`${EXT}/popup.html`);
    await popup.waitForSelector('body[data-ready="1"]');
    await until('popup shows open flow', () => popup.$eval('#flow', (e) => e.dataset.flow === 'open'));
    await popup.screenshot({ path: path.join(SHOTS, 'extension-03-popup-delivered.png') });
  });

  let pendingId;
  await step('service stopped: two more detections are queued with an in-flight batch persisted', async () => {
    await stopService(svcProc);
    await simulate(u2);
    await simulate(u3);
    const s = await until('transport error and both queued', async () => {
      const x = await status();
      return x.queued_detections === 2 && x.last_error && x.last_error.code === 'transport' && x.pending_batch ? x : null;
    });
    const stored = JSON.parse((await storage()).edrlink_state);
    pendingId = stored.outbox.state.inflight && stored.outbox.state.inflight.batch_id;
    if (!pendingId || pendingId !== s.pending_batch.batch_id) throw new Error(`stored in-flight batch ${pendingId} != live ${JSON.stringify(s.pending_batch)}`);
    await until('popup shows 2 queued', () => popup.$eval('#queued', (e) => e.dataset.count === '2'));
    await until('popup shows the transport error', () => popup.$eval('#last-error', (e) => e.dataset.code === 'transport'));
    await popup.screenshot({ path: path.join(SHOTS, 'extension-04-popup-offline-queued.png') });
  });

  await step('worker stopped, service restarted (same db + port) → both arrive exactly once', async () => {
    await opts.goto('about:blank'); // no extension page keeps the worker busy
    await popup.goto('about:blank');
    const startsBefore = swConsole.filter((m) => m.text.startsWith('edrlink: worker started')).length;
    const cdp = await ctx.newCDPSession(opts);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await cdp.detach();
    ({ proc: svcProc } = await startService(bin, db, `127.0.0.1:${port}`, PUBLIC));
    // chrome.alarms wakes the stopped worker; it restores edrlink_state and resumes the batch.
    await until('worker restarted by the alarm', () => swConsole.filter((m) => m.text.startsWith('edrlink: worker started')).length > startsBefore, 30000);
    const resumed = await until('resume logged', () => swConsole.find((m) => m.at && m.text.includes('resuming delivery') && m.text.includes(pendingId)), 30000);
    console.log(`     ${resumed.text}`);
    await until('both alerts', async () => { const l = await alerts(); return countUrl(l, u2) >= 1 && countUrl(l, u3) >= 1; }, 30000);
    await sleep(RETRY_SECS * 1000 * 2 + 1000); // let any duplicate arrive
    const l = await alerts();
    const counts = [u1, u2, u3].map((u) => countUrl(l, u));
    if (counts.join() !== '1,1,1') throw new Error(`alert counts (u1,u2,u3) = ${counts}`);
    await opts.goto(`${EXT}/options.html`);
    await opts.waitForSelector('body[data-ready="1"]');
    await until('queue drained', async () => { const s = await status(); return s.queued_detections === 0 && !s.pending_batch; });
  });

  const u4 = 'http://downloads.example.test/ack-lost-' + Date.now() + '.exe';
  await step('ack lost + worker stopped → same batch re-sent on wake, service deduplicates: exactly once', async () => {
    proxy.hold(u4);
    await simulate(u4);
    await until('service stored the batch, answer held back', () => proxy.held === 1);
    const stored = await until('alert stored', async () => countUrl(await alerts(), u4) === 1);
    const before = await admin('GET', `/admin/tenants/${TENANT}/stats`);
    const state = JSON.parse((await storage()).edrlink_state);
    const id = state.outbox.state.inflight && state.outbox.state.inflight.batch_id;
    if (!id) throw new Error('the sent batch was not persisted before it left: ' + JSON.stringify(state.outbox.state));
    await opts.goto('about:blank');
    await popup.goto('about:blank');
    const startsBefore = swConsole.filter((m) => m.text.startsWith('edrlink: worker started')).length;
    const cdp = await ctx.newCDPSession(opts);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await cdp.detach();
    proxy.release();
    await until('worker restarted by the alarm', () => swConsole.filter((m) => m.text.startsWith('edrlink: worker started')).length > startsBefore, 30000);
    const resumed = await until('resume of the same batch logged', () => swConsole.find((m) => m.text.includes('resuming delivery') && m.text.includes(id)), 30000);
    console.log(`     ${resumed.text}`);
    await opts.goto(`${EXT}/options.html`);
    await opts.waitForSelector('body[data-ready="1"]');
    await until('queue drained (re-sent batch acknowledged)', async () => { const s = await status(); return s.queued_detections === 0 && !s.pending_batch; });
    await sleep(RETRY_SECS * 1000 * 2 + 1000);
    const n = countUrl(await alerts(), u4);
    const after = await admin('GET', `/admin/tenants/${TENANT}/stats`);
    console.log(`     stats before the re-send ${JSON.stringify(before)}, after ${JSON.stringify(after)} (heartbeats add batches)`);
    if (n !== 1 || !stored) throw new Error(`alert for ${u4} stored ${n} times`);
  });

  await step('integration off → popup reports the blocked flow, detection kept', async () => {
    const i = await admin('PUT', `/admin/tenants/${TENANT}/integrations/${PARTNER}`, { enabled: false });
    if (i.enabled) throw new Error(JSON.stringify(i));
    await popup.goto(`${EXT}/popup.html`);
    await popup.waitForSelector('body[data-ready="1"]');
    await popup.click('#simulate');
    await until('popup: flow blocked', async () => (await popup.$eval('#flow', (e) => e.dataset.flow)) === 'blocked');
    await until('popup: last error flow_blocked', async () => (await popup.$eval('#last-error', (e) => e.dataset.code)) === 'flow_blocked');
    const q = await popup.$eval('#queued', (e) => Number(e.dataset.count));
    if (!(q >= 1)) throw new Error('detection not kept: ' + q);
    const text = await popup.$eval('#flow', (e) => e.textContent);
    if (!/BLOCKED/.test(text)) throw new Error('flow text: ' + text);
    await popup.screenshot({ path: path.join(SHOTS, 'extension-05-popup-blocked.png') });
  });

  await step('integration off and on again → credential revoked: popup says so, retries stop', async () => {
    await admin('PUT', `/admin/tenants/${TENANT}/integrations/${PARTNER}`, { enabled: true });
    await popup.click('#retry');
    await until('popup: flow revoked', async () => (await popup.$eval('#flow', (e) => e.dataset.flow)) === 'revoked');
    await until('popup: last error revoked', async () => { const c = await popup.$eval('#last-error', (e) => e.dataset.code + ' ' + e.textContent); if (!/^(revoked|needs_reenroll|epoch_mismatch) /.test(c)) throw new Error(c); return true; });
    await until('retry alarm cleared', async () => (await status()).retry === null);
    const s = await status();
    if (!(s.queued_detections >= 1)) throw new Error('queued detection lost: ' + s.queued_detections);
    await popup.screenshot({ path: path.join(SHOTS, 'extension-06-popup-revoked.png') });
  });

  await step('lite module in an extension page (MV3 CSP): envelope, SharedKey, token check', async () => {
    const r = await opts.evaluate(async (tok) => {
      const m = await import(chrome.runtime.getURL('edrlink/js/lite-web.mjs'));
      await m.init(chrome.runtime.getURL('edrlink/pkg/lite-web/edrlink_lite_bg.wasm'));
      const k = m.SigningKey.generate();
      const env = m.sealEnvelope('application/json', new TextEncoder().encode('{"n":1}'), k);
      const back = new TextDecoder().decode(m.openEnvelope(env, 'application/json', k.publicKey));
      let code = null;
      try { m.openEnvelope(env, 'application/json', new Uint8Array(32)); } catch (e) { code = e instanceof m.EdrlinkError ? e.code : String(e); }
      const auth = m.sharedKeyAuthorization('ws', new Uint8Array(32).fill(9), 'POST', '/v1/downlevel/ingest', 'application/json',
        '2026-11-23T12:00:00Z', new Uint8Array());
      k.free();
      return { back, code, auth, status: m.inspectToken(tok).status, client: typeof m.EdrlinkClient };
    }, token);
    if (r.back !== '{"n":1}' || r.code !== 'unknown_key' || r.client !== 'undefined' || !r.auth.startsWith('SharedKey ws:')
        || !['valid', 'expires_soon'].includes(r.status)) throw new Error('lite: ' + JSON.stringify(r));
  });

  await step('worker console: no CSP violation, no error; pages: no errors', async () => {
    const s = await status();
    const bad = swConsole.filter((m) => m.type === 'error' || /Content Security Policy|Refused to|unsafe-eval|EvalError|CompileError|RuntimeError/i.test(m.text));
    const problems = [...bad.map((m) => `worker ${m.type}: ${m.text}`), ...s.csp_violations.map((v) => 'worker CSP: ' + v),
      ...pageErrors.map((e) => 'page: ' + e), ...pageConsoleErrors.map((e) => 'page console: ' + e)];
    console.log(`     worker console: ${swConsole.length} messages (${swConsole.filter((m) => m.type === 'warning').length} warnings), ${swConsole.filter((m) => m.text.startsWith('edrlink: worker started')).length} worker starts`);
    for (const m of swConsole.filter((x) => x.text.startsWith('edrlink: ready'))) console.log(`     ${m.text}`);
    if (problems.length) throw new Error(problems.join('\n'));
  });
}

let code = 0;
try { await main(); } catch (e) { code = 1; if (!results.some(([, ok]) => !ok)) { console.log(`FAIL setup: ${e.stack || e}`); results.push(['setup', false]); } }
try { if (ctx) await ctx.close(); } catch { /* already gone */ }
if (svcProc) await stopService(svcProc);
if (proxy) proxy.close();
if (tmp) rmSync(tmp, { recursive: true, force: true });
const passed = results.filter(([, ok]) => ok).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(code);
