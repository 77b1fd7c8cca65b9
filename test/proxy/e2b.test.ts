/// <reference types="node" />
/**
 * The e2b provider through the real `e2b` SDK (Sandbox.create, commands.run in the
 * background with stdin, sendStdin, files.write, kill) against a loopback imitation of e2b's
 * API and envd as strict as the service (see fake-e2b.ts), behind the real proxy server.
 */
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2b from 'e2b';
import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest';
import { createE2BProvider, type E2BProviderOptions } from '../../src/proxy/providers/e2b.js';
import { createProviders } from '../../src/proxy/providers/index.js';
import { RUNTIME_ARGV } from '../../src/proxy/runtime-files.js';
import { createProxyServer, type ProxyOptions, type ProxyServer } from '../../src/proxy/server.js';
import { driver, type Driver } from './drive.js';
import { uploadLargeContext } from './large-context.js';
import { startFakeE2B, type FakeE2B, type FakeE2BOptions } from './fake-e2b.js';

const TOKEN = 'vitest-proxy-token';
const MiB = 1024 * 1024;
let fake: FakeE2B;
let proxy: ProxyServer;
let drive: Driver;
let url: string;
const extra: { close(): Promise<void> }[] = [];

/** The handles of the background commands the provider started (through a subclass of the SDK's Sandbox). */
const handles: { stdout: string; stderr: string }[] = [];
class WatchedSandbox extends e2b.Sandbox {
  constructor(...args: ConstructorParameters<typeof e2b.Sandbox>) {
    super(...args);
    const run = this.commands.run.bind(this.commands) as (cmd: string, opts?: { background?: boolean }) => Promise<unknown>;
    (this.commands as { run: unknown }).run = async (cmd: string, opts?: { background?: boolean }) => {
      const result = await run(cmd, opts);
      if (opts?.background) handles.push(result as { stdout: string; stderr: string });
      return result;
    };
  }
}

function provider(fakeE2B: FakeE2B, options: Partial<E2BProviderOptions> = {}) {
  return createE2BProvider({
    apiKey: 'e2b_0000000000000000000000000000000000000000',
    connection: { apiUrl: fakeE2B.url, sandboxUrl: fakeE2B.url, requestTimeoutMs: 20_000 },
    _sdk: { ...e2b, Sandbox: WatchedSandbox },
    ...options,
  });
}

async function setUp(fakeOptions: FakeE2BOptions, proxyOptions: Partial<ProxyOptions> = {}) {
  const own = await startFakeE2B(fakeOptions);
  const server = createProxyServer({ tokens: [TOKEN], providers: { e2b: provider(own) }, logger: () => undefined, ...proxyOptions });
  extra.push(server, own);
  const at = await server.listen(0);
  return { fake: own, proxy: server, url: at, drive: driver(at, TOKEN) };
}

beforeAll(async () => {
  fake = await startFakeE2B();
  proxy = createProxyServer({ tokens: [TOKEN], providers: { e2b: provider(fake) }, logger: () => undefined, maxLifetimeMs: 600_000 });
  url = await proxy.listen(0);
  drive = driver(url, TOKEN);
});

afterEach(async () => {
  for (const item of extra.splice(0)) await item.close();
});

afterAll(async () => {
  await proxy.close();
  await fake.close();
});

