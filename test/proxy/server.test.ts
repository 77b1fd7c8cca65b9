/// <reference types="node" />
/**
 * The proxy's own rules, with the local provider (real python3 processes): streamed
 * context uploads, body limits, ownership of sandboxes, lifetime reaping, ids and logs.
 */
import { readFileSync } from 'node:fs';
import { afterEach, expect, test, vi } from 'vitest';
import { createLocalProvider } from '../../src/proxy/providers/local.js';
import { createProxyServer, type ProxyOptions, type ProxyServer } from '../../src/proxy/server.js';
import { chunkedPut, driver } from './drive.js';
import { hostPid, PRINT_NAMESPACE, processesIn } from './host-processes.js';

const TOKEN = 'vitest-proxy-token';
const OTHER = 'another-token-for-tests';
let proxy: ProxyServer | undefined;
let logs: string[] = [];

async function start(options: Partial<ProxyOptions> = {}): Promise<string> {
  logs = [];
  proxy = createProxyServer({ tokens: [TOKEN, OTHER], providers: { local: createLocalProvider() }, logger: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })), ...options });
  return proxy.listen(0);
}

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

test('a large context streams in without being buffered whole, multi-byte characters intact', async () => {
  const url = await start();
  const drive = driver(url, TOKEN);
  const { id } = await drive.create('local');
  expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/); // 24 random bytes
  // 40 MB of 'é' (2 bytes each) in odd-sized chunks: base64 lines split characters anywhere.
  const piece = Buffer.from('é'.repeat(700_001));
  const chunks = Array.from({ length: 29 }, () => piece);
  const started = performance.now();
  const upload = await chunkedPut(`${url}/v1/sandboxes/${id}/contexts/0?kind=text`, TOKEN, chunks);
  const seconds = (performance.now() - started) / 1000;
  expect(upload.status).toBe(200);
  expect(JSON.parse(upload.body)).toEqual({ type: 'str', length: 700_001 * 29 });
  const check = await drive.cell(id, 'print(len(context), set(context))');
  expect(check.data.stdout).toBe(`${700_001 * 29} {'é'}\n`);
  console.log(`[measure] context upload through the proxy (local provider): ${(piece.length * 29 / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s`);
}, 60_000);

test('body limits: 413 for large JSON and for a context over the limit, and the sandbox still works', async () => {
  const url = await start({ maxBodyBytes: 1000, maxContextBytes: 100_000 });
  const drive = driver(url, TOKEN);
  const { id } = await drive.create('local');
  const big = await drive.post(id, 'cells', { code: `x = "${'a'.repeat(2000)}"` });
  expect(big.status).toBe(413);
  const declared = await fetch(`${url}/v1/sandboxes/${id}/contexts/0`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'b'.repeat(100_001) });
  expect(declared.status).toBe(413);
  const streamed = await chunkedPut(`${url}/v1/sandboxes/${id}/contexts/0`, TOKEN, Array.from({ length: 5 }, () => Buffer.alloc(30_000, 99)));
  expect(streamed.status).toBe(413);
  expect(await drive.upload(id, 0, 'small')).toEqual({ type: 'str', length: 5 });
  expect((await drive.cell(id, 'print(context)')).data.stdout).toBe('small\n');
});

test('a sandbox belongs to its token: others get 404, a wrong token 401', async () => {
  const url = await start();
  const mine = driver(url, TOKEN);
  const theirs = driver(url, OTHER);
  const { id } = await mine.create('local');
  expect((await theirs.post(id, 'reset')).status).toBe(404);
  expect((await theirs.remove(id)).status).toBe(404);
  expect((await driver(url, 'wrong-token-wrong').post(id, 'reset')).status).toBe(401);
  const listed = (await (await fetch(`${url}/v1/sandboxes`, { headers: { authorization: `Bearer ${OTHER}` } })).json()) as { sandboxes: unknown[] };
  expect(listed.sandboxes).toEqual([]);
  expect((await mine.post(id, 'reset')).status).toBe(200);
  expect(logs.join('\n')).not.toContain(TOKEN);
  expect(logs.join('\n')).not.toContain(id); // ids are logged shortened
});

test('the maximum lifetime ends a sandbox even mid-cell, with an error event rather than a hang', async () => {
  const url = await start({ maxLifetimeMs: 1500 });
  const drive = driver(url, TOKEN);
  const { id } = await drive.create('local');
  const cell = await drive.cell(id, 'import time\ntime.sleep(60)');
  expect(cell.event).toBe('error');
  expect(cell.data.code).toBe('expired');
  expect(String(cell.data.message)).toContain('maximum lifetime of 1500 ms');
  expect(proxy!.sandboxCount).toBe(0);
  expect((await drive.post(id, 'reset')).status).toBe(404);
});

test('commands that fail in Python are 422 with the Python error; unknown providers are 400', async () => {
  const url = await start();
  const drive = driver(url, TOKEN);
  const { id } = await drive.create('local');
  const reserved = await drive.post(id, 'tools', { tools: [{ name: 'llm_query', kind: 'function' }] });
  expect(reserved.status).toBe(422);
  expect(JSON.stringify(await reserved.json())).toContain("ValueError: 'llm_query' is a reserved name");
  const unknown = await fetch(`${url}/v1/sandboxes`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ provider: 'nope' }) });
  expect(unknown.status).toBe(400);
});

test('deleting a local sandbox also ends the processes its code started', async () => {
  const url = await start();
  const drive = driver(url, TOKEN);
  const { id } = await drive.create('local');
  const cell = await drive.cell(id, `${PRINT_NAMESPACE}\nimport subprocess\np = subprocess.Popen(["sleep", "300"])\nprint(p.pid)`);
  const [ns, sleeper] = String(cell.data.stdout).trim().split('\n');
  // Running, not a zombie waiting for a reaper.
  const pid = hostPid(ns!, Number(sleeper))!;
  expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/^\d+ \(sleep\) S/);
  expect((await drive.remove(id)).status).toBe(200);
  await vi.waitFor(() => expect(processesIn(ns!)).toEqual([]));
});
