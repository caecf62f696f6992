// End-to-end: the real reference service (edrlink-service on loopback) + its portal page
// + the web console (examples/web-console) in headless Chromium via playwright-core.
//   portal: create tenant, enable the integration, generate a token
//   console: paste, inspect (countdown), redeem + handshake, send the EICAR test detection
//   portal: the "EICAR test file" alert appears
//   console: the device key is a non-extractable WebCrypto key in IndexedDB (the
//     credential in IndexedDB holds its handle, no key seed); more batches, stored == sent;
//     the page is reloaded and keeps sending with the same key from IndexedDB
//   portal: toggle the integration off
//   console: sending again reports the blocked flow
// Screenshots: artifacts/screenshots/*.png.  Usage: node tests/browser/e2e.mjs <edrlink-service binary>
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'tools/package.json'));
const { chromium } = require('playwright-core');
const SHOTS = path.join(ROOT, 'artifacts/screenshots');
const ADMIN_KEY = 'e2e-admin-key-0123456789abcdefghij-' + process.pid;
const TENANT = 'contoso', PARTNER = 'acme-av';

const results = [];
const children = [];
let tmp;
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); results.push([name, true]); console.log(`ok   ${name} (${Date.now() - t0} ms)`); }
  catch (e) { results.push([name, false]); console.log(`FAIL ${name}: ${e.stack || e}`); throw e; }
}
function start(cmd, args, env, pattern) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${out}`)), 30000);
    const on = (d) => {
      out += d;
      const m = out.match(pattern);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    p.stdout.on('data', on); p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (c) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${c}: ${out}`)); });
  });
}
const until = async (what, fn, ms = 15000) => {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) { try { last = await fn(); if (last) return last; } catch (e) { last = e; } await new Promise((r) => setTimeout(r, 200)); }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
};

