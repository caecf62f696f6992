// Acme Web Shield — MV3 service worker (ES module) embedding the edrlink wasm package.
//
// Lifecycle: Chrome stops this worker after ~30 s without events and starts it again
// for the next event (alarm, message, startup). Nothing survives in memory, so the
// durable state lives in chrome.storage.local (never storage.sync: the credential and
// the queue belong to this browser profile):
//   edrlink_credential  the credential JSON, kept by the client's store
//                  (chromeStorageStore): installation id, the device key's handle and
//                  public key, the service keyset — no private key
//   edrlink_state  EdrlinkClient.exportState(): credential + outbox snapshot (queued
//                  events, sequence numbers, the in-flight batch with its batch_id)
//   device_id      stable device id for this profile
//   status         last error / flow / delivery, for the popup
//   detections     the last detections shown in the UI (URL, verdict, severity)
//   settings       { retryPeriodSecs } (tests lower it; production default 60 s)
// The state is saved after every state-changing call and, through the fetch wrapper,
// right before each batch is sent — so a batch that was in flight when the worker
// died is re-sent with the same batch_id on the next wake and the service
// deduplicates it: exactly once across restarts.
//
// The device key is a non-extractable WebCrypto key (Ed25519, or ECDSA P-256 where
// WebCrypto lacks Ed25519) that Chrome keeps in this extension's IndexedDB (database
// "edrlink-keys"; IndexedDB is available in MV3 service workers): the SDK's default in
// browsers. Neither the SDK nor this code ever holds its private bytes.
import { init, EdrlinkClient, EdrlinkError, urlDetectionEvent, randomId, version, chromeStorageStore } from './edrlink/js/web.mjs';

const WASM_URL = chrome.runtime.getURL('edrlink/pkg/web/edrlink_wasm_bg.wasm');
const KEY = { state: 'edrlink_state', device: 'device_id', status: 'status', detections: 'detections', settings: 'settings' };
const ALARM = 'edrlink-retry';
const DEFAULT_RETRY_SECS = 60; // production: >= 30 s (Chrome's floor for packed extensions)
const MAX_LOG = 50;

// CSP violations in the worker (there must be none: the glue uses no eval/new Function).
const violations = [];
self.addEventListener('securitypolicyviolation', (e) => {
  violations.push(`${e.violatedDirective} ${e.blockedURI}`);
  console.error('edrlink: CSP violation', e.violatedDirective, e.blockedURI);
});

const WORKER_ID = Math.random().toString(36).slice(2, 8);
console.info(`edrlink: worker started ${WORKER_ID}`);

let client = null;
let booted = null;

// ---------------------------------------------------------------- state

/** Saves the client's durable state. Exported synchronously (a consistent copy of
 *  this instant); chrome.storage.local applies the writes in call order. */
function saveState() {
  if (!client) return Promise.resolve();
  let state;
  try { state = client.exportState(); } catch (e) { console.error('edrlink: exportState', e.code, e.message); return Promise.resolve(); }
  return chrome.storage.local.set({ [KEY.state]: state }).catch((e) => {
    // Quota or I/O failure: the queue stays in memory and the next save retries.
    console.error('edrlink: saving the state failed', String(e));
  });
}

async function getStatus() {
  return (await chrome.storage.local.get(KEY.status))[KEY.status] || {};
}

// Status updates are read-modify-write: run them one at a time.
let noting = Promise.resolve();
function note(error, extra = {}) {
  noting = noting.then(() => noteNow(error, extra)).catch((e) => console.warn('edrlink: status not saved', String(e)));
  return noting;
}

async function noteNow(error, extra) {
  const cur = await getStatus();
  const next = { ...cur, ...extra };
  if (extra.delivered !== undefined) next.delivered_total = (cur.delivered_total || 0) + extra.delivered;
  delete next.delivered;
  // An EdrlinkError (or health().last_error) is the core's error record: keep its fields,
  // never a parsed message.
  if (error) {
    next.last_error = { code: error.code || 'internal', detail: typeof error.detail === 'string' ? error.detail : String(error.message || error),
      retry_after: error.retryAfter ?? error.retry_after ?? null, at: Math.floor(Date.now() / 1000) };
  } else if (!extra.keepError) next.last_error = null;
  delete next.keepError;
  if (client && client.flow) next.flow = client.flow;
  await chrome.storage.local.set({ [KEY.status]: next });
}

async function settings() {
  const s = (await chrome.storage.local.get(KEY.settings))[KEY.settings] || {};
  const p = Number(s.retryPeriodSecs);
  return { retryPeriodSecs: Number.isFinite(p) && p > 0 ? p : DEFAULT_RETRY_SECS };
}

// ---------------------------------------------------------------- the client

/** fetch for the SDK: persist the state before a batch leaves (the core formed it
 *  just now), so a restart re-sends the same batch_id instead of a new one. */
async function hostFetch(url, init) {
  if (/\/v1\/(downlevel\/)?ingest$/.test(String(url))) {
    await saveState();
    await scheduleRetry(); // armed before the batch leaves: if the worker dies now, the alarm wakes it
  }
  return fetch(url, init);
}

