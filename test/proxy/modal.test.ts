/// <reference types="node" />
/**
 * The Modal provider through the real `modal` SDK (ModalClient, apps.fromName,
 * images.fromRegistry, sandboxes.create, Sandbox.exec with stdin/stdout streams,
 * terminate): control plane answered through the SDK's grpcMiddleware, the task command
 * router a real loopback gRPC server. Behind the real proxy server.
 */
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { createModalProvider } from '../../src/proxy/providers/modal.js';
import { RUNTIME_ARGV } from '../../src/proxy/runtime-files.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import { driver, type Driver } from './drive.js';
import { startFakeModal, type FakeModal } from './fake-modal.js';

const TOKEN = 'vitest-proxy-token';
let fake: FakeModal;
let proxy: ProxyServer;
let drive: Driver;

beforeAll(async () => {
  process.env.MODAL_CONFIG_PATH = '/nonexistent/.modal.toml'; // never read a developer's real profile
  fake = await startFakeModal();
  const provider = createModalProvider({ tokenId: 'ak-fake', tokenSecret: 'as-fake', appName: 'rlm-web-test', image: 'python:3.11-slim', client: fake.clientParams });
  proxy = createProxyServer({ tokens: [TOKEN], providers: { modal: provider }, logger: () => undefined, maxLifetimeMs: 900_000 });
  drive = driver(await proxy.listen(0), TOKEN);
});

afterAll(async () => {
  await proxy?.close();
  await fake?.close();
});

test('starts our runtime in a Modal sandbox, passes lines both ways, interrupts and terminates it', async () => {
  const { id, python } = await drive.create('modal');
  expect(python).toMatch(/^3\./);
  const methods = fake.calls.map((c) => c.method);
  expect(methods).toEqual(expect.arrayContaining(['AppGetOrCreate', 'ImageGetOrCreate', 'SandboxCreateV2']));
  expect(fake.calls.find((c) => c.method === 'AppGetOrCreate')!.request.appName).toBe('rlm-web-test');
  const image = fake.calls.find((c) => c.method === 'ImageGetOrCreate')!.request.image as { dockerfileCommands: string[] };
  expect(image.dockerfileCommands).toEqual(['FROM python:3.11-slim']);
  const created = fake.calls.find((c) => c.method === 'SandboxCreateV2')!.request.definition as { timeoutSecs: number };
  expect(created.timeoutSecs).toBe(900);
  // The exec'd process is our runtime, fed its source through the SDK's stdin stream.
  expect(fake.execs[0]).toEqual([...RUNTIME_ARGV]);
  expect(fake.stdinWrites).toBeGreaterThanOrEqual(1);

  expect(await drive.upload(id, 0, 'héllo modal')).toEqual({ type: 'str', length: 11 });
  const cell = await drive.cell(id, 'r = llm_query(context.upper())\nprint(r)\nprint(llm_query_batched(["a", "b"]))', (request) => ({
    results: request.prompts.map((p) => `answered:${p}`),
  }));
  expect(cell.event).toBe('result');
  expect(cell.requests).toBe(2);
  expect(cell.data.stdout).toBe("answered:HÉLLO MODAL\n['answered:a', 'answered:b']\n");

  // Interrupt: `kill -INT <pid>` exec'd in the sandbox through the SDK.
  const running = drive.cell(id, 'import time\nfor _ in range(600):\n    time.sleep(0.05)');
  await new Promise((ok) => setTimeout(ok, 500));
  expect(await (await drive.post(id, 'interrupt')).json()).toEqual({ status: 'interrupted' });
  expect((await running).data.error_type).toBe('KeyboardInterrupt');
  expect(fake.execs.some((argv) => argv[0] === 'kill' && argv[1] === '-INT')).toBe(true);
  expect((await drive.cell(id, 'print(context)')).data.stdout).toBe('héllo modal\n');

  expect((await drive.remove(id)).status).toBe(200);
  expect(fake.terminated).toEqual(['sb-fake1']);
  await vi.waitFor(() => expect(fake.live()).toBe(0));
  expect(proxy.sandboxCount).toBe(0);
}, 60_000);

test('a process that dies in the Modal sandbox ends its cell with a crash event, and the sandbox is terminated', async () => {
  const { id } = await drive.create('modal');
  const cell = await drive.cell(id, 'import os\nos._exit(5)');
  expect(cell.event).toBe('error');
  expect(cell.data.code).toBe('crashed');
  expect(String(cell.data.message)).toContain('exited with code 5');
  expect(proxy.sandboxCount).toBe(0);
  await vi.waitFor(() => expect(fake.terminated).toContain('sb-fake2'));
}, 60_000);