async function main() {
  const bin = process.argv[2];
  if (!bin) throw new Error('usage: e2e.mjs <edrlink-service binary>');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edrlink-e2e-'));
  mkdirSync(SHOTS, { recursive: true });
  const svc = await start(bin, ['--db', path.join(tmp, 'svc.db'), '--listen', '127.0.0.1:0'], { EDRLINK_ADMIN_KEY: ADMIN_KEY },
    /listening on (http:\/\/127\.0\.0\.1:\d+)/);
  // The console is served from another origin. Use the service directly when it answers
  // CORS preflights for /v1/*, else forward /v1/* through the console's server.
  const pre = await fetch(`${svc}/v1/redeem`, { method: 'OPTIONS', headers: {
    origin: 'http://127.0.0.1:1', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  const cors = !!pre.headers.get('access-control-allow-origin');
  console.log(`service ${svc}; CORS for /v1/*: ${cors ? 'yes' : 'NO (console uses its proxy)'}`);
  const consoleUrl = await start(process.execPath, [path.join(ROOT, 'examples/web-console/serve.mjs'), '--port', '0',
    ...(cors ? [] : ['--proxy', svc])], {}, /console on (http:\S+)/);

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'] });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const pageErrors = [];
    const portal = await ctx.newPage();
    const con = await ctx.newPage();
    for (const p of [portal, con]) p.on('pageerror', (e) => pageErrors.push(String(e)));
    let token;

    await step('portal: create tenant, enable integration, generate token', async () => {
      await portal.goto(svc + '/');
      await portal.fill('#admin-key', ADMIN_KEY);
      await portal.dispatchEvent('#admin-key', 'change');
      await portal.fill('#new-tenant', TENANT);
      await portal.click('#create-tenant');
      await until('tenant selected', () => portal.$eval('#tenant', (s) => s.value === 'contoso'));
      await portal.fill('#partner', PARTNER);
      await portal.dispatchEvent('#partner', 'change');
      if (!(await portal.isChecked('#toggle'))) await portal.click('#toggle');
      await until('integration on', () => portal.$eval('#integrations', (t) => /acme-av\s*on/.test(t.textContent)));
      await portal.click('#generate-token');
      token = await until('token', () => portal.$eval('#token-output', (t) => t.value));
      if (!token.startsWith('eyJ')) throw new Error('no token: ' + token);
      await portal.screenshot({ path: path.join(SHOTS, '01-portal-token.png'), fullPage: true });
    });

    await step('console: paste and inspect with live countdown', async () => {
      await con.goto(consoleUrl);
      await con.waitForSelector('body[data-ready="1"]');
      await con.fill('#token', token);
      await con.click('#inspect');
      const s1 = await con.$eval('#countdown', (e) => [e.dataset.status, Number(e.dataset.secondsLeft), e.textContent]);
      if (s1[0] !== 'valid' || !(s1[1] > 3600)) throw new Error('countdown: ' + s1);
      await until('countdown ticks', async () => Number(await con.$eval('#countdown', (e) => e.dataset.secondsLeft)) < s1[1], 5000);
      // A broken token gets a readable error.
      await con.fill('#token', token.slice(0, 40));
      await con.click('#inspect');
      const err = await con.$eval('#error', (e) => [e.hidden, e.dataset.code, e.textContent]);
      if (err[0] || err[1] !== 'malformed' || !/not a valid access token/.test(err[2])) throw new Error('error box: ' + err);
      await con.fill('#token', token);
      await con.click('#inspect');
      if (!(await con.$eval('#error', (e) => e.hidden))) throw new Error('error not cleared');
    });

    await step('lite module in the page: token, envelope, SharedKey; no client', async () => {
      // `@edrlink/wasm/lite` (js/lite-web.mjs + pkg/lite-web), served from the repository
      // through a page route on a private origin.
      const types = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
      const served = [];
      const lite = await ctx.newPage();
      lite.on('pageerror', (e) => pageErrors.push(String(e)));
      await lite.route('http://lite.edrlink.test/**', (route) => {
        const rel = new URL(route.request().url()).pathname;
        if (rel === '/') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>lite</title>' });
        if (!rel.startsWith('/wasm/js/') && !rel.startsWith('/wasm/pkg/lite-web/')) return route.fulfill({ status: 404, body: '' });
        served.push(rel);
        return route.fulfill({ contentType: types[path.extname(rel)] || 'application/octet-stream', body: readFileSync(path.join(ROOT, rel)) });
      });
      await lite.goto('http://lite.edrlink.test/');
      const r = await lite.evaluate(async (tok) => {
        const m = await import('/wasm/js/lite-web.mjs');
        await m.init();
        const k = m.SigningKey.fromSeed(new Uint8Array(32).fill(3));
        const payload = new TextEncoder().encode('{"events":[]}');
        const env = m.sealEnvelope('application/json', payload, k);
        const back = new TextDecoder().decode(m.openEnvelope(env, 'application/json', k.publicKey));
        let code = null;
        try { m.openEnvelope(env, 'text/plain', k.publicKey); } catch (e) { code = e instanceof m.EdrlinkError ? e.code : String(e); }
        const auth = m.sharedKeyAuthorization('ws-1', new Uint8Array(32).fill(1), 'POST', '/v1/downlevel/ingest', 'application/json',
          '2026-11-23T12:00:00Z', payload);
        return { back, code, auth, status: m.inspectToken(tok).status, client: typeof m.EdrlinkClient };
      }, token);
      if (r.back !== '{"events":[]}' || r.code !== 'wrong_type' || r.status !== 'valid' || r.client !== 'undefined'
          || !/^SharedKey ws-1:[A-Za-z0-9+/]{43}=$/.test(r.auth)) throw new Error('lite: ' + JSON.stringify(r));
      if (!served.includes('/wasm/pkg/lite-web/edrlink_lite_bg.wasm') || served.some((f) => f.includes('edrlink_wasm'))) {
        throw new Error('lite page loaded: ' + served.join(', '));
      }
      await lite.close();
    });

    await step('console: redeem + handshake → flow open', async () => {
      await con.click('#enroll');
      await until('flow open', () => con.$eval('#flow', (e) => e.dataset.flow === 'open'));
      const h = JSON.parse(await con.$eval('#health', (e) => e.textContent));
      if (!h.onboarded || !h.installation_id) throw new Error('health: ' + JSON.stringify(h));
      await con.screenshot({ path: path.join(SHOTS, '02-console-enrolled.png'), fullPage: true });
    });

    await step('console: send EICAR → portal shows the alert and the installation', async () => {
      await con.click('#send-eicar');
      await until('delivered', () => con.$eval('#sent', (e) => Number(e.dataset.delivered || 0) >= 1));
      await until('EICAR alert in portal', () => portal.$eval('#alerts', (e) => e.textContent.includes('EICAR test file')), 20000);
      await until('installation listed', () => portal.$eval('#installations', (e) => e.children.length >= 1));
      await portal.screenshot({ path: path.join(SHOTS, '03-portal-eicar-alert.png'), fullPage: true });
    });

    // Everything the page's origin keeps in IndexedDB: the credential and the key records.
    const idb = () => con.evaluate(async () => {
      const open = (name) => new Promise((res, rej) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
      const all = async (name) => {
        const db = await open(name);
        if (!db.objectStoreNames.contains('records')) { db.close(); return []; }
        const tx = db.transaction('records', 'readonly').objectStore('records');
        const [keys, values] = await Promise.all([tx.getAllKeys(), tx.getAll()].map((r) => new Promise((res) => { r.onsuccess = () => res(r.result); })));
        db.close();
        return keys.map((k, i) => [k, values[i]]);
      };
      const cred = (await all('edrlink-console')).find(([k]) => k === 'credential');
      const keys = (await all('edrlink-keys')).map(([handle, rec]) => ({ handle, isCryptoKey: rec.privateKey instanceof CryptoKey,
        extractable: rec.privateKey.extractable, type: rec.privateKey.type, algorithm: rec.privateKey.algorithm.name, usages: rec.privateKey.usages }));
      return { credential: cred ? cred[1] : null, keys };
    });
    const eicarAlerts = async () => {
      const r = await fetch(`${svc}/admin/tenants/${TENANT}/alerts`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      return (await r.json()).alerts.filter((a) => a.title === 'EICAR test file').length;
    };
    const sendEicar = async () => {
      await con.$eval('#sent', (e) => { e.dataset.delivered = ''; });
      await con.click('#send-eicar');
      await until('delivered', () => con.$eval('#sent', (e) => Number(e.dataset.delivered || 0) >= 1));
    };
    let enrolledKey;
    let sent = 1;

    await step('console: the device key is a non-extractable WebCrypto key kept in IndexedDB', async () => {
      const s = await idb();
      if (!s.credential) throw new Error('no credential in IndexedDB');
      const cred = JSON.parse(s.credential);
      if (cred.key_seed !== undefined || !cred.host_key || !cred.host_key.handle) throw new Error('credential: ' + Object.keys(cred));
      if (s.keys.length !== 1) throw new Error('keys: ' + JSON.stringify(s.keys));
      const [k] = s.keys;
      if (k.handle !== cred.host_key.handle || !k.isCryptoKey || k.extractable !== false || k.type !== 'private'
          || !['Ed25519', 'ECDSA'].includes(k.algorithm) || k.usages.join() !== 'sign') throw new Error('key: ' + JSON.stringify(k));
      const shown = await con.$eval('#device-key', (e) => [e.dataset.handle, e.dataset.extractable, e.textContent]);
      if (shown[0] !== k.handle || shown[1] !== 'false' || !/non-extractable/.test(shown[2])) throw new Error('shown: ' + shown);
      enrolledKey = k;
      console.log(`     device key: ${k.algorithm}, extractable=${k.extractable}`);
    });

    await step('console: more batches signed by the WebCrypto key, stored == sent', async () => {
      for (let i = 0; i < 3; i++) { await sendEicar(); sent++; }
      await until('stored == sent', async () => (await eicarAlerts()) === sent);
      const h = JSON.parse(await con.$eval('#health', (e) => e.textContent));
      if (h.queued_events !== 0) throw new Error('still queued: ' + JSON.stringify(h));
    });

    await step('console: reload → same key from IndexedDB, keeps sending', async () => {
      const before = JSON.parse(await con.$eval('#health', (e) => e.textContent)).installation_id;
      await con.reload();
      await con.waitForSelector('body[data-ready="1"]');
      const h = JSON.parse(await con.$eval('#health', (e) => e.textContent));
      if (!h.onboarded || h.installation_id !== before) throw new Error('not resumed: ' + JSON.stringify(h));
      await sendEicar(); sent++;
      await sendEicar(); sent++;
      await until('stored == sent after reload', async () => (await eicarAlerts()) === sent);
      const s = await idb();
      if (s.keys.length !== 1 || s.keys[0].handle !== enrolledKey.handle || s.keys[0].extractable !== false) throw new Error('key changed: ' + JSON.stringify(s.keys));
      if (JSON.parse(s.credential).host_key.handle !== enrolledKey.handle) throw new Error('credential names another key');
      await con.screenshot({ path: path.join(SHOTS, '03b-console-webcrypto-key.png'), fullPage: true });
    });

    await step('webCryptoKeys in the page: P-256 fallback where WebCrypto Ed25519 is missing, keys persist in IndexedDB', async () => {
      const r = await con.evaluate(async () => {
        const m = await import('/wasm/js/web.mjs');
        // A browser without WebCrypto Ed25519: generateKey refuses it as Chromium used to.
        const subtle = crypto.subtle;
        const real = subtle.generateKey.bind(subtle);
        subtle.generateKey = (alg, ...rest) => (alg && alg.name === 'Ed25519'
          ? Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError')) : real(alg, ...rest));
        try {
          const k = m.webCryptoKeys({ dbName: 'edrlink-e2e-fallback' });
          const { handle, publicKey } = await k.createKey();
          const msg = new TextEncoder().encode('batch');
          const sig = await k.sign(handle, msg);
          // A second view of the same database (a new page or worker) finds the key.
          const again = m.webCryptoKeys({ dbName: 'edrlink-e2e-fallback' });
          const sig2 = await again.sign(handle, msg);
          const key = await again.cryptoKey(handle);
          const out = { alg: await k.algorithm(), pub: publicKey.length, sig: sig.length, verifies: m.verifySignature(publicKey, msg, sig) && m.verifySignature(publicKey, msg, sig2),
            extractable: key.extractable, curve: key.algorithm.namedCurve };
          await k.deleteKey(handle);
          out.afterDelete = await again.cryptoKey(handle) === null && await m.webCryptoKeys({ dbName: 'edrlink-e2e-fallback' }).cryptoKey(handle) === null;
          return out;
        } finally { subtle.generateKey = real; }
      });
      if (r.alg !== 'ecdsa-p256' || r.pub !== 65 || r.sig !== 64 || !r.verifies || r.extractable !== false || r.curve !== 'P-256' || !r.afterDelete) {
        throw new Error('fallback: ' + JSON.stringify(r));
      }
    });

    await step('portal: toggle off → console reports the blocked flow', async () => {
      await portal.click('#toggle');
      await until('integration off', () => portal.$eval('#integrations', (t) => /acme-av\s*off/.test(t.textContent)));
      await con.click('#send-eicar');
      await until('blocked error', () => con.$eval('#error', (e) => !e.hidden && e.dataset.code));
      const code = await con.$eval('#error', (e) => e.dataset.code);
      const flow = await con.$eval('#flow', (e) => e.dataset.flow);
      if (code !== 'flow_blocked' || flow !== 'blocked') throw new Error(`code=${code} flow=${flow}`);
      const text = await con.$eval('#error', (e) => e.textContent);
      if (!/turned off in the portal/.test(text)) throw new Error('unreadable error: ' + text);
      const h = JSON.parse(await con.$eval('#health', (e) => e.textContent));
      if (!(h.queued_events >= 1)) throw new Error('events not kept: ' + JSON.stringify(h));
      await con.screenshot({ path: path.join(SHOTS, '04-console-blocked.png'), fullPage: true });
      await portal.screenshot({ path: path.join(SHOTS, '05-portal-disabled.png'), fullPage: true });
    });

    await step('no uncaught page errors', async () => {
      if (pageErrors.length) throw new Error(pageErrors.join('\n'));
    });
  } finally {
    await browser.close();
  }
}

let code = 0;
try { await main(); } catch (e) { code = 1; if (!results.some(([, ok]) => !ok)) { console.log(`FAIL setup: ${e.stack || e}`); results.push(['setup', false]); } }
for (const c of children) c.kill('SIGTERM');
if (tmp) rmSync(tmp, { recursive: true, force: true });
const passed = results.filter(([, ok]) => ok).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(code);