test('starts our runtime in an e2b sandbox without internet, passes lines both ways, interrupts and deletes it', async () => {
  const { id, python } = await drive.create('e2b');
  expect(python).toMatch(/^3\./);
  // The SDK created one sandbox, with the proxy's lifetime as its timeout, no internet, and the API key.
  expect(fake.created).toHaveLength(1);
  expect(fake.created[0]!.timeout).toBe(600);
  expect(fake.created[0]!.allowInternetAccess).toBe(false);
  expect(fake.created[0]!.authorization).toContain('e2b_0000');
  // The background command is our runtime: python3 -u -c <bootstrap>.
  const bootstrap = /b64decode\('([A-Za-z0-9+/=]+)'\)/.exec(RUNTIME_ARGV[3]!)![1]!;
  expect(fake.commands[0]!.startsWith('python3 -u -c ')).toBe(true);
  expect(fake.commands[0]).toContain(bootstrap);
  expect(Buffer.from(bootstrap, 'base64').toString()).toContain('import rlm_stdio');
  // The runtime's source went in through stdin (sendStdin), before the ready line came out.
  expect(fake.stdinWrites).toBeGreaterThanOrEqual(1);

  expect(await drive.upload(id, 0, 'héllo e2b')).toEqual({ type: 'str', length: 9 });
  const cell = await drive.cell(id, 'r = llm_query(context.upper())\nprint(r)\nprint(len(llm_query_batched(["a", "b"])))', (request) => ({
    results: request.prompts.map((p) => `answered:${p}`),
  }));
  expect(cell.event).toBe('result');
  expect(cell.requests).toBe(2);
  expect(cell.data.stdout).toBe('answered:HÉLLO E2B\n2\n');

  // The interrupt is SIGINT sent by Python run beside the runtime; the state survives.
  const marker = join(tmpdir(), `e2b-cell-${process.pid}-${Date.now()}`);
  const running = drive.cell(id, `open(${JSON.stringify(marker)}, "w").close()\nimport time\nfor _ in range(600):\n    time.sleep(0.05)`);
  await vi.waitFor(() => expect(existsSync(marker)).toBe(true), { timeout: 10_000 }); // the cell's code is running
  rmSync(marker);
  expect(await (await drive.post(id, 'interrupt')).json()).toEqual({ status: 'interrupted' });
  const stopped = await running;
  expect(stopped.data.error_type).toBe('KeyboardInterrupt');
  expect(fake.commands.some((c) => c.startsWith('python3 -c ') && c.includes('SIGINT'))).toBe(true);
  const after = await drive.cell(id, 'print(context)');
  expect(after.data.stdout).toBe('héllo e2b\n');

  expect((await drive.remove(id)).status).toBe(200);
  expect(fake.deleted).toEqual(['fake1']);
  expect(fake.live()).toBe(0);
  expect(proxy.sandboxCount).toBe(0);
}, 60_000);

test('the SDK keeps none of the output: protocol lines and prints do not pile up in the proxy', async () => {
  const { id } = await drive.create('e2b');
  const handle = handles.at(-1)!;
  for (let i = 0; i < 3; i++) {
    const cell = await drive.cell(id, 'import sys\nprint("x" * 1_000_000)\n_ = sys.stderr.write("e" * 100_000)');
    expect(String(cell.data.stdout).length).toBe(1_000_001);
  }
  expect(handle.stdout.length).toBe(0);
  expect(handle.stderr.length).toBe(0);
  await drive.remove(id);
}, 60_000);

test('a 3 MiB cell goes as ordered writes of at most 1 MiB, its characters intact', async () => {
  const { id } = await drive.create('e2b');
  const cell = await drive.cell(id, `x = "${'é€'.repeat(MiB / 2)}"\nprint(len(x), x[-2:])`);
  expect(cell.event).toBe('result');
  expect(cell.data.stdout).toBe(`${MiB} é€\n`);
  expect(fake.largestStdinWrite).toBeLessThanOrEqual(MiB);
  await drive.remove(id);
}, 60_000);

test('a 100 MB context is streamed through envd\'s file upload and loaded by path, the file removed', async () => {
  const { id } = await drive.create('e2b');
  const before = fake.stdinWrites;
  await uploadLargeContext(url, TOKEN, drive, id, 'e2b imitation');
  const upload = fake.uploads.at(-1)!;
  expect(upload).toMatchObject({ contentType: 'application/octet-stream', bytes: 100_000_000 });
  expect(fake.stdinWrites - before).toBe(2); // only the load command and the checking cell
  expect(existsSync(upload.path)).toBe(false);
  await drive.remove(id);
}, 120_000);

