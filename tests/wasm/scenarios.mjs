// The JS/wasm runner of the shared scenarios (tests/scenarios/*.json, format in
// tests/scenarios/README.md), over the built npm package for Node (wasm/js/node.mjs)
// with Node's global `fetch` as the client's transport and for the admin calls.
// Thin on purpose: each step is one public call of the package, its outcome
// converted to the scenario's snake_case shape and compared.
//
// Usage: node tests/wasm/scenarios.mjs <service base URL> [filter]
// Env: EDRLINK_ADMIN_KEY (the service's admin key).
// Prints one line per scenario, then exactly `scenarios: N passed, M failed`;
// exits 1 when anything failed or N is not the number of scenario files.
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as edr from '../../wasm/js/node.mjs';

const PARTNER = 'acme-av';
const DIR = new URL('../scenarios/', import.meta.url);
const EXPECT_KEYS = new Set(['error', 'retry_after', 'http_status', 'number', 'status', 'result', 'events', 'no_events', 'log']);
const SEVERITY = { error: 4, warn: 3, info: 2, debug: 1, trace: 0 };

const [url, filter] = process.argv.slice(2);
const ADMIN_KEY = process.env.EDRLINK_ADMIN_KEY;
if (!url || !ADMIN_KEY) {
  console.error('usage: EDRLINK_ADMIN_KEY=... node tests/wasm/scenarios.mjs <service URL> [filter]');
  process.exit(2);
}

/** A failure of the runner itself (not an outcome of the call under test). */
class StepError extends Error {}

async function admin(method, path, body) {
  const resp = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { throw new StepError(`${method} ${path}: answer is not JSON: ${text.slice(0, 200)}`); }
  }
  return [resp.status, json];
}

const camel = (n) => n.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const jsonText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
const bytes = (s) => new TextEncoder().encode(s);
const b64url = (u8) => Buffer.from(u8).toString('base64url');

/** JSON equality, numbers by value. */
function jsonEq(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEq(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEq(a[k], b[k]));
  }
  return a === b;
}

/** A dot path into a result; a trailing `#` is the length there. `undefined` = absent. */
function getPath(v, path) {
  const len = path.endsWith('#');
  let cur = v;
  for (const seg of (len ? path.slice(0, -1) : path).split('.').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object' || !(seg in cur)) return undefined;
    cur = cur[seg];
  }
  if (len) return cur && typeof cur === 'object' ? (Array.isArray(cur) ? cur.length : Object.keys(cur).length) : undefined;
  return cur;
}

/** The error record (snake_case) of anything a binding call threw; a non-edrlink throw is a runner failure. */
function errorInfo(e) {
  if (e instanceof edr.EdrlinkError) {
    const info = e.toJSON();
    for (const [k, t] of [['code', 'string'], ['number', 'number'], ['http_status', 'number'], ['detail', 'string']]) {
      if (typeof info[k] !== t) throw new StepError(`EdrlinkError without ${k}: ${e.message}`);
    }
    return info;
  }
  throw new StepError(`threw something that is not an EdrlinkError: ${e && e.stack ? e.stack : e}`);
}

/** Runs `fn` (sync or async) and returns { ok, value } or { ok: false, error: ErrorInfo }. */
async function outcome(fn) {
  try { return { ok: true, value: (await fn()) ?? null }; } catch (e) { return { ok: false, error: errorInfo(e) }; }
}

const isSecretName = (v) => v.startsWith('token') || v.startsWith('package') || v.includes('key');
function collectSecrets(v, under, out) {
  if (typeof v === 'string') { if (under) out.push(v); return; }
  if (Array.isArray(v)) { v.forEach((x) => collectSecrets(x, under, out)); return; }
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) collectSecrets(x, under || ['token', 'workspace_key', 'package'].includes(k), out);
  }
}

class Run {
  constructor(name, tenant) {
    this.name = name;
    this.vars = { tenant, partner: PARTNER, service_url: url };
    this.clients = new Map();
    this.secrets = [];
  }

