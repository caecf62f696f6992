// Host key stores and credential stores for `new EdrlinkClient({ keys, store })`.
//
// A `keys` object keeps the installation's device key where edrlink never sees it:
// edrlink asks it to create a key (enrollment, every rotation), to sign a message and to
// delete a key it no longer uses; the credential then holds only the key's handle and
// public key. A `store` object keeps the credential JSON (load / save / delete).
// Plain JS, no dependency on the wasm module: the client calls these objects, they never
// call back into it.
//
//   webCryptoKeys({ dbName })      non-extractable WebCrypto keys kept in IndexedDB
//                                  (the browser default when no `keys` are given)
//   indexedDbStore({ dbName })     the credential JSON in IndexedDB (pages, workers)
//   chromeStorageStore({ key })    the credential JSON in chrome.storage.local (MV3 extensions)
//   memoryStore()                  the credential JSON in memory (tests, short-lived tools)

const IDB_STORE = 'records';

/** A request (or transaction) of IndexedDB as a Promise. */
function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Opens `name` with an object store `records`, creating it (or adding the store) as needed. */
async function openDb(idb, name) {
  const open = (version) => {
    const req = version === undefined ? idb.open(name) : idb.open(name, version);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(IDB_STORE)) req.result.createObjectStore(IDB_STORE);
    };
    return done(req);
  };
  let db = await open();
  if (!db.objectStoreNames.contains(IDB_STORE)) {
    // An existing database of that name without our store: add it in a version upgrade.
    const v = db.version + 1;
    db.close();
    db = await open(v);
  }
  // Another tab upgrading the database: let it, reopen on next use.
  db.onversionchange = () => db.close();
  return db;
}

/** get / put / delete on one key of the `records` store of database `name`. */
function idbRecords(name) {
  const idb = globalThis.indexedDB;
  if (!idb) throw new TypeError('IndexedDB is not available in this environment');
  let dbp = null;
  const db = () => {
    dbp ??= openDb(idb, name).then((d) => {
      d.addEventListener?.('close', () => { dbp = null; });
      return d;
    }, (e) => { dbp = null; throw e; });
    return dbp;
  };
  const run = async (mode, fn) => {
    const d = await db();
    const tx = d.transaction(IDB_STORE, mode);
    const result = done(fn(tx.objectStore(IDB_STORE)));
    // Writes count once the transaction commits, not when the request succeeds.
    const committed = new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
    });
    const [value] = await Promise.all([result, committed]);
    return value;
  };
  return {
    get: (key) => run('readonly', (s) => s.get(key)),
    put: (key, value) => run('readwrite', (s) => s.put(value, key)).then(() => undefined),
    delete: (key) => run('readwrite', (s) => s.delete(key)).then(() => undefined),
  };
}

