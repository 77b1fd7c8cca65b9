#!/usr/bin/env node
/**
 * A plain static file server for the demo, the e2e harness and benchmarks.
 *   node scripts/serve.mjs <dir> [--port 5173] [--host 127.0.0.1] [--isolated]
 * --isolated adds COOP/COEP (cross-origin isolation: SharedArrayBuffer, interrupts).
 * Pyodide's versioned files get a long max-age so Chromium caches the compiled wasm.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.zip': 'application/zip',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.jsonl': 'application/x-ndjson',
  '.py': 'text/plain; charset=utf-8',
};

const LONG_CACHE = /(pyodide\.asm\.(wasm|mjs)|python_stdlib\.zip|pyodide-lock\.json|pyodide\.mjs)$/;

/** Starts a server; resolves with { url, close }. */
export async function serve({ root, port = 0, host = '127.0.0.1', isolated = false }) {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      let path = normalize(join(base, decodeURIComponent(url.pathname)));
      if (path !== base && !path.startsWith(base + sep)) {
        res.writeHead(403).end();
        return;
      }
      let info = await stat(path).catch(() => undefined);
      if (info?.isDirectory()) {
        path = join(path, 'index.html');
        info = await stat(path).catch(() => undefined);
      }
      if (!info) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const headers = {
        'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
        'content-length': info.size,
        'cache-control': LONG_CACHE.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
      };
      if (isolated) {
        headers['cross-origin-opener-policy'] = 'same-origin';
        headers['cross-origin-embedder-policy'] = 'require-corp';
        headers['cross-origin-resource-policy'] = 'same-origin';
      }
      res.writeHead(200, headers);
      if (req.method === 'HEAD') res.end();
      else createReadStream(path).pipe(res);
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  await new Promise((ok) => server.listen(port, host, ok));
  const address = server.address();
  return {
    url: `http://${host}:${address.port}/`,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const root = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--port') && !args[i - 1]?.startsWith('--host')) ?? '.';
  const { url } = await serve({ root, port: Number(flag('port', '5173')), host: flag('host', '127.0.0.1'), isolated: args.includes('--isolated') });
  console.log(`Serving ${resolve(root)} at ${url}${args.includes('--isolated') ? ' (cross-origin isolated)' : ''}`);
}
