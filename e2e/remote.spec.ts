/**
 * environment: 'remote' end to end: Chromium page → rlm-web-proxy (started by the test,
 * local provider) → python3 running rlm_stdio.py, with every sub-call travelling back to
 * the page and answered by the openai SDK against the scripted LM server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, haystack, ISOLATED_ORIGIN, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type LMServer, type Script } from './support/lm-server';
import { countSubcalls, NEEDLE, needleScript, runCompletion, type CountedOutcome } from './support/run';
import { PROXY_TOKEN, startCLIProxy, startProxy } from './support/proxy';
import { hostPid, processesIn } from '../test/proxy/host-processes';

/** Runs one completion on the page with environment 'remote'; never throws (returns the error's name). */
async function runRemote(page: Page, lm: LMServer, environmentOptions: Record<string, unknown>, context: string, extra: Record<string, unknown> = {}): Promise<CountedOutcome> {
  return countSubcalls(await runCompletion(page, lm, { context, environment: 'remote', environmentOptions, options: extra }));
}

/** Root script from a list of turns (code per turn); FINAL(done) after the last. */
function turns(cells: string[], sub: Script = (r) => `echo:${lastUser(r)}`): Script {
  return (request) => {
    if (!isRootCall(request)) return sub(request);
    const turn = turnOf(request);
    return turn < cells.length ? repl(cells[turn]!) : 'FINAL(done)';
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('needle in a haystack through a local-provider sandbox, sub-calls answered by the page', async ({ harness, lm }) => {
  const proxy = await startProxy();
  try {
    const text = haystack(40_000, NEEDLE, 0.73);
    lm.setScript(needleScript(500_000));
    const run = await runRemote(harness, lm, { proxyURL: proxy.url, token: PROXY_TOKEN, provider: 'local' }, text);
    expect(run.errorMessage).toBeUndefined();
    expect(run.response).toBe('4817305');
    expect(run.bridge).toBe('remote');
    expect(run.blocks[0]!.stdout).toBe(`str ${text.length}\n`);
    const chunks = Math.ceil(text.length / 500_000);
    expect(run.blocks[1]!.stdout).toBe(`${chunks} ['4817305']\n`);
    expect(run.blocks[1]!.subcalls).toBe(chunks);
    expect(run.calls).toBe(2 + chunks);
    expect(lm.requests.filter((r) => r.model === 'scripted-sub')).toHaveLength(chunks);
    // close() deleted the sandbox; the proxy logged no token and no context text.
    expect(proxy.proxy.sandboxCount).toBe(0);
    const logged = JSON.stringify(proxy.logs);
    expect(logged).toContain('sandbox started');
    expect(logged).not.toContain(PROXY_TOKEN);
    expect(logged).not.toContain('magic number');
  } finally {
    await proxy.close();
  }
});

test('the CLI: a wrong token is a 401 and a ProxyAuthenticationError on the page', async ({ harness, lm }) => {
  const cli = await startCLIProxy(['--port', '0', '--token', PROXY_TOKEN, '--allowed-origins', PLAIN_ORIGIN], { RLM_PROXY_PROVIDERS: 'local' });
  try {
    const health = await (await fetch(`${cli.url}/health`)).json();
    expect(health).toMatchObject({ ok: true, providers: ['local'] });
    const unauthorized = await fetch(`${cli.url}/v1/sandboxes`, { method: 'POST', headers: { authorization: 'Bearer not-the-token' }, body: '{}' });
    expect(unauthorized.status).toBe(401);
    expect(await fetch(`${cli.url}/v1/sandboxes`, { method: 'POST', body: '{}' }).then((r) => r.status)).toBe(401);

    lm.setScript(turns(['print(1)']));
    const run = await runRemote(harness, lm, { proxyURL: cli.url, token: 'wrong-token-123456' }, 'some context');
    expect(run.ok).toBe(false);
    expect(run.errorName).toBe('ProxyAuthenticationError');
    expect(run.errorMessage).toContain('401');
    expect(run.errorMessage).toContain('environmentOptions.token');
    expect(cli.output.join('\n')).not.toContain('wrong-token-123456');
    expect(cli.output.join('\n')).not.toContain(PROXY_TOKEN);
  } finally {
    await cli.close();
  }
});

test('an unreachable proxy is a ProxyConnectionError, and missing options a ConfigurationError', async ({ harness }) => {
  const out = await harness.evaluate(async () => {
    const { RemoteRepl } = (window as any).rlmWeb;
    const host = { handle: async () => ({ error: 'unused' }) };
    const unreachable = await new RemoteRepl(host, { proxyURL: 'http://127.0.0.1:9', token: 'whatever-token' }).start().then(
      () => 'started',
      (e: Error) => `${e.name}: ${e.message}`,
    );
    let missing = 'constructed';
    try {
      new RemoteRepl(host, { token: 'whatever-token' });
    } catch (e) {
      missing = `${(e as Error).name}: ${(e as Error).message}`;
    }
    return { unreachable, missing };
  });
  expect(out.unreachable).toMatch(/^ProxyConnectionError: Cannot reach rlm-web-proxy at http:\/\/127\.0\.0\.1:9/);
  expect(out.missing).toMatch(/^ConfigurationError: .*environmentOptions\.proxyURL/);
});

test('the CLI: a disallowed origin is refused (preflight 403, ProxyOriginError on the page)', async ({ isolated, lm }) => {
  const cli = await startCLIProxy(['--port', '0'], { RLM_PROXY_TOKEN: PROXY_TOKEN, RLM_PROXY_ALLOWED_ORIGINS: PLAIN_ORIGIN, RLM_PROXY_PROVIDERS: 'local' });
  try {
    const preflight = (origin: string) =>
      fetch(`${cli.url}/v1/sandboxes`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    const allowed = await preflight(PLAIN_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(PLAIN_ORIGIN);
    const refused = await preflight(ISOLATED_ORIGIN);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    // Even with the right token, a request from a disallowed origin does nothing.
    const direct = await fetch(`${cli.url}/v1/sandboxes`, { method: 'POST', headers: { origin: ISOLATED_ORIGIN, authorization: `Bearer ${PROXY_TOKEN}` }, body: '{}' });
    expect(direct.status).toBe(403);

    lm.setScript(turns(['print(1)']));
    const run = await runRemote(isolated, lm, { proxyURL: cli.url, token: PROXY_TOKEN }, 'some context');
    expect(run.ok).toBe(false);
    expect(run.errorName).toBe('ProxyOriginError');
    expect(run.errorMessage).toContain(ISOLATED_ORIGIN);
    expect(run.errorMessage).toContain('--allowed-origins');
  } finally {
    await cli.close();
  }
});

test('the CLI: sandboxes per token are capped (ProxyQuotaError), and freed by close()', async ({ harness }) => {
  const cli = await startCLIProxy(['--port', '0', '--token', PROXY_TOKEN, '--allowed-origins', PLAIN_ORIGIN, '--max-sandboxes', '1', '--providers', 'local']);
  try {
    const outcome = await harness.evaluate(async ({ proxyURL, token }) => {
      const { RemoteRepl } = (window as any).rlmWeb;
      const host = { handle: async () => ({ error: 'unused' }) };
      const first = new RemoteRepl(host, { proxyURL, token });
      const second = new RemoteRepl(host, { proxyURL, token });
      await first.start();
      const refused = await second.start().then(
        () => 'started',
        (e: Error) => `${e.name}: ${e.message}`,
      );
      await first.close();
      const after = await second.start().then(
        (info: { bridge: string }) => info.bridge,
        (e: Error) => e.name,
      );
      await second.close();
      return { refused, after };
    }, { proxyURL: cli.url, token: PROXY_TOKEN });
    expect(outcome.refused).toMatch(/^ProxyQuotaError: .*limit is 1/);
    expect(outcome.after).toBe('remote');
  } finally {
    await cli.close();
  }
});

test('the CLI: tokens from a file; a token on the command line is warned about; short tokens and sandbox-less providers stay on loopback', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlm-proxy-tokens-'));
  try {
    const file = join(dir, 'tokens');
    writeFileSync(file, `# tenants\n${PROXY_TOKEN}\n\nsecond-token-abcdefghijklmnopqrstuvwxyz\n`, { mode: 0o600 });
    const fromFile = await startCLIProxy(['--port', '0', '--token-file', file, '--providers', 'local']);
    try {
      for (const token of [PROXY_TOKEN, 'second-token-abcdefghijklmnopqrstuvwxyz']) {
        expect((await fetch(`${fromFile.url}/v1/sandboxes`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      }
      expect((await fetch(`${fromFile.url}/v1/sandboxes`, { headers: { authorization: 'Bearer # tenants' } })).status).toBe(401);
      expect(fromFile.output.join('\n')).not.toContain('visible to every user');
    } finally {
      await fromFile.close();
    }
    const onArgv = await startCLIProxy(['--port', '0', '--token', PROXY_TOKEN, '--providers', 'local']);
    await onArgv.close();
    expect(onArgv.output.join('\n')).toContain('a token given with --token is visible to every user of this machine');
    // PROXY_TOKEN has 26 characters: fine on loopback, refused on every interface.
    await expect(startCLIProxy(['--port', '0', '--host', '0.0.0.0', '--token-file', file, '--providers', 'local'])).rejects.toThrow(/token shorter than 32 characters/);
    // No bubblewrap: the local provider refuses to start, unless told it may run unsandboxed, and then only on loopback.
    await expect(startCLIProxy(['--port', '0', '--token-file', file, '--providers', 'local'], { RLM_PROXY_BWRAP: '/nonexistent/bwrap' })).rejects.toThrow(/apt-get install bubblewrap/);
    const longFile = join(dir, 'long');
    writeFileSync(longFile, 'a-token-long-enough-for-any-interface-0123456789\n', { mode: 0o600 });
    await expect(startCLIProxy(['--port', '0', '--host', '0.0.0.0', '--token-file', longFile, '--providers', 'local', '--unsafe-no-sandbox'], { RLM_PROXY_BWRAP: '/nonexistent/bwrap' })).rejects.toThrow(/without a sandbox/);
    const unsafe = await startCLIProxy(['--port', '0', '--token-file', longFile, '--providers', 'local', '--unsafe-no-sandbox'], { RLM_PROXY_BWRAP: '/nonexistent/bwrap' });
    await unsafe.close();
    expect(unsafe.output.join('\n')).toContain('UNSAFE: the local provider runs model-written code WITHOUT a sandbox');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sandbox process killed mid-cell: a typed SandboxCrashedError cell, a fresh sandbox, and the run goes on', async ({ harness, lm }) => {
  const proxy = await startProxy();
  try {
    const killed: number[] = [];
    lm.setScript(
      turns(['x = 1\nprint("ready")', 'import os, time\nllm_query("pid " + os.readlink("/proc/self/ns/pid") + " " + str(os.getpid()))\ntime.sleep(60)\nprint("not reached")', 'print(len(context), "x" in globals())'], (request) => {
        const m = /^pid (pid:\[\d+\]) (\d+)$/.exec(lastUser(request));
        if (m) {
          // Kill the sandbox's Python process from outside while its cell runs (its pid on the host: it runs in a PID namespace).
          const pid = hostPid(m[1]!, Number(m[2]))!;
          setTimeout(() => {
            process.kill(pid, 'SIGKILL');
            killed.push(pid);
          }, 200);
        }
        return 'ok';
      }),
    );
    const run = await runRemote(harness, lm, { proxyURL: proxy.url, token: PROXY_TOKEN }, 'abcdefghij');
    expect(run.errorMessage).toBeUndefined();
    expect(killed).toHaveLength(1);
    expect(alive(killed[0]!)).toBe(false);
    const crashed = run.blocks[1]!;
    expect(crashed.errorType).toBe('SandboxCrashedError');
    expect(crashed.interrupted).toBe(true);
    expect(crashed.stderr).toContain('SandboxCrashedError: The sandbox is gone: the sandbox process ended unexpectedly (killed by SIGKILL)');
    expect(crashed.stderr).toContain('context reloaded');
    // The next cell ran in a new sandbox: the context is back, x is gone.
    expect(run.blocks[2]!.stdout).toBe('10 False\n');
    expect(run.response).toBe('done');
    expect(proxy.logs.some((l) => l.msg === 'sandbox ended' && l.reason === 'crashed')).toBe(true);
  } finally {
    await proxy.close();
  }
});

test('a lost connection to the proxy mid-cell ends the run with ProxyConnectionError, not a hang', async ({ harness, lm }) => {
  const proxy = await startProxy();
  try {
    lm.setScript(
      turns(['import time\nllm_query("cut")\ntime.sleep(2)\nprint("finished")'], (request) => {
        if (lastUser(request) === 'cut') setTimeout(() => proxy.proxy.server.closeAllConnections(), 100);
        return 'ok';
      }),
    );
    const run = await runRemote(harness, lm, { proxyURL: proxy.url, token: PROXY_TOKEN }, 'abc');
    expect(run.ok).toBe(false);
    expect(run.errorName).toBe('ProxyConnectionError');
    expect(run.errorMessage).toContain('lost while a cell ran');
    expect(proxy.logs.some((l) => l.msg === 'page disconnected during a cell')).toBe(true);
  } finally {
    await proxy.close();
  }
});

test('cell timeouts interrupt the remote process (state kept), and replace it when the interrupt is ignored', async ({ harness, lm }) => {
  const proxy = await startProxy();
  try {
    lm.setScript(
      turns([
        'x = 7',
        'while True:\n    pass',
        'print("x is", x)',
        'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass',
        'print(len(context), "x" in globals())',
      ]),
    );
    const run = await runRemote(harness, lm, { proxyURL: proxy.url, token: PROXY_TOKEN, interruptGraceMs: 1000 }, 'abcdef', { cellTimeoutMs: 1500 });
    expect(run.errorMessage).toBeUndefined();
    const [, spin, after, stubborn, last] = run.blocks;
    expect(spin!.errorType).toBe('KeyboardInterrupt');
    expect(spin!.interrupted).toBe(true);
    expect(spin!.stderr).toContain('cellTimeoutMs (1500 ms)');
    expect(after!.stdout).toBe('x is 7\n');
    expect(stubborn!.errorType).toBe('TimeoutError');
    expect(stubborn!.stderr).toContain('its sandbox was replaced');
    expect(last!.stdout).toBe('6 False\n');
    expect(run.response).toBe('done');
  } finally {
    await proxy.close();
  }
});

test('idle sandboxes are reaped; the REPL then reports SandboxExpiredError once and carries on', async ({ harness }) => {
  const proxy = await startProxy({ idleTimeoutMs: 1000 });
  try {
    await harness.evaluate(async ({ proxyURL, token }) => {
      const { RemoteRepl } = (window as any).rlmWeb;
      const host = { handle: async (r: { prompts: string[] }) => ({ results: r.prompts.map((p) => `ok:${p}`) }) };
      const repl = new RemoteRepl(host, { proxyURL, token });
      (window as any).idleRepl = repl;
      await repl.start();
      await repl.loadContext(0, 'hello');
    }, { proxyURL: proxy.url, token: PROXY_TOKEN });
    const ns = (await harness.evaluate(async () => (await (window as any).idleRepl.execute('import os\nprint(os.readlink("/proc/self/ns/pid"))', { timeoutMs: 10_000 })).stdout)).trim();
    expect(processesIn(ns).length).toBeGreaterThan(0);
    await expect.poll(() => proxy.proxy.sandboxCount, { timeout: 20_000 }).toBe(0);
    await expect.poll(() => processesIn(ns), { timeout: 10_000 }).toEqual([]);
    expect(proxy.logs.some((l) => l.msg === 'reaping sandbox' && l.reason === 'idle')).toBe(true);
    const next = await harness.evaluate(async () => {
      const repl = (window as any).idleRepl;
      const expired = await repl.execute('print(1)', { timeoutMs: 10_000 });
      const again = await repl.execute('print(context, llm_query("x"))', { timeoutMs: 10_000 });
      await repl.close();
      return { expired, again };
    });
    expect(next.expired.errorType).toBe('SandboxExpiredError');
    expect(next.expired.restarted).toBe(true);
    expect(next.again.stdout).toBe('hello ok:x\n');
    await expect.poll(() => proxy.proxy.sandboxCount).toBe(0);
  } finally {
    await proxy.close();
  }
});

test('contexts of every kind reach the sandbox: text, JSON, bytes and a 100 MB Blob streamed from the page', async ({ harness }) => {
  const proxy = await startProxy();
  try {
    const out = await harness.evaluate(async ({ proxyURL, token }) => {
      const { RemoteRepl } = (window as any).rlmWeb;
      const repl = new RemoteRepl({ handle: async () => ({ error: 'unused' }) }, { proxyURL, token });
      const described = [
        await repl.loadContext(0, 'plain text é'),
        await repl.loadContext(1, [{ id: 1, tags: ['a', 'b'] }, { id: 2, tags: [] }]),
        await repl.loadContext(2, new TextEncoder().encode('from bytes').buffer),
      ];
      const line = 'x'.repeat(1023) + '\n';
      const blob = new Blob(Array.from({ length: 100 * 1024 }, () => line));
      const started = performance.now();
      described.push(await repl.loadContext(3, blob));
      const blobMs = performance.now() - started;
      const cell = await repl.execute('print(context, context_1[0]["tags"], context_2, len(context_3), context_3.count("\\n"))', { timeoutMs: 30_000 });
      await repl.close();
      return { described, stdout: cell.stdout, blobMs, blobBytes: blob.size };
    }, { proxyURL: proxy.url, token: PROXY_TOKEN });
    expect(out.described).toEqual([
      { type: 'str', length: 12 },
      { type: 'list', length: 2 },
      { type: 'str', length: 10 },
      { type: 'str', length: out.blobBytes },
    ]);
    expect(out.stdout).toBe(`plain text é ['a', 'b'] from bytes ${out.blobBytes} ${100 * 1024}\n`);
    console.log(`[measure] ${(out.blobBytes / 1e6).toFixed(0)} MB Blob context, page → proxy → local sandbox: ${out.blobMs.toFixed(0)} ms`);
  } finally {
    await proxy.close();
  }
});

test('measure: sub-call round trip, sandbox → proxy → page → proxy → sandbox (median, printed)', async ({ harness }) => {
  const proxy = await startProxy();
  try {
    const calls = 300;
    const code = `
import time
samples = []
for i in range(${calls}):
    t = time.perf_counter()
    r = llm_query("p")
    samples.append(time.perf_counter() - t)
samples.sort()
print(r, samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.9)] * 1e6)
`;
    const measured = await harness.evaluate(async ({ proxyURL, token, code }) => {
      const { RLM } = (window as any).rlmWeb;
      // An instant LM client: what is timed is the bridge plus the loop's metering, no HTTP to an LM.
      const instant = {
        provider: 'instant',
        model: 'instant',
        complete: async () => ({ text: 'pong', model: 'instant', usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 } }),
      };
      const out: Record<string, string> = {};
      for (const environment of ['remote', 'pyodide']) {
        let turn = 0;
        const root = {
          provider: 'instant',
          model: 'root',
          complete: async () => ({ text: turn++ === 0 ? '```repl\n' + code + '\n```' : 'FINAL(done)', model: 'root', usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 } }),
        };
        const rlm = new RLM({ backend: root, otherBackends: [{ backend: instant }], environment, environmentOptions: environment === 'remote' ? { proxyURL, token } : {} });
        const result = await rlm.completion('x', { rootPrompt: 'measure' });
        out[environment] = result.trajectory.iterations[0].codeBlocks[0].stdout;
        await rlm.close();
      }
      return out;
    }, { proxyURL: proxy.url, token: PROXY_TOKEN, code });
    for (const [environment, stdout] of Object.entries(measured)) {
      const [reply, median, p90] = stdout.trim().split(' ');
      expect(reply).toBe('pong');
      console.log(`[measure] llm_query round trip, ${environment}: median ${Number(median).toFixed(0)} µs, p90 ${Number(p90).toFixed(0)} µs over ${calls} calls`);
    }
  } finally {
    await proxy.close();
  }
});
