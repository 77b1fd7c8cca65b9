/// <reference types="node" />
/**
 * The Modal provider through the real `modal` SDK (ModalClient, apps.fromName, image build,
 * sandboxes.create, Sandbox.exec with stdin/stdout streams, the filesystem API, terminate,
 * detach) against a loopback imitation as strict as the service (see fake-modal.ts), behind
 * the real proxy server. Each strictness of the imitation has a test here that the providers
 * before issue 17 failed.
 */
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as modal from 'modal';
import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest';
import { createModalProvider, type ModalProviderOptions } from '../../src/proxy/providers/modal.js';
import { RUNTIME_ARGV } from '../../src/proxy/runtime-files.js';
import { createProxyServer, type ProxyOptions, type ProxyServer } from '../../src/proxy/server.js';
import { chunkedPut, driver, type Driver } from './drive.js';
import { uploadLargeContext } from './large-context.js';
import { startFakeModal, type FakeModal, type FakeModalOptions } from './fake-modal.js';

const TOKEN = 'vitest-proxy-token';
const MiB = 1024 * 1024;
let fake: FakeModal;
let proxy: ProxyServer;
let drive: Driver;
let url: string;
/** Extra fakes and proxies made by single tests. */
const extra: { close(): Promise<void> }[] = [];

function provider(fakeModal: FakeModal, options: Partial<ModalProviderOptions> = {}) {
  return createModalProvider({ tokenId: 'ak-fake', tokenSecret: 'as-fake', appName: 'rlm-web-test', image: 'python:3.11-slim', client: fakeModal.clientParams, ...options });
}

/** A fake and a proxy of their own, closed after the test. */
async function setUp(fakeOptions: FakeModalOptions, proxyOptions: Partial<ProxyOptions> = {}, providerOptions: Partial<ModalProviderOptions> = {}) {
  const own = await startFakeModal(fakeOptions);
  const server = createProxyServer({ tokens: [TOKEN], providers: { modal: provider(own, providerOptions) }, logger: () => undefined, ...proxyOptions });
  extra.push(server, own);
  const at = await server.listen(0);
  return { fake: own, proxy: server, url: at, drive: driver(at, TOKEN) };
}

beforeAll(async () => {
  process.env.MODAL_CONFIG_PATH = '/nonexistent/.modal.toml'; // never read a developer's real profile
  fake = await startFakeModal();
  // Not a whole number of seconds: the SDK refuses such a timeout unless it is rounded.
  proxy = createProxyServer({ tokens: [TOKEN], providers: { modal: provider(fake) }, logger: () => undefined, maxLifetimeMs: 900_500, maxBodyBytes: 64 * MiB });
  url = await proxy.listen(0);
  drive = driver(url, TOKEN);
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const item of extra.splice(0)) await item.close();
});

afterAll(async () => {
  await proxy?.close();
  await fake?.close();
});

