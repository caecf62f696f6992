// edrlink partner console: paste a token → inspect (live countdown) → redeem + handshake
// → send the EICAR test detection → flow state and health. Uses the wasm package only.
//
// Keys and credential storage: the device key is a non-extractable WebCrypto key (Ed25519,
// or ECDSA P-256 where the browser lacks WebCrypto Ed25519) that the browser keeps in
// IndexedDB (database "edrlink-keys") — the SDK's default in browsers; no script, this
// page's included, can read its private bytes. The credential (installation id, the key's
// handle and public key, the service keyset; no private key) is kept in IndexedDB too
// (database "edrlink-console", record "credential") through the client's `store`, so a
// reload resumes with the same key.
import { init, EdrlinkClient, EdrlinkError, inspectToken, randomId, version, indexedDbStore, webCryptoKeys } from '../../wasm/js/web.mjs';

const $ = (id) => document.getElementById(id);
const EXPLAIN = {
  malformed: 'This is not a valid access token (copy the whole token from the portal).',
  wrong_type: 'This text is not an edrlink access token.',
  token_expired: 'The token has expired: generate a new one in the portal.',
  token_not_yet_valid: 'The token is not valid yet: check this computer\'s clock.',
  token_revoked: 'The administrator revoked this token: generate a new one.',
  token_exhausted: 'The token was used by as many endpoints as it allows: generate a new one.',
  integration_disabled: 'The integration is turned off in the portal: turn it on, then generate a token.',
  epoch_mismatch: 'The integration was turned off since this token was issued: generate a new token.',
  wrong_region: 'The token belongs to another data region.',
  possible_clone: 'The service saw this device with another key (re-imaged or cloned).',
  flow_blocked: 'The integration is turned off in the portal: the data flow is blocked. Events are kept and sent once it is turned back on.',
  revoked: 'This endpoint\'s credential was revoked (the integration was turned off and on): redeem a new token.',
  offboarded: 'This endpoint was offboarded: redeem a new token to onboard again.',
  needs_reenroll: 'Authentication keeps failing: redeem a new token.',
  transport: 'The service cannot be reached (network, CORS or the service is down).',
  service_unavailable: 'The service is temporarily unavailable; try again later.',
  rate_limited: 'Too many requests; the service asked to wait.',
  invalid_state: 'Redeem a token first.',
  queue_full: 'The local event queue is full.',
};

let client = null;
let claims = null;
let tokenText = '';
let timer = null;
let config = { proxy: false };

function showError(e) {
  const box = $('error');
  if (!e) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.replaceChildren();
  const code = e instanceof EdrlinkError ? e.code : 'internal';
  const head = document.createElement('div');
  head.textContent = EXPLAIN[code] || 'The operation failed.';
  const detail = document.createElement('div');
  const c = document.createElement('code');
  c.textContent = code;
  detail.append(c, ' — ' + (e instanceof EdrlinkError ? e.detail : e && e.message ? e.message : String(e)));
  if (e && e.retryAfter) detail.append(` (retry after ${e.retryAfter} s)`);
  box.append(head, detail);
  box.dataset.code = code;
}

