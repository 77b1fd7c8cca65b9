/// <reference types="node" />
/**
 * The e2b provider through the real `e2b` SDK (Sandbox.create, commands.run in the
 * background with stdin, sendStdin, kill) against a loopback imitation of e2b's API and
 * envd, behind the real proxy server.
 */
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { createE2BProvider } from '../../src/proxy/providers/e2b.js';
import { RUNTIME_ARGV } from '../../src/proxy/runtime-files.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import { driver, type Driver } from './drive.js';
import { startFakeE2B, type FakeE2B } from './fake-e2b.js';

const TOKEN = 'vitest-proxy-token';
let fake: FakeE2B;
let proxy: ProxyServer;
let drive: Driver;

beforeAll(async () => {
  fake = await startFakeE2B();
  const provider = createE2BProvider({ apiKey: 'e2b_0000000000000000000000000000000000000000', connection: { apiUrl: fake.url, sandboxUrl: fake.url, requestTimeoutMs: 20_000 } });
  proxy = createProxyServer({ tokens: [TOKEN], providers: { e2b: provider }, logger: () => undefined, maxLifetimeMs: 600_000 });
  drive = driver(await proxy.listen(0), TOKEN);
});

afterAll(async () => {
  await proxy.close();
  await fake.close();
});

test('starts our runtime in an e2b sandbox, passes lines both ways, interrupts and deletes it', async () => {
  const { id, python } = await drive.create('e2b');
  expect(python).toMatch(/^3\./);
  // The SDK created one sandbox, with the proxy's lifetime as its timeout, and the API key.
  expect(fake.created).toHaveLength(1);
  expect(fake.created[0]!.timeout).toBe(600);
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

  // Interrupt goes through the SDK as `kill -INT <pid>` in the sandbox.
  const running = drive.cell(id, 'import time\nfor _ in range(600):\n    time.sleep(0.05)');
  await new Promise((ok) => setTimeout(ok, 500));
  expect(await (await drive.post(id, 'interrupt')).json()).toEqual({ status: 'interrupted' });
  const stopped = await running;
  expect(stopped.data.error_type).toBe('KeyboardInterrupt');
  expect(fake.commands.some((c) => /^kill -INT \d+$/.test(c))).toBe(true);
  const after = await drive.cell(id, 'print(context)');
  expect(after.data.stdout).toBe('héllo e2b\n');

  expect((await drive.remove(id)).status).toBe(200);
  expect(fake.deleted).toEqual(['fake1']);
  expect(fake.live()).toBe(0);
  expect(proxy.sandboxCount).toBe(0);
}, 60_000);

test('a process that dies in the e2b sandbox ends its cell with a crash event', async () => {
  const { id } = await drive.create('e2b');
  const cell = await drive.cell(id, 'import os\nos._exit(7)');
  expect(cell.event).toBe('error');
  expect(cell.data.code).toBe('crashed');
  expect(String(cell.data.message)).toContain('exited with code 7');
  expect(proxy.sandboxCount).toBe(0);
  // The dead process's e2b sandbox is deleted too, not left to its timeout.
  await vi.waitFor(() => expect(fake.deleted).toContain('fake2'));
}, 60_000);
