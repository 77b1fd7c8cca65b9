#!/usr/bin/env node
/**
 * A manual smoke test of the e2b or Modal provider against the real service, for an operator
 * with real keys (the clouds are out of reach of the automated tests, which use imitations).
 *
 *   npm run build:proxy
 *   E2B_API_KEY=... node scripts/cloud-smoke.mjs e2b
 *   MODAL_TOKEN_ID=... MODAL_TOKEN_SECRET=... node scripts/cloud-smoke.mjs modal
 *
 * It starts the proxy in this process on 127.0.0.1 and, through its HTTP API as a page would:
 * starts a sandbox (timing it), runs a cell with a sub-call answered here, checks that the
 * sandbox has no network, interrupts a running cell and checks that the state survived,
 * uploads a 100 MB context (timing it, with the sandbox's peak memory), and lets a second
 * sandbox reach a short maximum lifetime mid-cell. Each step prints ok or FAIL; the exit
 * code is the number of failures. It creates two sandboxes and deletes both. Cost: a few
 * sandbox-minutes.
 */
import { createProviders, createProxyServer } from '../dist/proxy/index.js';

const provider = process.argv[2];
if (provider !== 'e2b' && provider !== 'modal') {
  process.stderr.write('usage: node scripts/cloud-smoke.mjs e2b|modal   (credentials in the environment; run `npm run build:proxy` first)\n');
  process.exit(2);
}
const TOKEN = 'cloud-smoke-token';
const EXPIRY_MS = 45_000;
let failures = 0;

function report(step, ok, detail = '') {
  if (!ok) failures++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${step}${detail ? `: ${detail}` : ''}\n`);
}

async function startProxy(maxLifetimeMs) {
  const providers = await createProviders([provider], process.env, () => undefined);
  const proxy = createProxyServer({ tokens: [TOKEN], providers, maxLifetimeMs, startTimeoutMs: 300_000, logger: (level, msg, fields) => level !== 'debug' && process.stderr.write(`  [proxy ${level}] ${msg} ${JSON.stringify(fields ?? {})}\n`) });
  return { proxy, url: await proxy.listen(0) };
}

function api(url) {
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const call = async (method, path, body) => {
    const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) });
    return { status: response.status, json: await response.json().catch(() => undefined) };
  };
  /** Runs a cell, answering each sub-call with `answer(prompt)`; resolves with the result or error event. */
  const cell = async (id, code, answer = (p) => `echo:${p}`) => {
    const response = await fetch(`${url}/v1/sandboxes/${id}/cells`, { method: 'POST', headers, body: JSON.stringify({ code }) });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { event: 'error', data: { message: 'the event stream ended without a result' } };
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || !data) continue;
        const payload = JSON.parse(data);
        if (event !== 'request') {
          await reader.cancel();
          return { event, data: payload };
        }
        await call('POST', `/v1/sandboxes/${id}/answers`, { seq: payload.seq, reply: { results: payload.request.prompts.map(answer) } });
      }
    }
  };
  return { call, cell };
}

async function main() {
  const { proxy, url } = await startProxy(3_600_000);
  const { call, cell } = api(url);
  try {
    let started = performance.now();
    const created = await call('POST', '/v1/sandboxes', { provider });
    report('start', created.status === 201, created.status === 201 ? `Python ${created.json.python} in ${((performance.now() - started) / 1000).toFixed(1)} s` : JSON.stringify(created.json));
    if (created.status !== 201) return;
    const id = created.json.id;

    const first = await cell(id, 'x = 41\nprint(llm_query("hello") + "!", x + 1)');
    report('a cell with a sub-call', first.event === 'result' && first.data.stdout === 'echo:hello! 42\n', JSON.stringify(first.data).slice(0, 200));

    const offline = await cell(id, 'import socket\ntry:\n    socket.create_connection(("1.1.1.1", 80), timeout=5).close()\n    print("online")\nexcept OSError as e:\n    print("offline", type(e).__name__)');
    report('no network (the default)', String(offline.data.stdout).startsWith('offline'), String(offline.data.stdout).trim());

    const running = cell(id, 'import time\nfor _ in range(1200):\n    time.sleep(0.05)');
    await new Promise((ok) => setTimeout(ok, 3000)); // a real sandbox: give the cell time to start
    const interrupted = await call('POST', `/v1/sandboxes/${id}/interrupt`);
    const stopped = await running;
    const kept = await cell(id, 'print(x)');
    report('an interrupt that keeps state', interrupted.json?.status === 'interrupted' && stopped.data.error_type === 'KeyboardInterrupt' && kept.data.stdout === '41\n', `${interrupted.json?.status}, ${stopped.data.error_type}, x=${String(kept.data.stdout).trim()}`);

    const body = new Uint8Array(100 * 1000 * 1000).fill(97);
    started = performance.now();
    const uploaded = await call('PUT', `/v1/sandboxes/${id}/contexts/0?kind=text`, body);
    const seconds = (performance.now() - started) / 1000;
    const peak = await cell(id, 'import resource\nprint(len(context), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)');
    const [length, peakMiB] = String(peak.data.stdout).trim().split(' ');
    report('a 100 MB context', uploaded.status === 200 && length === '100000000', `${seconds.toFixed(1)} s, sandbox Python peak ${peakMiB} MiB`);

    report('delete', (await call('DELETE', `/v1/sandboxes/${id}`)).status === 200);
  } finally {
    await proxy.close();
  }

  // Expiry: a sandbox whose lifetime ends mid-cell ends the cell with an error, not a hang.
  const short = await startProxy(EXPIRY_MS);
  const shortApi = api(short.url);
  try {
    const created = await shortApi.call('POST', '/v1/sandboxes', { provider });
    if (created.status !== 201) return report('expiry', false, JSON.stringify(created.json));
    const started = performance.now();
    const ended = await shortApi.cell(created.json.id, 'import time\ntime.sleep(600)');
    const after = (performance.now() - started) / 1000;
    report('expiry mid-cell', ended.event === 'error' && after < EXPIRY_MS / 1000 + 60, `${ended.data.code} after ${after.toFixed(0)} s: ${String(ended.data.message).slice(0, 160)}`);
  } finally {
    await short.proxy.close();
  }
}

main().then(
  () => {
    process.stdout.write(failures === 0 ? 'all steps passed\n' : `${failures} step(s) failed\n`);
    process.exit(failures);
  },
  (error) => {
    process.stderr.write(`cloud-smoke: ${error.stack ?? error}\n`);
    process.exit(100);
  },
);