function fmtLeft(s) {
  const neg = s < 0; s = Math.abs(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  const t = (d ? `${d}d ` : '') + `${String(h).padStart(2, '0')}h ${String(m).padStart(2, '0')}m ${String(sec).padStart(2, '0')}s`;
  return neg ? `${t} ago` : t;
}

// The status (and its expiry-warning threshold) comes from the SDK's inspection: the
// console re-inspects every second rather than re-coding the thresholds here.
function tick() {
  if (!claims) return;
  let info;
  try { info = inspectToken(tokenText); } catch { return; }
  const left = info.seconds_left;
  const text = {
    not_yet_valid: `Not valid yet (starts in ${fmtLeft(info.claims.nbf - info.checked_at)})`,
    expired: `EXPIRED ${fmtLeft(left)} — generate a new token in the portal`,
    expires_soon: `Expires soon: ${fmtLeft(left)} left — redeem it now`,
    valid: `Valid: ${fmtLeft(left)} left`,
  }[info.status];
  const el = $('countdown');
  el.textContent = text;
  el.dataset.status = info.status;
  el.dataset.secondsLeft = String(left);
}

function inspect() {
  showError(null);
  clearInterval(timer);
  claims = null;
  $('claims').replaceChildren();
  $('countdown').textContent = '';
  $('countdown').dataset.status = 'none';
  try {
    tokenText = $('token').value;
    const info = inspectToken(tokenText);
    claims = info.claims;
    const rows = [['tenant', claims.tenant_id], ['partner', claims.partner_id], ['region', claims.region],
      ['service', claims.service_url], ['expires', new Date(claims.exp * 1000).toISOString()],
      ['uses', String(claims.max_uses)], ['token id', claims.jti], ['signing key', info.kid]];
    for (const [k, v] of rows) {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v;
      $('claims').append(dt, dd);
    }
    tick();
    timer = setInterval(tick, 1000);
    return info;
  } catch (e) { showError(e); return null; }
}

// ---- credential storage: IndexedDB through the client's store (loaded at start, saved
// on enrollment and rotation, deleted at offboarding)
const store = indexedDbStore({ dbName: 'edrlink-console' });

/** Shows which device key the credential names (algorithm, handle, non-extractable). */
async function showKey() {
  const el = $('device-key');
  const cred = client ? client.exportCredential() : undefined;
  const hk = cred ? JSON.parse(cred).host_key : undefined;
  if (!hk) {
    el.textContent = cred ? 'software key (held in the credential)' : 'none yet (made at enrollment)';
    delete el.dataset.handle; delete el.dataset.extractable;
    return;
  }
  // Inspect the stored CryptoKey through a second view of the same IndexedDB database.
  const key = await webCryptoKeys().cryptoKey(hk.handle);
  el.dataset.handle = hk.handle;
  el.dataset.algorithm = key ? key.algorithm.name : 'missing';
  el.dataset.extractable = key ? String(key.extractable) : 'missing';
  el.textContent = key
    ? `${key.algorithm.name}${key.algorithm.namedCurve ? ' ' + key.algorithm.namedCurve : ''}, WebCrypto, ${key.extractable ? 'EXTRACTABLE' : 'non-extractable'} (IndexedDB) — ${hk.handle}`
    : `key ${hk.handle} is missing from IndexedDB: redeem a new token`;
}

function device() {
  return {
    device_id: sessionStorage.getItem('edrlink-device') || (() => { const id = 'web-' + randomId(12); sessionStorage.setItem('edrlink-device', id); return id; })(),
    hostname: location.hostname || 'browser',
    os: 'browser',
    os_version: (navigator.userAgent.match(/(Chrome|Firefox|Safari)\/[\d.]+/) || ['unknown'])[0],
    product: 'edrlink web console',
    product_version: version(),
  };
}

/** A client over the stored credential (if any): default keys (WebCrypto), IndexedDB store. */
async function newClient() {
  client?.free();
  client = new EdrlinkClient({
    device: device(),
    store,
    serviceUrl: $('use-proxy').checked ? location.origin : undefined,
    opTimeoutSecs: 10,
    onEvent: (ev) => {
      if (ev.type.startsWith('credential_')) showKey().catch(showError);
      render();
    },
  });
  await client.load();
  await showKey();
}

function render() {
  const h = client ? client.health() : null;
  const flow = h && h.onboarded ? (h.flow || 'unknown') : 'none';
  $('flow').dataset.flow = flow;
  $('flow').textContent = { none: 'not enrolled', unknown: 'enrolled, no flow decision yet', open: 'open — data flows',
    blocked: 'BLOCKED — the integration is turned off; events are kept', revoked: 'REVOKED — a new token is needed' }[flow];
  $('installation').textContent = h && h.installation_id ? `installation ${h.installation_id}` : '';
  $('health').textContent = JSON.stringify(h || {}, null, 2);
}

async function run(button, fn) {
  showError(null);
  button.disabled = true;
  try { await fn(); } catch (e) { showError(e); } finally { button.disabled = false; render(); }
}

$('inspect').addEventListener('click', inspect);
$('token').addEventListener('change', inspect);
$('enroll').addEventListener('click', () => run($('enroll'), async () => {
  const info = inspect();
  if (!info) return;
  if (info.status === 'expired') throw Object.assign(new EdrlinkError('token_expired: token has expired'), { code: 'token_expired' });
  if (!client) await newClient();
  await client.enroll($('token').value);
  await showKey();
}));
$('handshake').addEventListener('click', () => run($('handshake'), async () => {
  if (!client) await newClient();
  await client.handshake();
}));
$('send-eicar').addEventListener('click', () => run($('send-eicar'), async () => {
  if (!client) await newClient();
  client.sendTestDetection('C:\\Users\\Public\\eicar.com');
  $('sent').textContent = 'sending…';
  try {
    const out = await client.flush();
    if (out.queued > 0) {
      // Ran out of time while backing off: the events stay queued; the reason is the
      // client's last error (an error record with code, detail and retry_after).
      const why = client.health().last_error;
      $('sent').textContent = `not delivered yet (${out.queued} queued): ${why ? `${why.code} — ${why.detail}` : 'no answer'}` +
        (why && why.retry_after ? ` (retry after ${why.retry_after} s)` : '');
      $('sent').dataset.delivered = '0';
      return;
    }
    $('sent').textContent = `delivered (${out.delivered} events acknowledged) at ${new Date().toLocaleTimeString()}`;
    $('sent').dataset.delivered = String(out.delivered);
  } catch (e) { $('sent').textContent = 'not delivered (kept in the queue)'; throw e; }
}));
$('forget').addEventListener('click', () => run($('forget'), async () => {
  // Forgets this browser's credential and its key (the service still lists the
  // installation until the administrator offboards it).
  const cred = client ? client.exportCredential() : await store.load();
  const hk = cred ? JSON.parse(cred).host_key : undefined;
  client?.free(); client = null;
  await store.delete();
  if (hk) await webCryptoKeys().deleteKey(hk.handle);
  await showKey();
}));
$('use-proxy').addEventListener('change', () => { (client ? newClient() : Promise.resolve()).then(render, showError); });

(async () => {
  try {
    await init();
    $('version').textContent = version();
    config = await fetch('config.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
    $('use-proxy').checked = !!config.proxy;
    await newClient(); // resumes with the stored credential and its key, if any
    render();
    setInterval(() => { if (client) render(); }, 2000);
    document.body.dataset.ready = '1';
  } catch (e) { showError(e); }
})();