function onEvent(ev) {
  switch (ev.type) {
    case 'credential_changed': // enrolled or rotated: the new key must be on disk
    case 'credential_removed': // offboarded
    case 'delivered':          // acknowledged: no need to re-send after a restart
      saveState();
      break;
    case 'flow_changed':
      note(null, { flow: ev.flow, keepError: true });
      break;
    default:
  }
}

async function clientOptions() {
  let deviceId = (await chrome.storage.local.get(KEY.device))[KEY.device];
  if (!deviceId) {
    deviceId = 'ext-' + randomId(12);
    await chrome.storage.local.set({ [KEY.device]: deviceId });
  }
  const platform = await chrome.runtime.getPlatformInfo();
  const manifest = chrome.runtime.getManifest();
  return {
    device: {
      device_id: deviceId,
      hostname: 'browser-' + deviceId.slice(4, 12), // extensions cannot read the OS host name
      os: platform.os,
      os_version: (navigator.userAgent.match(/Chrom(e|ium)\/[\d.]+/) || ['unknown'])[0],
      product: manifest.short_name,
      product_version: manifest.version,
    },
    opTimeoutSecs: 10,
    // The whole queue is rewritten into chrome.storage.local on every save (10 MB quota
    // without "unlimitedStorage"): keep it well below that. Detections are dropped last.
    maxQueueBytes: 2 * 1024 * 1024,
    maxQueueEvents: 5000,
    fetch: hostFetch,
    onEvent,
    // The credential in chrome.storage.local (saved at enrollment and rotation, deleted at
    // offboarding). No `keys`: the default, WebCrypto keys in IndexedDB.
    store: chromeStorageStore({ key: 'edrlink_credential' }),
  };
}

/** Loads the module and restores the client from storage, once per worker start. */
function boot() {
  booted ??= (async () => {
    const t0 = performance.now();
    await init(WASM_URL);
    const t1 = performance.now();
    const stored = (await chrome.storage.local.get(KEY.state))[KEY.state];
    if (!stored) return;
    try {
      client = EdrlinkClient.restore(await clientOptions(), stored);
      console.info(`edrlink: ready: wasm init ${(t1 - t0).toFixed(1)} ms, state read + restore ${(performance.now() - t1).toFixed(1)} ms (${stored.length} bytes)`);
    } catch (e) {
      // Never lose data: keep the unreadable document aside and report it.
      console.warn('edrlink: stored state unreadable; kept as edrlink_state_unreadable:', e.code, e.message);
      await chrome.storage.local.set({ [KEY.state + '_unreadable']: stored });
      await note(e);
    }
  })();
  return booted;
}

async function ensureClient() {
  await boot();
  client ??= new EdrlinkClient(await clientOptions());
  return client;
}

// ---------------------------------------------------------------- delivery and retry

let flushing = null;
let again = false;

/** Delivers what is queued; coalesces concurrent requests into one loop. */
function kick() {
  if (flushing) { again = true; return flushing; }
  flushing = (async () => {
    do {
      again = false;
      await flushOnce();
    } while (again);
  })().finally(() => { flushing = null; });
  return flushing;
}

async function flushOnce() {
  if (!client || !client.health().onboarded) return;
  try {
    const out = await client.flush();
    // A flush that ran out of time while backing off (service down, rate limited) resolves
    // with events still queued; why is the client's last error (an error record).
    const stuck = out.queued > 0 ? client.health().last_error : null;
    await note(stuck, { ...(stuck ? {} : { last_delivery: Math.floor(Date.now() / 1000) }), delivered: out.delivered });
    await markDelivered();
  } catch (e) {
    if (!(e instanceof EdrlinkError)) console.error('edrlink: flush', e);
    await note(e);
  } finally {
    await saveState();
    await scheduleRetry();
  }
}

/** Keeps a chrome.alarms retry while something is queued, the flow is blocked or
 *  no flow decision is known; clears it when idle. The alarm wakes a stopped worker. */
async function scheduleRetry() {
  const h = client ? client.health() : null;
  const needed = !!h && h.onboarded && !h.needs_new_token && h.flow !== 'revoked' && (!client.isIdle || h.flow !== 'open');
  const existing = await chrome.alarms.get(ALARM);
  if (!needed) {
    if (existing) await chrome.alarms.clear(ALARM);
    return;
  }
  const minutes = (await settings()).retryPeriodSecs / 60;
  if (!existing || Math.abs(existing.periodInMinutes - minutes) > 1e-9) {
    await chrome.alarms.create(ALARM, { delayInMinutes: minutes, periodInMinutes: minutes });
  }
}

async function wake(why) {
  try {
    await boot();
    if (client && client.health().onboarded && !client.isIdle) {
      console.info(`edrlink: ${why}: resuming delivery, pending batch ${JSON.stringify(client.pendingBatch)}`);
      await kick();
    } else {
      await scheduleRetry();
    }
  } catch (e) {
    console.error(`edrlink: ${why}`, e);
  }
}