test('a JSON context goes the same way', async () => {
  const { id } = await drive.create('e2b');
  const response = await fetch(`${url}/v1/sandboxes/${id}/contexts/1?kind=json`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ a: [1, 'é'] }) });
  expect(await response.json()).toEqual({ type: 'dict', length: 1 });
  expect((await drive.cell(id, 'print(context_1["a"][1])')).data.stdout).toBe('é\n');
  await drive.remove(id);
}, 60_000);

test('a start slower than the start timeout fails naming its phase, and the late sandbox is deleted', async () => {
  const own = await setUp({ createDelayMs: 2000 }, { startTimeoutMs: 500 });
  const response = await fetch(`${own.url}/v1/sandboxes`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ provider: 'e2b' }) });
  expect(response.status).toBe(502);
  expect(((await response.json()) as { error: { message: string } }).error.message).toContain("phase 'scheduling'");
  await vi.waitFor(() => expect(own.fake.deleted).toEqual(['fake1']), { timeout: 10_000 });
  expect(own.fake.live()).toBe(0);
}, 30_000);

test('a sandbox that expires mid-cell, or whose stream is cut, ends the cell as a crash', async () => {
  const own = await setUp({ expireAfterMs: 2000 });
  const first = await own.drive.create('e2b');
  const expiring = await own.drive.cell(first.id, 'import time\ntime.sleep(120)');
  expect(own.fake.expired).toEqual(['fake1']);
  expect(expiring.event).toBe('error');
  expect(expiring.data.code).toBe('crashed');
  expect(String(expiring.data.message)).toContain('end of life');

  const second = await drive.create('e2b');
  const marker = join(tmpdir(), `e2b-cut-${process.pid}-${Date.now()}`);
  const cut = drive.cell(second.id, `open(${JSON.stringify(marker)}, "w").close()\nimport time\ntime.sleep(120)`);
  await vi.waitFor(() => expect(existsSync(marker)).toBe(true), { timeout: 10_000 });
  rmSync(marker);
  fake.cutStreams();
  const lost = await cut;
  expect(lost.event).toBe('error');
  expect(lost.data.code).toBe('crashed');
  expect(String(lost.data.message)).toContain('lost');
}, 60_000);

test('a process that dies in the e2b sandbox ends its cell with a crash event', async () => {
  const { id } = await drive.create('e2b');
  const cell = await drive.cell(id, 'import os\nos._exit(7)');
  expect(cell.event).toBe('error');
  expect(cell.data.code).toBe('crashed');
  expect(String(cell.data.message)).toContain('exited with code 7');
  expect(proxy.sandboxCount).toBe(0);
  // The dead process's e2b sandbox is deleted too, not left to its timeout.
  const last = `fake${fake.created.length}`;
  await vi.waitFor(() => expect(fake.deleted).toContain(last));
}, 60_000);

test('RLM_PROXY_SANDBOX_NETWORK (the proxy\'s --sandbox-network) turns the internet on for e2b sandboxes', async () => {
  const own = await startFakeE2B();
  extra.push(own);
  vi.stubEnv('E2B_API_URL', own.url);
  vi.stubEnv('E2B_SANDBOX_URL', own.url);
  try {
    const env = { E2B_API_KEY: 'e2b_0000000000000000000000000000000000000000', RLM_PROXY_SANDBOX_NETWORK: '1' };
    const server = createProxyServer({ tokens: [TOKEN], providers: await createProviders(['e2b'], env, () => undefined), logger: () => undefined });
    extra.push(server);
    const { id } = await driver(await server.listen(0), TOKEN).create('e2b');
    expect(id).toBeTruthy();
    expect(own.created[0]!.allowInternetAccess).toBe(true);
  } finally {
    vi.unstubAllEnvs();
  }
}, 60_000);