test('starts our runtime in a Modal sandbox without network, passes lines both ways, interrupts without `kill` and terminates it', async () => {
  const detach = vi.spyOn(modal.Sandbox.prototype, 'detach');
  const { id, python } = await drive.create('modal');
  expect(python).toMatch(/^3\./);
  const methods = fake.calls.map((c) => c.method);
  expect(methods).toEqual(expect.arrayContaining(['AppGetOrCreate', 'ImageGetOrCreate', 'SandboxCreateV2']));
  expect(fake.calls.find((c) => c.method === 'AppGetOrCreate')!.request.appName).toBe('rlm-web-test');
  const image = fake.calls.find((c) => c.method === 'ImageGetOrCreate')!.request.image as { dockerfileCommands: string[] };
  expect(image.dockerfileCommands).toEqual(['FROM python:3.11-slim']);
  const created = fake.calls.find((c) => c.method === 'SandboxCreateV2')!.request.definition as { timeoutSecs: number; networkAccess: { networkAccessType: number } };
  expect(created.timeoutSecs).toBe(901); // 900.5 s rounded up to whole seconds
  expect(created.networkAccess.networkAccessType).toBe(2); // BLOCKED
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

  // The image has no `kill` binary: the interrupt is sent from Python, and the state survives.
  const marker = join(tmpdir(), `modal-cell-${process.pid}-${Date.now()}`);
  const running = drive.cell(id, `open(${JSON.stringify(marker)}, "w").close()\nimport time\nfor _ in range(600):\n    time.sleep(0.05)`);
  await vi.waitFor(() => expect(existsSync(marker)).toBe(true), { timeout: 10_000 }); // the cell's code is running
  rmSync(marker);
  expect(await (await drive.post(id, 'interrupt')).json()).toEqual({ status: 'interrupted' });
  expect((await running).data.error_type).toBe('KeyboardInterrupt');
  expect(fake.execs.some((argv) => argv[0] === 'python3' && argv[1] === '-c' && argv[2]!.includes('SIGINT'))).toBe(true);
  expect((await drive.cell(id, 'print(context)')).data.stdout).toBe('héllo modal\n');

  expect((await drive.remove(id)).status).toBe(200);
  expect(fake.terminated).toEqual(['sb-fake1']);
  // terminate() then detach(): the SDK's router channel and its retry loops are let go.
  expect(detach).toHaveBeenCalled();
  await vi.waitFor(() => expect(fake.live()).toBe(0));
  expect(proxy.sandboxCount).toBe(0);
}, 60_000);

test('sub-call answers in quick succession arrive whole and in order, though each write is acknowledged late', async () => {
  const { id } = await drive.create('modal');
  const cell = await drive.cell(id, 'print([llm_query(str(i)) for i in range(8)])', (request) => ({ results: request.prompts.map((p) => `a${p}`) }));
  expect(cell.event).toBe('result');
  expect(cell.data.stdout).toBe(`[${Array.from({ length: 8 }, (_, i) => `'a${i}'`).join(', ')}]\n`);
  await drive.remove(id);
}, 60_000);

test('a 20 MiB cell goes as writes under the 16 MiB cap', async () => {
  const { id } = await drive.create('modal');
  const code = `x = "${'é'.repeat(10 * MiB)}"\nprint(len(x), x[-1])`;
  const cell = await drive.cell(id, code);
  expect(cell.event).toBe('result');
  expect(cell.data.stdout).toBe(`${10 * MiB} é\n`);
  expect(fake.largestStdinWrite).toBeLessThanOrEqual(8 * MiB);
  await drive.remove(id);
}, 60_000);

test('a 100 MB context goes through the filesystem API and is loaded by path, its files removed', async () => {
  const { id } = await drive.create('modal');
  const before = fake.stdinWrites;
  const execsBefore = fake.execs.length;
  await uploadLargeContext(url, TOKEN, drive, id, 'Modal imitation');
  // Not one base64 line on the runtime's stdin: only the load command and the checking cell went there.
  expect(fake.stdinWrites - before).toBe(2);
  const fsWrites = fake.execs.slice(execsBefore).filter((argv) => argv[0] === '/__modal/.bin/modal-sandbox-fs-tools');
  expect(fsWrites.length).toBe(Math.ceil(100_000_000 / (8 * MiB)));
  for (const argv of fsWrites) expect(existsSync(JSON.parse(argv[1]!).WriteFile.path)).toBe(false);
  await drive.remove(id);
}, 120_000);