// ---------------------------------------------------------------- detections log (UI only)

async function logDetection(ev) {
  const log = (await chrome.storage.local.get(KEY.detections))[KEY.detections] || [];
  log.unshift({ url: ev.url, threat_name: ev.threat_name, severity: ev.severity, action: ev.action, time: ev.time, delivered: false });
  await chrome.storage.local.set({ [KEY.detections]: log.slice(0, MAX_LOG) });
}

async function markDelivered() {
  if (!client || !client.isIdle) return;
  const log = (await chrome.storage.local.get(KEY.detections))[KEY.detections] || [];
  if (log.some((d) => !d.delivered)) await chrome.storage.local.set({ [KEY.detections]: log.map((d) => ({ ...d, delivered: true })) });
}

// ---------------------------------------------------------------- status for the UI

async function status() {
  const st = await getStatus();
  const h = client ? client.health() : null;
  let queuedDetections = 0;
  let pending = null;
  if (client) {
    // Count queued detections from the outbox itself (records: [index, category, time, event]).
    const s = JSON.parse(client.exportState());
    queuedDetections = s.outbox ? s.outbox.records.filter((r) => r[1] === 'detection').length : 0;
    pending = client.pendingBatch;
  }
  const onboarded = !!(h && h.onboarded);
  return {
    version: version(),
    onboarded,
    installation_id: h ? h.installation_id : null,
    flow: !onboarded ? 'none' : (h.needs_new_token ? 'revoked' : (h.flow || st.flow || 'unknown')),
    flow_live: h ? h.flow : null,
    queued_events: h ? h.queued_events : 0,
    queued_detections: queuedDetections,
    pending_batch: pending,
    last_error: st.last_error || null,
    last_delivery: st.last_delivery || null,
    delivered_total: st.delivered_total || 0,
    retry: (await chrome.alarms.get(ALARM)) || null,
    settings: await settings(),
    detections: ((await chrome.storage.local.get(KEY.detections))[KEY.detections] || []).slice(0, 10),
    csp_violations: violations.slice(),
    health: h,
  };
}

// ---------------------------------------------------------------- messages from the options page and popup

async function handle(msg) {
  await boot();
  switch (msg && msg.op) {
    case 'status':
      return { status: await status() };
    case 'enroll': {
      // The key pair is generated here by WebCrypto (non-extractable, kept in
      // IndexedDB); the token is used once for redemption and never stored.
      const c = await ensureClient();
      try {
        await c.enroll(String(msg.token || ''));
      } catch (e) {
        await note(e);
        throw e;
      }
      await saveState();
      await note(null);
      kick();
      return { status: await status() };
    }
    case 'block': {
      // A (simulated) blocked download: the core's detection event with url set, action "blocked".
      const c = await ensureClient();
      const ev = urlDetectionEvent(String(msg.url), msg.threat || 'Trojan.Downloader.Generic (simulated)', msg.severity || 'high');
      c.submit(ev);
      await saveState();
      await scheduleRetry();
      await logDetection(ev);
      kick(); // delivery continues in the background; the popup polls status
      return { event: ev, status: await status() };
    }
    case 'retry':
      if (client && client.health().onboarded) await client.handshake().catch((e) => note(e));
      kick();
      return { status: await status() };
    case 'settings': {
      const p = Number(msg.retryPeriodSecs);
      if (!(p > 0)) throw Object.assign(new EdrlinkError('invalid_argument: retry period must be a positive number of seconds'), { code: 'invalid_argument' });
      await chrome.storage.local.set({ [KEY.settings]: { retryPeriodSecs: p } });
      await chrome.alarms.clear(ALARM);
      await scheduleRetry();
      return { status: await status() };
    }
    case 'offboard': {
      if (!client) throw Object.assign(new EdrlinkError('invalid_state: not enrolled'), { code: 'invalid_state' });
      await client.offboard('removed by the administrator in the extension options');
      await saveState();
      await note(null, { flow: null });
      await scheduleRetry();
      return { status: await status() };
    }
    default:
      throw Object.assign(new EdrlinkError(`invalid_argument: unknown op ${msg && msg.op}`), { code: 'invalid_argument' });
  }
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (sender.id !== chrome.runtime.id) return false;
  handle(msg).then(
    (r) => sendResponse({ ok: true, ...r }),
    (e) => sendResponse({ ok: false, error: { code: e && e.code ? e.code : 'internal', message: String(e && e.message ? e.message : e),
      detail: e && typeof e.detail === 'string' ? e.detail : undefined, retryAfter: e && e.retryAfter } }),
  );
  return true; // answered asynchronously
});

// Listeners are registered synchronously at the top level (MV3 requirement).
chrome.alarms.onAlarm.addListener((a) => { if (a.name === ALARM) wake('alarm'); });
chrome.runtime.onStartup.addListener(() => wake('browser start'));
chrome.runtime.onInstalled.addListener(() => wake('installed'));
// Every worker start (first or after Chrome stopped it): resume a pending batch.
wake('worker start');
