/**
 * The engine end to end in Chromium: the real openai / anthropic SDKs against the scripted
 * LM server, Pyodide in a module worker, both sync bridges.
 */
import type { Page } from '@playwright/test';
import { expect, haystack, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type LMServer, type ScriptedRequest } from './support/lm-server';

const NEEDLE = 'The magic number is 4817305.';

/** Root model: look, then chunk + llm_query_batched, then answer. Sub-model: find the number. */
function needleScript(request: ScriptedRequest): string {
  if (!isRootCall(request)) {
    const m = /magic number is (\d+)/.exec(lastUser(request));
    return m ? m[1]! : 'NONE';
  }
  if (turnOf(request) === 0) return repl('print(type(context).__name__, len(context))\nprint(context[:120])', 'Let me look at the context first.');
  return repl(`
size = 1_000_000
chunks = [context[i:i + size] for i in range(0, len(context), size)]
replies = llm_query_batched([f"Find the magic number in this text. Reply with only the number, or NONE.\\n\\n{c}" for c in chunks])
found = [r.strip() for r in replies if r.strip() != "NONE"]
print(len(chunks), found)
answer["content"] = found[0]
answer["ready"] = True
`);
}

interface RunSummary {
  response: string;
  iterations: number;
  calls: number;
  bridge: string | undefined;
  blocks: { stdout: string; stderr: string; subcalls: number }[];
  events: string[];
}

async function runNeedle(page: Page, lm: LMServer, backend: 'openai' | 'anthropic', bridge: 'auto' | 'sab', text: string): Promise<RunSummary> {
  lm.setScript(needleScript);
  return page.evaluate(
    async ({ baseURL, backend, bridge, text }) => {
      const { RLM } = (window as any).rlmWeb;
      const events: string[] = [];
      const rlm = new RLM({
        backend,
        backendOptions: { model: 'scripted-root', apiKey: 'test-key', baseURL },
        otherBackends: [{ backend, backendOptions: { model: 'scripted-sub', apiKey: 'test-key', baseURL } }],
        environmentOptions: { bridge },
        onEvent: (e: { type: string }) => events.push(e.type),
      });
      try {
        const result = await rlm.completion(text, { rootPrompt: 'What is the magic number?' });
        return {
          response: result.response,
          iterations: result.trajectory.iterations.length,
          calls: result.usage.calls,
          bridge: rlm.replInfo?.bridge,
          blocks: result.trajectory.iterations.flatMap((it: any) => it.codeBlocks.map((b: any) => ({ stdout: b.stdout, stderr: b.stderr, subcalls: b.subcalls.length }))),
          events,
        };
      } finally {
        await rlm.close();
      }
    },
    { baseURL: backend === 'openai' ? lm.openaiURL : lm.anthropicURL, backend, bridge, text },
  );
}

test('needle in a 6 MB haystack: chunk, llm_query_batched, answer (OpenAI SDK, JSPI)', async ({ harness, lm }) => {
  const text = haystack(80_000, NEEDLE, 0.73);
  expect(text.length).toBeGreaterThan(6_000_000);
  const run = await runNeedle(harness, lm, 'openai', 'auto', text);
  expect(run.response).toBe('4817305');
  expect(run.bridge).toBe('jspi');
  expect(run.iterations).toBe(2);
  expect(run.blocks[0]!.stdout).toContain(`str ${text.length}`);
  const chunks = Math.ceil(text.length / 1_000_000);
  expect(run.blocks[1]!.subcalls).toBe(chunks);
  expect(run.blocks[1]!.stdout).toContain(`${chunks} ['4817305']`);
  // Two root turns plus one sub-call per chunk, every one through the SDK to the server.
  expect(run.calls).toBe(2 + chunks);
  expect(lm.requests.filter((r) => r.model === 'scripted-sub')).toHaveLength(chunks);
  // The root model never saw the context itself.
  for (const r of lm.requests.filter(isRootCall)) {
    expect(r.messages.map((m) => m.content).join('').length).toBeLessThan(20_000);
  }
  expect(run.events).toEqual(expect.arrayContaining(['run_start', 'repl_ready', 'iteration_start', 'code_start', 'subcall_start', 'subcall_end', 'code_end', 'iteration_end', 'run_end']));
});

test('needle through the Anthropic SDK (system prompt moved to `system`)', async ({ harness, lm }) => {
  const run = await runNeedle(harness, lm, 'anthropic', 'auto', haystack(30_000, NEEDLE, 0.2));
  expect(run.response).toBe('4817305');
  const root = lm.requests.find((r) => r.api === 'anthropic' && r.model === 'scripted-root')!;
  expect(typeof root.body.system === 'object' || typeof root.body.system === 'string').toBe(true);
  expect((root.body.messages as { role: string }[]).every((m) => m.role !== 'system')).toBe(true);
  expect(root.headers['anthropic-dangerous-direct-browser-access']).toBe('true');
  expect(`${root.headers['x-api-key'] ?? ''} ${root.headers.authorization ?? ''}`).toContain('test-key');
});

test('SharedArrayBuffer bridge on a cross-origin isolated page', async ({ isolated, lm }) => {
  expect(await isolated.evaluate(() => crossOriginIsolated)).toBe(true);
  const run = await runNeedle(isolated, lm, 'openai', 'sab', haystack(30_000, NEEDLE, 0.5));
  expect(run.bridge).toBe('sab');
  expect(run.response).toBe('4817305');
});
