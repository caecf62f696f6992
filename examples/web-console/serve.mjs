#!/usr/bin/env node
// Tiny static server for the web console (loopback only, no dependencies).
//   node examples/web-console/serve.mjs [--port 0] [--proxy http://127.0.0.1:PORT]
// Serves the repository's examples/web-console/ and wasm/{js,pkg}/ at the same paths
// (the console imports ../../wasm/js/web.mjs) and redirects / to the console.
// With --proxy, POST/GET /v1/* are forwarded to that service, and config.json tells
// the console to use this origin: a stand-in for services that send no CORS headers.
// Prints "console on http://127.0.0.1:PORT/examples/web-console/" when ready.
import { createServer, request as httpRequest } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const port = Number(opt('--port', '0'));
const proxy = opt('--proxy', process.env.EDRLINK_PROXY || '');
const ALLOWED = ['/examples/web-console/', '/wasm/js/', '/wasm/pkg/web/'];
const TYPES = { '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript', '.js': 'text/javascript',
  '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json', '.ts': 'text/plain' };

function forward(req, res) {
  const target = new URL(req.url, proxy);
  const p = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  p.on('error', (e) => { res.writeHead(502, { 'content-type': 'text/plain' }); res.end(`proxy: ${e.message}`); });
  req.pipe(p);
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (proxy && url.pathname.startsWith('/v1/')) return forward(req, res);
  if (url.pathname === '/') { res.writeHead(302, { location: '/examples/web-console/' }); return res.end(); }
  if (url.pathname === '/examples/web-console/config.json') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    return res.end(JSON.stringify({ proxy: !!proxy }));
  }
  let p = decodeURIComponent(url.pathname);
  if (p.endsWith('/')) p += 'index.html';
  const file = path.join(ROOT, path.normalize(p));
  if (!ALLOWED.some((a) => p.startsWith(a)) || !file.startsWith(ROOT + path.sep) || p.includes('..')) {
    res.writeHead(404); return res.end('not found');
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(body);
  } catch { res.writeHead(404); res.end('not found'); }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`console on http://127.0.0.1:${server.address().port}/examples/web-console/${proxy ? ` (proxy /v1/* -> ${proxy})` : ''}`);
});
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => server.close(() => process.exit(0)));