const ALGORITHMS = {
  'ed25519': { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  'ecdsa-p256': { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
};

function randomHandle(prefix) {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Device keys made by WebCrypto as **non-extractable** `CryptoKey`s and kept in IndexedDB
 * (a `CryptoKey` is structured-clonable: the browser stores the key, script never sees
 * its bytes). Ed25519 where the browser supports it, else ECDSA P-256 (signatures come
 * back as raw `r‖s`, which edrlink accepts). Works in pages, workers and MV3 extension
 * service workers.
 *
 * Options: `dbName` (default `"edrlink-keys"`), `algorithm` (`"ed25519"` or
 * `"ecdsa-p256"`; default: Ed25519 when `generateKey` supports it, else P-256).
 * Besides the `keys` interface it has `cryptoKey(handle)` (the stored private
 * `CryptoKey`, or `null`) and `algorithm()` (the algorithm new keys get).
 */
export function webCryptoKeys({ dbName = 'edrlink-keys', algorithm } = {}) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) throw new TypeError('WebCrypto (crypto.subtle) is not available in this environment');
  if (algorithm !== undefined && !(algorithm in ALGORITHMS)) {
    throw new TypeError('webCryptoKeys: algorithm must be "ed25519" or "ecdsa-p256"');
  }
  const records = idbRecords(dbName);
  // handle -> { algorithm, privateKey }: signing does not read IndexedDB every time. Keys
  // are only deleted once edrlink no longer signs with them (handles are never reused).
  const cache = new Map();
  let chosen = algorithm;

  async function generate(name) {
    return subtle.generateKey(ALGORITHMS[name].generate, false, ['sign']);
  }
  async function newPair() {
    if (chosen) return [chosen, await generate(chosen)];
    try {
      const pair = await generate('ed25519');
      chosen = 'ed25519';
      return [chosen, pair];
    } catch (e) {
      // Browsers without WebCrypto Ed25519 throw NotSupportedError: fall back to P-256.
      if (e && e.name !== 'NotSupportedError' && e.name !== 'TypeError') throw e;
      chosen = 'ecdsa-p256';
      return [chosen, await generate(chosen)];
    }
  }
  async function lookup(handle) {
    let rec = cache.get(handle);
    if (!rec) {
      rec = await records.get(handle);
      if (!rec || !rec.privateKey) throw new Error(`no WebCrypto key named ${handle} in IndexedDB ${dbName}`);
      cache.set(handle, rec);
    }
    return rec;
  }

  return {
    async createKey() {
      const [alg, pair] = await newPair();
      const publicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
      const handle = randomHandle(`webcrypto:${alg}:`);
      const rec = { algorithm: alg, privateKey: pair.privateKey, publicKey, created: Date.now() };
      await records.put(handle, rec);
      cache.set(handle, rec);
      return { handle, publicKey };
    },
    async sign(handle, message) {
      const rec = await lookup(handle);
      return new Uint8Array(await subtle.sign(ALGORITHMS[rec.algorithm].sign, rec.privateKey, message));
    },
    async deleteKey(handle) {
      cache.delete(handle);
      await records.delete(handle);
    },
    async cryptoKey(handle) {
      // Read from IndexedDB itself (not this instance's cache): another view of the
      // database may have deleted the key.
      const rec = await records.get(handle);
      return rec && rec.privateKey ? rec.privateKey : null;
    },
    async algorithm() {
      if (!chosen) await newPair();
      return chosen;
    },
  };
}

/**
 * The credential JSON in IndexedDB (database `dbName`, default `"edrlink"`; record `key`,
 * default `"credential"`). Readable by every script of the origin: with WebCrypto keys the
 * credential holds no private key (only the key's handle and public key).
 */
export function indexedDbStore({ dbName = 'edrlink', key = 'credential' } = {}) {
  const records = idbRecords(dbName);
  return {
    async load() { const v = await records.get(key); return typeof v === 'string' ? v : null; },
    save(json) { return records.put(key, String(json)); },
    delete() { return records.delete(key); },
  };
}

/**
 * The credential JSON in `chrome.storage.local` under `key` (default
 * `"edrlink_credential"`), for MV3 extensions (service worker, options page).
 * Never `storage.sync`: the credential belongs to this browser profile.
 */
export function chromeStorageStore({ key = 'edrlink_credential', area } = {}) {
  const storage = area || (globalThis.chrome && globalThis.chrome.storage && globalThis.chrome.storage.local);
  if (!storage) throw new TypeError('chrome.storage.local is not available (an extension context with the "storage" permission)');
  return {
    async load() { const v = (await storage.get(key))[key]; return typeof v === 'string' ? v : null; },
    save(json) { return storage.set({ [key]: String(json) }); },
    delete() { return storage.remove(key); },
  };
}

/** The credential JSON in memory (tests, short-lived tools); `value` to start with one. */
export function memoryStore(value = null) {
  let cur = value;
  return {
    async load() { return cur; },
    async save(json) { cur = String(json); },
    async delete() { cur = null; },
  };
}

/**
 * The browser default for `keys` when none are given: `webCryptoKeys()` where both
 * `crypto.subtle` and `indexedDB` exist, else `undefined` (the SDK keeps a software key
 * in its credential, as in Node).
 */
export function defaultKeys() {
  const g = globalThis;
  if (!(g.crypto && g.crypto.subtle && g.indexedDB)) return undefined;
  return webCryptoKeys();
}