  subst(v) {
    if (typeof v === 'string') {
      const whole = /^\$\{([^${}]+)\}$/.exec(v);
      if (whole) {
        if (!(whole[1] in this.vars)) throw new StepError(`unknown variable ${whole[1]}`);
        return this.vars[whole[1]];
      }
      return v.replace(/\$\{([^}]*)\}/g, (_, n) => {
        if (!(n in this.vars)) throw new StepError(`unknown variable ${n}`);
        return jsonText(this.vars[n]);
      });
    }
    if (Array.isArray(v)) return v.map((x) => this.subst(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.subst(x)]));
    return v;
  }

  newClient(name, step) {
    const seen = { events: [], logs: [] };
    const options = {
      device: { device_id: step.device_id ?? `${this.vars.tenant}-${name}`, hostname: `host-${name}`, os: 'linux',
        os_version: '6.1', product: 'scenario', product_version: '1.0' },
      onEvent: (e) => seen.events.push(e),
      onLog: (level, message) => seen.logs.push([level, message]),
      logLevel: 'debug',
    };
    for (const [k, v] of Object.entries(step.options ?? {})) options[camel(k)] = v;
    const client = new edr.EdrlinkClient(options); // a refusal is the step's outcome
    const old = this.clients.get(name);
    if (old) old.client.free();
    this.clients.set(name, { client, seen });
    return null;
  }

  client(name) {
    const c = this.clients.get(name);
    if (!c) throw new StepError(`no client ${name} (add a "client" step)`);
    return c.client;
  }

  async call(kind, step, clientName) {
    switch (kind) {
      case 'client': return this.newClient(clientName, step);
      case 'inspect_token': return edr.inspectToken(step.token, step.now);
      case 'verify_envelope': {
        const v = edr.verifyEnvelope(bytes(step.envelope), new Uint8Array(Buffer.from(step.public_key, 'base64url')));
        return { payload_type: v.payload_type, keyid: v.keyid };
      }
      case 'public_key_from_seed': {
        const k = edr.SigningKey.fromSeed(new Uint8Array(Buffer.from(step.seed, 'base64url')));
        try { return { public_key: b64url(k.publicKey) }; } finally { k.free(); }
      }
      default: break;
    }
    const c = this.client(clientName);
    switch (kind) {
      case 'enroll': return c.enroll(step.token);
      case 'enroll_package': return c.enrollWithPackage(jsonText(step.package));
      case 'handshake': return { flow: await c.handshake() };
      case 'submit': return c.submit(step.event);
      case 'submit_json': return c.submit(step.json);
      case 'send_test_detection': return c.sendTestDetection();
      case 'flush': {
        const o = await c.flush(step.timeout_secs ?? 10);
        return { delivered: o.delivered, queued: o.queued };
      }
      case 'offboard':
        if (step.package !== undefined) return c.applyOffboardingPackage(jsonText(step.package));
        return c.offboard();
      case 'rotate': return c.rotate();
      case 'health': return c.health();
      default: throw new StepError(`unknown step kind ${kind}`);
    }
  }

  async step(raw) {
    const step = this.subst(raw);
    const kind = step.do;
    if (typeof kind !== 'string') throw new StepError('no "do"');
    const expect = step.expect ?? {};
    for (const k of Object.keys(expect)) if (!EXPECT_KEYS.has(k)) throw new StepError(`unknown expectation ${k}`);
    const clientName = step.client ?? 'a';
    const hooks = this.clients.get(clientName)?.seen;
    if (hooks) { hooks.events.length = 0; hooks.logs.length = 0; }

    let adminStatus, out;
    if (kind === 'admin') {
      if (!step.method || !step.path) throw new StepError('admin: method and path are required');
      const [status, body] = await admin(step.method, step.path, step.body);
      adminStatus = status;
      collectSecrets(body, false, this.secrets);
      out = { ok: true, value: body };
    } else {
      out = await outcome(() => this.call(kind, step, clientName));
    }

    // Secrets first: a failed expectation must not hide a leak.
    this.checkSecrets(clientName, out);

    if (!out.ok && expect.error === undefined) throw new StepError(`failed with ${out.error.code} (${out.error.detail}), expected success`);
    if (out.ok && expect.error !== undefined) throw new StepError(`succeeded, expected error ${expect.error}`);
    if (!out.ok) {
      const e = out.error;
      if (e.code !== expect.error) throw new StepError(`failed with ${e.code} (${e.detail}), expected ${expect.error}`);
      if ('retry_after' in expect && !jsonEq(e.retry_after ?? null, expect.retry_after)) {
        throw new StepError(`retry_after ${e.retry_after}, expected ${expect.retry_after}`);
      }
      for (const k of ['http_status', 'number']) {
        if (k in expect && !jsonEq(e[k], expect[k])) throw new StepError(`${k} ${e[k]}, expected ${expect[k]}`);
      }
    }
    if ('status' in expect) {
      if (adminStatus === undefined) throw new StepError('status is an expectation of admin steps');
      if (!jsonEq(adminStatus, expect.status)) throw new StepError(`HTTP status ${adminStatus}, expected ${expect.status}: ${JSON.stringify(out.value)}`);
    } else if (adminStatus !== undefined && (adminStatus < 200 || adminStatus >= 300)) {
      throw new StepError(`HTTP status ${adminStatus}: ${JSON.stringify(out.value)}`);
    }
    // Results compare in their JSON form (what the scenario files describe).
    const result = out.ok ? JSON.parse(JSON.stringify(out.value ?? null)) : null;
    for (const [path, want] of Object.entries(expect.result ?? {})) {
      const got = getPath(result, path);
      if (got === undefined || !jsonEq(got, want)) {
        throw new StepError(`${path} = ${got === undefined ? '<absent>' : JSON.stringify(got)}, expected ${JSON.stringify(want)} (result ${JSON.stringify(result)})`);
      }
    }
    for (const [name, path] of Object.entries(step.save ?? {})) {
      const v = getPath(result, path);
      if (v === undefined) throw new StepError(`save: ${path} is absent in ${JSON.stringify(result)}`);
      if (isSecretName(name)) collectSecrets(v, typeof v === 'string', this.secrets);
      this.vars[name] = v;
    }
    this.checkHooks(clientName, expect);
  }

  checkHooks(clientName, expect) {
    if (!['events', 'no_events', 'log'].some((k) => k in expect)) return;
    const c = this.clients.get(clientName);
    if (!c) throw new StepError('events/log expectations need a client');
    const { events, logs } = c.seen;
    const matches = (want) => {
      const i = want.indexOf(':');
      const [type, sub] = i < 0 ? [want, undefined] : [want.slice(0, i), want.slice(i + 1)];
      return events.some((e) => e.type === type && (sub === undefined || Object.entries(e).some(([k, v]) => k !== 'type' && v === sub)));
    };
    for (const w of expect.events ?? []) if (!matches(w)) throw new StepError(`event ${w} not received (got ${JSON.stringify(events)})`);
    for (const w of expect.no_events ?? []) if (matches(w)) throw new StepError(`event ${w} received (got ${JSON.stringify(events)})`);
    if (expect.log !== undefined) {
      if (!(expect.log in SEVERITY)) throw new StepError(`unknown log level ${expect.log}`);
      if (!logs.some(([l]) => SEVERITY[l] >= SEVERITY[expect.log])) {
        throw new StepError(`no log record at ${expect.log} or more severe (got ${JSON.stringify(logs)})`);
      }
    }
  }

  /** No log record and no error detail holds a secret seen so far. */
  checkSecrets(clientName, out) {
    const texts = [];
    if (!out.ok) texts.push(out.error.detail);
    else if (out.value && out.value.last_error) texts.push(String(out.value.last_error.detail));
    const c = this.clients.get(clientName);
    if (c) {
      texts.push(...c.seen.logs.map(([, m]) => m));
      const le = c.client.health().last_error;
      if (le) texts.push(le.detail);
    }
    for (const s of this.secrets.filter((x) => x.length >= 12)) {
      if (texts.some((t) => t.includes(s))) throw new StepError('a secret appeared in a log message or an error detail');
    }
  }

  free() { for (const { client } of this.clients.values()) client.free(); }
}

