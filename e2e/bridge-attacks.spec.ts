/**
 * The bridge played as an attacker: model-written cells (e2e/fixtures/attacks/*.py) capture
 * every port the worker posts on and send Comlink calls, forged Comlink replies and malformed
 * bridge messages on them, and call the runtime's transport with requests its helpers would
 * never send. On both bridges (JSPI on a plain page, SharedArrayBuffer on a cross-origin
 * isolated one) and both isolations, the page must stay as it was — no property on
 * Object.prototype, no new global, no code run, no request to anyone but the LM server —,
 * each refused message must be counted (`bridge_refused`), and the run must give the same
 * answers as without the attack, and a clean run after it too.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from '@playwright/test';
import { expect, ISOLATED_ORIGIN, openHarness, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, lastUser, repl, type ScriptedRequest } from './support/lm-server';

const cell = (name: string) => readFileSync(new URL(`./fixtures/attacks/${name}.py`, import.meta.url), 'utf8');

/** A loopback server standing in for the attacker's: counts every connection. */
async function attackerServer(): Promise<{ port: number; connections: () => number; server: Server }> {
  let connections = 0;
  const server = createServer((_req, res) => res.writeHead(200, { 'access-control-allow-origin': '*' }).end('ok'));
  server.on('connection', () => connections++);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { port: (server.address() as AddressInfo).port, connections: () => connections, server };
}

/** What the page holds that an attack would change: Object.prototype, globals, a marker. */
function pageState(page: Page) {
  return page.evaluate(() => ({
    prototype: Object.getOwnPropertyNames(Object.prototype).sort(),
    inherited: ['pwned', 'polluted', 'defaultBaseURL', 'apiKey'].filter((name) => name in {}),
    // Without the frames' indexes (window[0] is the isolation frame, which the RLM adds).
    globals: Object.getOwnPropertyNames(window)
      .filter((name) => !/^\d+$/.test(name))
      .sort(),
    marker: (globalThis as { pwnedByPython?: unknown }).pwnedByPython ?? null,
  }));
}

/** The turns of the scripted root model: one cell per turn, then the answer the cell marked. */
function script(cells: string[]) {
  return (request: ScriptedRequest) => {
    if (!isRootCall(request)) return `sub:${lastUser(request).slice(0, 40)}`;
    const turn = request.messages.filter((m) => m.role === 'assistant').length;
    return repl(cells[Math.min(turn, cells.length - 1)]!);
  };
}

const SETUPS = [
  { name: 'JSPI, isolated frame', origin: PLAIN_ORIGIN, isolation: 'sandbox', bridge: 'jspi' },
  { name: 'SharedArrayBuffer, isolated frame (the frame relays)', origin: ISOLATED_ORIGIN, isolation: 'sandbox', bridge: 'sab' },
  { name: "JSPI, isolation: 'none' (Comlink on the worker's scope)", origin: PLAIN_ORIGIN, isolation: 'none', bridge: 'jspi' },
  { name: "SharedArrayBuffer, isolation: 'none' (the page reads the shared port)", origin: ISOLATED_ORIGIN, isolation: 'none', bridge: 'sab' },
] as const;