test('an upload over the limit is refused and leaves no files behind', async () => {
  const own = await setUp({}, { maxContextBytes: 10 * MiB });
  const { id } = await own.drive.create('modal');
  // Chunked (no content-length): only the streaming count can stop it, after parts were written.
  const chunks = Array.from({ length: 12 }, () => new Uint8Array(MiB).fill(98));
  expect((await chunkedPut(`${own.url}/v1/sandboxes/${id}/contexts/0`, TOKEN, chunks)).status).toBe(413);
  const parts = own.fake.execs.filter((argv) => argv[0] === '/__modal/.bin/modal-sandbox-fs-tools').map((argv) => JSON.parse(argv[1]!).WriteFile.path as string);
  expect(parts.length).toBeGreaterThan(0);
  const listing = await own.drive.cell(id, 'import os\nprint(sorted(os.listdir("/tmp/rlm-web-contexts")))');
  for (const path of parts) expect(String(listing.data.stdout)).not.toContain(path.split('/').pop()!);
  expect(await own.drive.upload(id, 0, 'small')).toEqual({ type: 'str', length: 5 });
}, 60_000);

test('a start that waits too long for scheduling fails naming that phase, and the sandbox is terminated', async () => {
  const own = await setUp({ schedulingMs: 60_000 }, { startTimeoutMs: 1500 });
  const response = await fetch(`${own.url}/v1/sandboxes`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ provider: 'modal' }) });
  expect(response.status).toBe(502);
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe('start_failed');
  expect(error.message).toContain("phase 'scheduling'");
  await vi.waitFor(() => expect(own.fake.terminated).toEqual(['sb-fake1']));
  expect(own.proxy.sandboxCount).toBe(0);
}, 30_000);

test('a start stuck building the image fails naming that phase, and no sandbox is created after it', async () => {
  const own = await setUp({ imageBuildMs: 2500 }, { startTimeoutMs: 800 });
  const response = await fetch(`${own.url}/v1/sandboxes`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ provider: 'modal' }) });
  expect(response.status).toBe(502);
  expect(((await response.json()) as { error: { message: string } }).error.message).toContain("phase 'image'");
  // The build finishes on the service's side; the given-up start stops there.
  await vi.waitFor(() => expect(own.fake.calls.some((c) => c.method === 'ImageJoinStreaming')).toBe(true));
  await new Promise((ok) => setTimeout(ok, 3000));
  expect(own.fake.calls.some((c) => c.method === 'SandboxCreateV2')).toBe(false);
}, 30_000);

test('a sandbox that expires mid-cell ends the cell as a crash instead of hanging', async () => {
  const own = await setUp({ expireAfterMs: 3000 }, {}, { exitGraceMs: 500 });
  const { id } = await own.drive.create('modal');
  const cell = await own.drive.cell(id, 'import time\ntime.sleep(120)');
  expect(own.fake.expired).toEqual(['sb-fake1']);
  expect(cell.event).toBe('error');
  expect(cell.data.code).toBe('crashed');
  expect(String(cell.data.message)).toContain('lost');
  expect(own.proxy.sandboxCount).toBe(0);
}, 60_000);

test('output streams cut mid-cell are reopened where they stopped: nothing lost or repeated', async () => {
  const { id } = await drive.create('modal');
  const cell = drive.cell(id, 'import time\nfor i in range(30):\n    print(i)\n    time.sleep(0.05)');
  await new Promise((ok) => setTimeout(ok, 400));
  fake.cutStreams();
  const done = await cell;
  expect(done.event).toBe('result');
  expect(done.data.stdout).toBe(`${Array.from({ length: 30 }, (_, i) => i).join('\n')}\n`);
  await drive.remove(id);
}, 60_000);

test('a process that dies in the Modal sandbox ends its cell with a crash event, and the sandbox is terminated', async () => {
  const { id } = await drive.create('modal');
  const cell = await drive.cell(id, 'import os\nos._exit(5)');
  expect(cell.event).toBe('error');
  expect(cell.data.code).toBe('crashed');
  expect(String(cell.data.message)).toContain('exited with code 5');
  expect(proxy.sandboxCount).toBe(0);
  const ids = fake.calls.filter((c) => c.method === 'SandboxCreateV2').length;
  await vi.waitFor(() => expect(fake.terminated).toContain(`sb-fake${ids}`));
}, 60_000);