async function runFile(file) {
  const sc = JSON.parse(readFileSync(new URL(file, DIR), 'utf8'));
  if (typeof sc.name !== 'string') throw new StepError('no name');
  if (!sc.story) throw new StepError('no story');
  if (!Array.isArray(sc.steps)) throw new StepError('no steps');
  const tenant = `scn-${randomBytes(6).toString('hex')}`;
  let [s, b] = await admin('POST', '/admin/tenants', { tenant_id: tenant, region: 'eu' });
  if (s !== 201) throw new StepError(`setup: creating the tenant answered ${s}: ${JSON.stringify(b)}`);
  [s, b] = await admin('PUT', `/admin/tenants/${tenant}/integrations/${PARTNER}`, { enabled: true });
  if (s !== 200) throw new StepError(`setup: turning the integration on answered ${s}: ${JSON.stringify(b)}`);
  const run = new Run(sc.name, tenant);
  try {
    for (const [i, step] of sc.steps.entries()) {
      try { await run.step(step); } catch (e) {
        throw new StepError(`${sc.name} step ${i} (${JSON.stringify(step.do)}): ${e instanceof StepError ? e.message : e.stack}`);
      }
    }
  } finally {
    run.free();
  }
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.json') && (!filter || f.includes(filter))).sort();
let passed = 0, failed = 0;
for (const f of files) {
  const t0 = Date.now();
  try {
    await runFile(f);
    passed++;
    console.log(`ok   ${f} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${f}: ${e instanceof StepError ? e.message : e.stack}`);
  }
}
console.log(`scenarios: ${passed} passed, ${failed} failed`);
process.exit(files.length === 0 || failed > 0 || passed !== files.length ? 1 : 0);