for (const setup of SETUPS) {
  test(`Comlink calls, forged replies and malformed messages from Python reach nothing of the page (${setup.name})`, async ({ page, lm }) => {
    const attacker = await attackerServer();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    try {
      await openHarness(page, setup.origin);
      const before = await pageState(page);
      const attack = [cell('capture_ports'), cell('send_attacks').replaceAll('http://127.0.0.1:9/', `http://127.0.0.1:${attacker.port}/`), cell('after_attacks')];
      lm.setScript(script(attack));
      const result = await page.evaluate(
        async ({ baseURL, isolation }) => {
          const { RLM } = (window as any).rlmWeb;
          const refusals: string[] = [];
          const rlm = new RLM({
            backend: 'openai',
            backendOptions: { model: 'scripted-root', apiKey: 'sk-attack-test', baseURL },
            isolation,
            maxIterations: 6,
            onEvent: (event: any) => event.type === 'bridge_refused' && refusals.push(event.reason),
          });
          try {
            const hostile = await rlm.completion('the first context', { rootPrompt: 'go' });
            const outputs = hostile.trajectory.iterations.map((it: any) => it.codeBlocks.map((b: any) => b.stdout + b.stderr).join('\n'));
            return { response: hostile.response, outputs, refusals, bridge: rlm.replInfo?.bridge, isolationSeen: rlm.replInfo?.isolation };
          } finally {
            await rlm.close();
          }
        },
        { baseURL: lm.openaiURL, isolation: setup.isolation },
      );
      expect(result.bridge).toBe(setup.bridge);
      expect(result.isolationSeen).toBe(setup.isolation);
      // The attack ran as written: ports captured, messages sent, forged replies posted.
      expect(result.outputs[0]).toContain('sub-call: sub:ping');
      expect(result.outputs[1]).toMatch(/ports: [2-9] sent: \d{2,}/);
      expect(result.outputs[2]).toContain('still here: sub:after');
      expect(result.outputs[2]).toContain('heard on forged ports: 0');
      // The same answer as without the attack.
      expect(result.response).toBe('clean answer');
      // Refused and dropped, each counted: junk on the bridge, forged replies on the call port.
      expect(result.refusals.length).toBeGreaterThan(5);
      expect(result.refusals.join('\n')).toMatch(/unknown request op|not a reply to a call|no tenant|not an object/);
      // Nothing of the page changed, nothing ran there, nothing left for anyone but the LM server.
      await page.waitForTimeout(300);
      expect(await pageState(page)).toEqual(before);
      expect(attacker.connections()).toBe(0);
      // The sub-calls are the cells' own two; the root model saw the attack only as its code.
      expect(lm.requests.filter((r) => !isRootCall(r)).map((r) => lastUser(r))).toEqual(['ping', 'after']);
      expect(errors.filter((e) => !/Failed to load resource|favicon/.test(e))).toEqual([]);
    } finally {
      attacker.server.close();
    }
  });
}

test('requests the runtime never sends, sent straight to its transport, are refused and reach no model', async ({ page, lm }) => {
  for (const origin of [PLAIN_ORIGIN, ISOLATED_ORIGIN]) {
    await openHarness(page, origin);
    lm.requests.length = 0;
    lm.setScript(script([cell('confused_requests'), 'answer["content"] = "done"\nanswer["ready"] = True']));
    const result = await page.evaluate(
      async ({ baseURL }) => {
        const { RLM } = (window as any).rlmWeb;
        const rlm = new RLM({ backend: 'openai', backendOptions: { model: 'scripted-root', apiKey: 'sk-test', baseURL }, customTools: { lookup: (q: string) => `looked up ${q}` } });
        try {
          const run = await rlm.completion('SECRET-CONTEXT-0123456789 and more', { rootPrompt: 'go' });
          return { response: run.response, stdout: run.trajectory.iterations[0].codeBlocks[0].stdout as string, bridge: rlm.replInfo?.bridge };
        } finally {
          await rlm.close();
        }
      },
      { baseURL: lm.openaiURL },
    );
    expect(result.bridge).toBe(origin === PLAIN_ORIGIN ? 'jspi' : 'sab');
    const lines = new Map(result.stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf(':')), line] as const));
    for (const probe of ['content parts', 'message dict', 'prompts not a list', 'number prompt', 'model not a str', 'schema not a dict', 'unknown op', 'too many prompts', 'tool args not JSON', 'tool name not a str']) {
      expect(lines.get(probe), `${probe}\n${result.stdout}`).toMatch(new RegExp(`^${probe}: REFUSED`));
    }
    expect(lines.get('through the runtime')).toContain('was refused');
    expect(lines.get('proper call')).toBe('proper call: sub:proper');
    expect(result.response).toBe('done');
    // Every message any model got is text; the one sub-call is the proper one (the root model
    // saw the probes only as the code it wrote).
    for (const request of lm.requests) {
      for (const message of (request.body.messages as { content: unknown }[]) ?? []) expect(typeof message.content).toBe('string');
    }
    expect(lm.requests.filter((r) => !isRootCall(r)).map((r) => JSON.stringify(r.body.messages))).toEqual([JSON.stringify([{ role: 'user', content: 'proper' }])]);
  }
});
