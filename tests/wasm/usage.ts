// Type-checked (tsc --noEmit, tests/wasm/tsconfig.json) against the generated .d.ts:
// the package's public API as a partner console or extension would use it.
import {
  init, EdrlinkClient, EdrlinkError, SigningKey, inspectToken, verifyToken, sealEnvelope,
  openEnvelope, verifyEnvelope, eicarTestEvent, errorCodes, version, defaultOptions,
  type ClientOptions, type ClientDefaults, type ErrorInfo, type LogLevel, type HealthReport, type TokenInspection, type FlowState, type ErrorCode,
  type EdrlinkEvent, type FlushOutcome, type ClientEvent, type Keyset,
  webCryptoKeys, indexedDbStore, chromeStorageStore, memoryStore,
  type HostKeys, type CredentialStore, type WebCryptoKeys, type KeyAlgorithm,
} from '../../wasm/js/index.js';

export async function console_flow(token: string, keyset: Keyset): Promise<string> {
  await init();
  const info: TokenInspection = inspectToken(token);
  const left: number = info.seconds_left;
  const warn: boolean = info.status === 'expires_soon' || info.status === 'expired';
  const tenant: string = info.claims.tenant_id;
  const claims = verifyToken(token, keyset, undefined, 60);
  const exp: number = claims.exp;

  const events: ClientEvent[] = [];
  const options: ClientOptions = {
    device: { device_id: 'd', hostname: 'h', os: 'browser', os_version: '1', product: 'p', product_version: '1' },
    opTimeoutSecs: 10,
    maxQueueAgeSecs: 3600,
    whenFull: 'drop_oldest',
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'flow_changed') { const f: FlowState = e.flow; void f; }
      if (e.type === 'needs_new_token') { const why: string = e.code; void why; }
      if (e.type === 'events_dropped') { const n: number = e.count + e.reason.length; void n; }
    },
    onLog: (level: LogLevel, message: string) => { void level; void message; },
    logLevel: 'debug',
  };
  const client = new EdrlinkClient(options);
  try {
    const defaults: ClientDefaults = defaultOptions();
    const t: number = defaults.opTimeoutSecs;
    void t;
    const health: HealthReport = await client.enroll(token);
    const last: ErrorInfo | null = health.last_error;
    if (last) { const r: number | null = last.retry_after; void r; }
    const flow: FlowState | null = health.flow;
    const ev: EdrlinkEvent = eicarTestEvent('/tmp/eicar.com');
    client.submit(ev);
    client.submit({ type: 'generic', time: '2026-01-01T00:00:00Z', name: 'process_start', data: { pid: 1 } });
    client.sendTestDetection();
    const out: FlushOutcome = await client.flush(5);
    const f2: FlowState = await client.handshake();
    await client.rotate();
    const cred: string | undefined = client.exportCredential();
    if (cred) client.importCredential(cred);
    return `${left} ${warn} ${tenant} ${exp} ${flow} ${out.delivered} ${f2} ${client.flow} ${client.isIdle}`;
  } catch (e) {
    if (e instanceof EdrlinkError) {
      const code: ErrorCode = e.code;
      const n: number = e.number;
      const status: number = e.httpStatus;
      const retry: number | null = e.retryAfter;
      const detail: string = e.detail;
      const rec: ErrorInfo = e.toJSON();
      return `${code} ${n} ${status} ${retry} ${detail} ${rec.code}`;
    }
    throw e;
  } finally {
    client.free();
  }
}

export function envelopes(): Uint8Array {
  const key = SigningKey.generate();
  const env: Uint8Array = sealEnvelope('application/json', new Uint8Array([1]), key);
  const payload: Uint8Array = openEnvelope(env, 'application/json', key.publicKey);
  const v = verifyEnvelope(env, key.publicKey);
  const kid: string = v.keyid + key.keyId;
  void kid;
  const codes: ErrorCode[] = errorCodes().map((c) => c.name);
  void codes; void version();
  return payload;
}

// Host keys and credential stores: the WebCrypto default spelled out, a store, a custom signer.
export async function host_keys(token: string): Promise<string> {
  await init();
  const wc: WebCryptoKeys = webCryptoKeys({ dbName: 'acme-keys', algorithm: 'ecdsa-p256' });
  const alg: KeyAlgorithm = await wc.algorithm();
  const store: CredentialStore = indexedDbStore({ dbName: 'acme' });
  const device = { device_id: 'd', hostname: 'h', os: 'browser', os_version: '1', product: 'p', product_version: '1' };
  const a = new EdrlinkClient({ device, keys: wc, store, signerTimeoutSecs: 30 });
  const enrolled: boolean = await a.load();
  if (!enrolled) await a.enroll(token);
  const h = (await a.exportCredential()) ?? '';
  const k: CryptoKey | null = await wc.cryptoKey(JSON.parse(h).host_key.handle);
  // A signer of the host's own (a native messaging host, a hardware token, ...).
  const custom: HostKeys = {
    async createKey() { return { handle: 'hw-1', publicKey: new Uint8Array(65) }; },
    async sign(handle: string, message: Uint8Array) { void handle; return message.slice(0, 64); },
    async deleteKey(handle: string) { void handle; },
  };
  const b = new EdrlinkClient({ device, keys: custom, store: memoryStore() });
  const c = new EdrlinkClient({ device, keys: 'software', store: chromeStorageStore({ key: 'cred' }) });
  a.free(); b.free(); c.free();
  return `${alg} ${k?.extractable}`;
}

// @ts-expect-error: keys must be a HostKeys object or "software"
void new EdrlinkClient({ device: { device_id: 'd' } as never, keys: 'hsm' });

// @ts-expect-error: enroll takes a token string
void new EdrlinkClient({ device: { device_id: 'd' } as never }).enroll(42);

// The `lite` entry (`@edrlink/wasm/lite`): same types, no client.
import * as lite from '../../wasm/js/lite.js';

export async function lite_flow(token: string, keyset: Keyset, workspaceKey: Uint8Array): Promise<string> {
  await lite.init();
  const claims = lite.verifyToken(token, keyset);
  const key: lite.SigningKey = lite.SigningKey.generate();
  const env: Uint8Array = lite.sealEnvelope('application/json', new TextEncoder().encode('{}'), key);
  const back: Uint8Array = lite.openEnvelope(env, 'application/json', key.publicKey);
  const auth: string = lite.sharedKeyAuthorization('ws', workspaceKey, 'POST', '/v1/downlevel/ingest',
    'application/json', '2026-11-23T12:00:00Z', back);
  try { lite.inspectToken('x'); } catch (e) { if (e instanceof lite.EdrlinkError) { const c: ErrorCode = e.code; return c; } }
  key.free();
  return `${claims.tenant_id} ${auth}`;
}
